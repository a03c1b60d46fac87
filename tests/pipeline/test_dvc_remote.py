"""Sharing a run the DVC way: push a tiny pipeline run to a local-directory remote, clone the
repository afresh, `dvc pull`, and nothing is left to run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dvc_repo import make_repo, run

pytestmark = [pytest.mark.pipeline, pytest.mark.slow, pytest.mark.timeout(1200)]


def test_push_clone_pull_leaves_nothing_to_run(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "lab")
    remote = tmp_path / "remote-store"
    run(repo, "remote", "add", "-d", "store", str(remote))
    out = run(repo, "repro")
    assert "Running stage 'train'" in out and "Running stage 'systematics'" in out
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-q", "-m", "tiny run")
    run(repo, "push")
    assert any(p.is_file() for p in remote.rglob("*")), "nothing reached the remote"

    clone = tmp_path / "colleague"
    run(tmp_path, "git", "clone", "-q", str(repo), str(clone))
    assert not (clone / "data").exists()  # data, shards and model are not in git
    run(clone, "pull")
    for path in ("data/raw/MANIFEST.json", "data/shards/index.json", "data/model/model.json",
                 "data/model/model.safetensors"):
        assert (clone / path).is_file(), path
    assert (clone / "data/model/model.safetensors").read_bytes() == (repo / "data/model/model.safetensors").read_bytes()
    assert "Data and pipelines are up to date" in run(clone, "status")
    again = run(clone, "repro")
    assert "Running stage" not in again
    metrics = json.loads((clone / "metrics" / "test.json").read_text())  # results come with git
    assert metrics == json.loads((repo / "metrics" / "test.json").read_text())
