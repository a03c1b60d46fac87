"""A temporary copy of the repository with tiny params, for tests that run real `dvc` commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def run(repo: Path, *args: str) -> str:
    """``dvc <args>`` (or ``git ...``) in ``repo``; a failure raises with its output."""
    env = os.environ | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(repo / "src"), "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@nucvn.invalid",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@nucvn.invalid",
    }
    cmd = [sys.executable, "-m", "dvc", *args] if args[0] != "git" else list(args)
    res = subprocess.run(cmd, cwd=repo, env=env, check=False, capture_output=True, text=True)
    if res.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return res.stdout + res.stderr


def tiny_params(repo: Path) -> None:
    """Every stage on a tiny simulation: two files of 150 events, one epoch of a 4-wide model,
    systematics on 120 events with two variations."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["fetch"]["sim"].update(files=2, events=150, workers=1)
    params["preprocess"]["shard_size"] = 64
    params["preprocess"]["split"] = {"train": 0.6, "val": 0.2, "test": 0.2}
    params["train"].update(epochs=1, batch_size=32, device="cpu", patience=0)
    params["train"]["model_kwargs"]["cvn2v"].update(width=4, head=8, depth=1, dropout=0.1)
    params["threshold"].update(points=101, device="cpu")
    params["evaluate"].update(device="cpu", gallery_events=1, roc_points=100)
    params["systematics"].update(events=120, files=1, workers=1, device="cpu",
                                 variations={"calibration_up": {"gain_counts_per_pe": 1.05},
                                             "noise_up": {"noise_pe": 1.2}})
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def copy_code(repo: Path) -> None:
    """Copy the project's DVC configuration (its plot templates included), ignore files, stages and
    package into ``repo``: what a tiny pipeline repository needs besides dvc.yaml and params."""
    for name in (".dvcignore", ".gitignore"):
        shutil.copy2(REPO / name, repo / name)
    (repo / ".dvc").mkdir()
    for name in ("config", ".gitignore"):
        shutil.copy2(REPO / ".dvc" / name, repo / ".dvc" / name)
    if (REPO / ".dvc" / "plots").is_dir():
        shutil.copytree(REPO / ".dvc" / "plots", repo / ".dvc" / "plots")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "stages", repo / "stages", ignore=ignore)
    shutil.copytree(REPO / "src", repo / "src", ignore=ignore)


def make_repo(root: Path, configure: Callable[[Path], None] = tiny_params) -> Path:
    """``root/repo``: the pipeline's files and code, with params written by ``configure`` (default:
    :func:`tiny_params`), committed in a fresh git repository."""
    r = root / "repo"
    r.mkdir(parents=True)
    for name in ("dvc.yaml", "bins.yaml"):
        shutil.copy2(REPO / name, r / name)
    copy_code(r)
    configure(r)
    run(r, "git", "init", "-q")
    run(r, "git", "add", "-A")
    run(r, "git", "commit", "-q", "-m", "tiny")
    return r
