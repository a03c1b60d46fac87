"""`dvc repro` of the fetch and preprocess stages in a temporary copy of the repository.

Runs the real simulation with tiny params. Only `preprocess` (with its upstream `fetch`) is
reproduced, so stages appended later (train, ...) are not run here.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dvc_repo import make_repo, run

pytestmark = [pytest.mark.pipeline, pytest.mark.slow, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
_run = run


def _edit_params(repo: Path, **changes: object) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for dotted, value in changes.items():
        node = params
        *path, last = dotted.split("__")
        for key in path:
            node = node[key]
        node[last] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _tiny(repo: Path) -> None:
    shutil.copy2(REPO / "params.yaml", repo / "params.yaml")
    _edit_params(repo, fetch__sim__files=2, fetch__sim__events=120, fetch__sim__workers=1, preprocess__shard_size=64)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path, _tiny)


def _index(repo: Path) -> dict:
    return json.loads((repo / "data" / "shards" / "index.json").read_text())


def test_repro_fetch_preprocess_rerun_seed_and_experiment(repo: Path) -> None:
    out = _run(repo, "repro", "preprocess")
    assert "Running stage 'fetch'" in out and "Running stage 'preprocess'" in out
    manifest = json.loads((repo / "data" / "raw" / "MANIFEST.json").read_text())
    assert manifest["source"] == "sim" and manifest["parameters"]["events"] == 120
    assert [e["name"] for e in manifest["files"]] == ["neutrino1.h5", "neutrino2.h5"]
    index = _index(repo)
    assert index["data"]["source"] == "sim"
    assert index["selection"]["events_in"] == 240
    assert sum(s["n_events"] for s in index["splits"].values()) == index["selection"]["events_out"] > 200
    assert [s["sha256"] for s in index["sources"]] == [e["sha256"] for e in manifest["files"]]
    assert all(sh["n_events"] <= 64 for s in index["splits"].values() for sh in s["shards"])
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert {"fetch", "preprocess"} <= set(lock["stages"])
    # the outputs live on disk once: workspace files are links to the cache's (cache.type in .dvc/config)
    cached = {p.stat().st_ino for p in (repo / ".dvc" / "cache").rglob("*") if p.is_file()}
    for out_file in [repo / "data" / "raw" / "neutrino1.h5", *(repo / "data" / "shards").rglob("hits-*.npy")]:
        assert out_file.stat().st_ino in cached and out_file.stat().st_nlink >= 2, out_file

    out = _run(repo, "repro", "preprocess")
    assert "Running stage" not in out
    assert "up to date" in _run(repo, "status", "fetch", "preprocess")

    before = {s: [sh["sha256"] for sh in v["shards"]] for s, v in index["splits"].items()}
    kept = index["selection"]["events_out"]
    _edit_params(repo, preprocess__seed=7)
    out = _run(repo, "repro", "preprocess")
    assert "Running stage 'preprocess'" in out and "Running stage 'fetch'" not in out
    index = _index(repo)
    assert index["params"]["seed"] == 7
    assert {s: [sh["sha256"] for sh in v["shards"]] for s, v in index["splits"].items()} != before
    assert index["selection"]["events_out"] == kept  # same events, other split
    _edit_params(repo, fetch__sim__files=3)  # a persistent output with links: new files by rename, cache intact
    out = _run(repo, "repro", "preprocess")
    assert "Running stage 'fetch'" in out and "3 files" in out
    assert "up to date" in _run(repo, "status", "fetch", "preprocess")
    _edit_params(repo, fetch__sim__files=2)
    _run(repo, "repro", "preprocess")
    assert _index(repo)["selection"]["events_out"] == kept
    # none written through a link
    for obj in (p for p in (repo / ".dvc" / "cache" / "files" / "md5").rglob("*") if p.is_file()):
        assert hashlib.md5(obj.read_bytes()).hexdigest() == obj.parent.name + obj.name.removesuffix(".dir"), obj

    _run(repo, "git", "add", "-A")
    _run(repo, "git", "commit", "-q", "-m", "seed 7")
    out = _run(repo, "exp", "run", "preprocess", "-S", "preprocess.split.val=0.2")
    assert "Running stage 'preprocess'" in out and "Running stage 'fetch'" not in out
    index = _index(repo)
    assert index["params"]["split"] == {"train": 0.67, "val": 0.2, "test": 0.25}
    assert index["params"]["split_used"]["val"] == pytest.approx(0.2 / 1.12)
    n = index["selection"]["events_out"]
    assert index["splits"]["val"]["n_events"] / n == pytest.approx(0.2 / 1.12, abs=0.08)
    diff = _run(repo, "params", "diff", "--json")
    change = json.loads(diff[diff.index("{") :])["params.yaml"]["preprocess.split.val"]
    assert (change["old"], change["new"]) == (0.08, 0.2)


def test_repro_with_url_source_from_local_server(repo: Path, tmp_path: Path) -> None:
    from httpserver import FileServer
    from nucvn.data.fetch import fetch_sim

    served = fetch_sim(tmp_path / "served", files=2, events=40, seed=3, workers=1, progress=False)
    with FileServer() as server:
        for e in served["files"]:
            server.files[e["name"]] = (tmp_path / "served" / e["name"]).read_bytes()
        server.cut.add("neutrino1.h5")
        _edit_params(repo, fetch__source="url", fetch__url__base=server.base, fetch__url__files="1-2",
                     fetch__url__backoff=0.01)
        out = _run(repo, "repro", "preprocess")
        assert "Running stage 'fetch'" in out and "Running stage 'preprocess'" in out
        assert server.names().count("neutrino1.h5") == 2  # cut off, then resumed
        manifest = json.loads((repo / "data" / "raw" / "MANIFEST.json").read_text())
        assert manifest["source"] == "url"
        assert [e["sha256"] for e in manifest["files"]] == [e["sha256"] for e in served["files"]]
        assert _index(repo)["data"]["source"] == "url"
        assert _index(repo)["selection"]["events_in"] == 80

        server.files.pop("neutrino2.h5")
        server.log.clear()
        _edit_params(repo, fetch__url__files="1-3", fetch__url__retries=0)
        res = subprocess.run([sys.executable, "stages/fetch.py"], cwd=repo, capture_output=True, text=True,
                             env=os.environ | {"PYTHONPATH": str(repo / "src")}, check=False)
        assert res.returncode == 2
        assert "neutrino3.h5: HTTP 404" in res.stderr and "Traceback" not in res.stderr
        assert server.names() == ["neutrino3.h5"]  # 1 and 2 were verified, not downloaded again


def test_repro_with_dir_source_reads_files_in_place(repo: Path, tmp_path: Path) -> None:
    """`fetch.source: dir`: the files stay where they are (data/raw holds only the manifest), the
    shards are built from them, and a file changed after the fetch is refused by preprocess."""
    from nucvn.data.fetch import fetch_sim

    held = tmp_path / "cluster"
    fetch_sim(held, files=3, events=40, seed=5, workers=1, progress=False)
    _edit_params(repo, fetch__source="dir", fetch__dir__path=str(held), fetch__dir__files="1-2")
    out = _run(repo, "repro", "preprocess")
    assert "Running stage 'fetch'" in out and "Running stage 'preprocess'" in out
    manifest = json.loads((repo / "data" / "raw" / "MANIFEST.json").read_text())
    assert manifest["source"] == "dir"
    assert [e["path"] for e in manifest["files"]] == [str(held / "neutrino1.h5"), str(held / "neutrino2.h5")]
    assert sorted(p.name for p in (repo / "data" / "raw").iterdir()) == ["MANIFEST.json"]  # nothing copied
    assert _index(repo)["selection"]["events_in"] == 80

    (held / "neutrino2.h5").write_bytes((held / "neutrino3.h5").read_bytes())  # replaced after the fetch
    res = subprocess.run([sys.executable, "stages/preprocess.py"], cwd=repo, capture_output=True, text=True,
                         env=os.environ | {"PYTHONPATH": str(repo / "src")}, check=False)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "neutrino2.h5" in res.stderr and "dvc repro -f fetch" in res.stderr
