"""Experiments through DVCLive: two `dvc exp run -S train.lr=...` of the train stage in a temporary
repository, listed by `dvc exp show` with their DVCLive metrics and params, their per-epoch curves
side by side in `dvc plots diff`, the model registered as an artifact, and no process (dvc, the
stage, DVCLive) reaching for the network even with a DVC Studio token configured.

The repository holds only the train stage of dvc.yaml, on tiny random shards (tests/trainutil.py)
placed where the preprocess stage would write them, so no simulation runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from dvc_repo import REPO, copy_code
from trainutil import TINY_TRAIN, make_shards

pytestmark = [pytest.mark.pipeline, pytest.mark.slow, pytest.mark.timeout(600)]

VAL_AUC = "dvclive/plots/metrics/numu_cc/val_auc.tsv"

NO_NETWORK = '''"""Loaded by every Python process of the test: name lookups and IP connections are logged, refused."""
import os
import socket

_LOG = os.environ["NUCVN_TEST_NETWORK_LOG"]
_connect = socket.socket.connect


def _refuse(what, args):
    with open(_LOG, "a") as f:
        f.write(f"{os.getpid()} {what} {args!r}\\n")
    raise OSError(f"network unreachable in this test ({what})")


def _getaddrinfo(*args, **kwargs):
    _refuse("getaddrinfo", args[:2])


def _create_connection(address, *args, **kwargs):
    _refuse("create_connection", address)


def _checked_connect(sock, address):
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        _refuse("connect", address)
    return _connect(sock, address)


socket.getaddrinfo = _getaddrinfo
socket.create_connection = _create_connection
socket.socket.connect = _checked_connect
'''


def _make_repo(root: Path) -> Path:
    """``root/repo``: the train stage only (with the project's artifacts), its code, tiny params and
    tiny shards in data/shards, committed (``dvc exp run`` needs a baseline commit)."""
    repo = root / "repo"
    repo.mkdir(parents=True)
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"artifacts": spec["artifacts"],
                                                  "stages": {"train": spec["stages"]["train"]}}, sort_keys=False))
    copy_code(repo)
    train = TINY_TRAIN | {"epochs": 2, "patience": 0, "tasks": ["numu_cc", "flavour"]}
    (repo / "params.yaml").write_text(yaml.safe_dump({"train": train}, sort_keys=False))
    shards = make_shards(root / "data", n_per_file=100, files=2)
    shutil.copytree(shards, repo / "data" / "shards")
    return repo


def _env(root: Path, repo: Path) -> dict[str, str]:
    """dvc's environment: the repository's code, the network refused (sitecustomize), and a DVC
    Studio token that would make dvc and DVCLive post live metrics if anything left Studio on."""
    blocker = root / "no_network"
    blocker.mkdir(exist_ok=True)
    (blocker / "sitecustomize.py").write_text(NO_NETWORK)
    env = {k: v for k, v in os.environ.items() if k not in ("DVC_STUDIO_OFFLINE", "DVC_NO_ANALYTICS")}
    return env | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": f"{blocker}{os.pathsep}{repo / 'src'}", "NUCVN_TEST_NETWORK_LOG": str(root / "network.log"),
        "DVC_STUDIO_TOKEN": "isat_nucvn_test", "DVC_STUDIO_REPO_URL": "https://git.nucvn.invalid/nucvn.git",
        "DVC_STUDIO_URL": "https://studio.nucvn.invalid", "OMP_NUM_THREADS": "1",
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@nucvn.invalid",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@nucvn.invalid",
    }


def _run(repo: Path, env: dict[str, str], *args: str) -> str:
    cmd = list(args) if args[0] == "git" else [sys.executable, "-m", "dvc", *args]
    res = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
    return res.stdout


def _experiments(show: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``dvc exp show --json``: experiment name -> its data (metrics and params by file)."""
    out = {}
    for baseline in show:
        for exp in baseline.get("experiments") or []:
            rev = exp["revs"][0]
            out[exp["name"]] = rev["data"]
    return out


def test_experiments_list_metrics_and_draw_curves_side_by_side(tmp_path: Path) -> None:
    repo = _make_repo(tmp_path)
    env = _env(tmp_path, repo)
    probe = subprocess.run([sys.executable, "-c", "import socket; socket.getaddrinfo('example.invalid', 80)"], env=env,
                           capture_output=True, text=True, check=False)
    log = tmp_path / "network.log"
    assert probe.returncode != 0 and "getaddrinfo" in log.read_text()  # the blocker works in every subprocess
    log.unlink()
    _run(repo, env, "git", "init", "-q")
    _run(repo, env, "git", "add", "-A")
    _run(repo, env, "git", "commit", "-q", "-m", "tiny")

    for name, lr in (("slow", "0.001"), ("fast", "0.02")):
        out = _run(repo, env, "exp", "run", "-n", name, "-S", f"train.lr={lr}")
        assert "Running stage 'train'" in out, out
    assert not (repo / "dvc.yaml").read_text().count("dvclive/dvc.yaml")  # DVCLive wrote no dvc.yaml
    assert not list(repo.rglob("dvclive/dvc.yaml")) and not (repo / "plots").exists()

    exps = _experiments(json.loads(_run(repo, env, "exp", "show", "--json")))
    assert set(exps) == {"slow", "fast"}
    for name, lr in (("slow", 0.001), ("fast", 0.02)):
        data = exps[name]
        assert data["params"]["params.yaml"]["data"]["train"]["lr"] == lr
        assert data["params"]["params.yaml"]["data"]["train"]["tasks"] == ["numu_cc", "flavour"]
        metrics = data["metrics"]["dvclive/metrics.json"]["data"]
        assert metrics["best_epoch"] in (1, 2) and metrics["step"] == 2
        assert 0 <= metrics["numu_cc"]["val_auc"] <= 1 and metrics["numu_cc"]["val_auc"] == metrics["val_auc"]
        assert set(metrics["flavour"]) == {"val_loss", "val_accuracy", "val_balanced_accuracy"}
    assert exps["slow"]["metrics"] != exps["fast"]["metrics"]

    diff = json.loads(_run(repo, env, "plots", "diff", "slow", "fast", "--json"))["data"]
    curves: dict[str, list[tuple[int, float]]] = {}
    for plot in diff[VAL_AUC]:
        for point in plot["content"]["data"]["values"]:
            curves.setdefault(point["rev"], []).append((int(point["step"]), float(point["val_auc"])))
    assert set(curves) == {"slow", "fast"}
    assert all(sorted(s for s, _ in curve) == [1, 2] for curve in curves.values())
    assert curves["slow"] != curves["fast"]
    assert {"dvclive/plots/metrics/total/val_loss.tsv", "dvclive/plots/metrics/flavour/train_loss.tsv"} <= set(diff)

    from dvc.repo import Repo

    with Repo(str(repo)) as dvc:
        artifacts = dvc.artifacts.read()["dvc.yaml"]
    assert artifacts["nucvn-model"].path == "data/model" and artifacts["nucvn-model"].type == "model"

    assert not log.exists(), f"a process reached for the network:\n{log.read_text()}"
