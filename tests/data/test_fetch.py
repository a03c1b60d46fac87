"""Tests of nucvn.data.fetch: downloads from a local HTTP server on 127.0.0.1 (tests/httpserver.py), simulation."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from httpserver import FileServer
from nucvn.core.errors import NucvnError
from nucvn.data.fetch import fetch_sim, fetch_url, parse_files, read_manifest, sha256_file
from nucvn.data.h5io import inspect_file
from nucvn.sim.detector_params import DetectorParams

REPO = Path(__file__).resolve().parents[2]


def _fetch(server: FileServer, files: list[int] | str, out: Path, **kw: object) -> dict:
    kw = {"parallel": 2, "retries": 2, "backoff": 0.01, "timeout": 10, "progress": False} | kw
    return fetch_url(kw.pop("base", server.base), files, out, **kw)


def test_parse_files() -> None:
    assert parse_files("1-3, 7") == [1, 2, 3, 7]
    assert parse_files([5, 2, 2]) == [2, 5]
    assert parse_files("1-200")[-1] == 200 and len(parse_files("1-200")) == 200
    for bad in ("3-1", "a-b", "0", ""):
        with pytest.raises(NucvnError, match=re.escape("fetch.url.files")):
            parse_files(bad)


def test_clean_download_and_rerun_downloads_nothing(server: FileServer, serve: Callable[[int], bytes],
                                                    tmp_path: Path) -> None:
    data = {i: serve(i) for i in (1, 2, 3)}
    out = tmp_path / "raw"
    manifest = _fetch(server, "1-3", out)
    assert manifest["source"] == "url" and manifest["complete"]
    for i, e in zip((1, 2, 3), manifest["files"], strict=True):
        assert e["name"] == f"neutrino{i}.h5" and e["url"] == server.base + e["name"]
        assert (out / e["name"]).read_bytes() == data[i]
        assert e["sha256"] == hashlib.sha256(data[i]).hexdigest() and e["size"] == len(data[i])
        assert e["n_events"] == 60 and re.match(r"\d{4}-\d\d-\d\dT", e["time"])
    assert read_manifest(out) == manifest
    assert sorted(p.name for p in out.iterdir()) == ["MANIFEST.json", "neutrino1.h5", "neutrino2.h5", "neutrino3.h5"]

    server.log.clear()
    again = _fetch(server, [1, 2, 3], out)
    assert server.log == [] and again["files"] == manifest["files"]

    (out / "neutrino2.h5").write_bytes(data[1])  # tampered: same name, other content
    server.log.clear()
    _fetch(server, [1, 2], out)  # also drops 3 from the plan
    assert server.names() == ["neutrino2.h5"]
    assert (out / "neutrino2.h5").read_bytes() == data[2]
    assert not (out / "neutrino3.h5").exists()


def test_cut_connection_is_resumed_with_range(server: FileServer, serve: Callable[[int], bytes],
                                              tmp_path: Path) -> None:
    data = serve(4, n=200)
    server.cut.add("neutrino4.h5")
    manifest = _fetch(server, [4], tmp_path)
    assert server.log[0] == ("neutrino4.h5", None)
    assert server.log[1] == ("neutrino4.h5", f"bytes={len(data) // 2}-")
    assert len(server.log) == 2
    assert (tmp_path / "neutrino4.h5").read_bytes() == data
    assert manifest["files"][0]["attempts"] == 2
    assert inspect_file(tmp_path / "neutrino4.h5").n_events == 200
    assert not list(tmp_path.glob(".*.part"))


def test_server_error_is_retried_and_ignored_range_restarts(
    server: FileServer, serve: Callable[[int], bytes], tmp_path: Path
) -> None:
    data = serve(5, n=150)
    server.busy.add("neutrino5.h5")
    server.cut.add("neutrino5.h5")
    server.ignore_range = True
    manifest = _fetch(server, [5], tmp_path)
    assert server.log == [("neutrino5.h5", None), ("neutrino5.h5", None), ("neutrino5.h5", f"bytes={len(data) // 2}-")]
    assert (tmp_path / "neutrino5.h5").read_bytes() == data  # the 200 answer replaced the partial file
    assert manifest["files"][0]["attempts"] == 3


def test_corrupt_file_fails_and_leaves_nothing(server: FileServer, serve: Callable[[int], bytes],
                                               tmp_path: Path) -> None:
    good = serve(1)
    server.files["neutrino2.h5"] = good[:1000] + bytes(len(good) - 1000)  # right size, garbage body
    out = tmp_path / "raw"
    with pytest.raises(NucvnError, match=r"1 of 2 files failed: neutrino2\.h5: invalid after download "
                                         r".*gave up after 3 attempts\);") as err:
        _fetch(server, [1, 2], out)
    assert re.search(r"\[cvnmap\]: required dataset is missing|HDF5", str(err.value))
    assert not (out / "neutrino2.h5").exists() and not (out / ".neutrino2.h5.part").exists()
    assert read_manifest(out) is None  # nothing complete yet: no manifest
    assert not (out / "neutrino1.h5").exists() and (out / ".incoming" / "neutrino1.h5").exists()  # staged

    server.files["neutrino2.h5"] = serve(2)  # server fixed: the rerun fetches only the missing file
    server.log.clear()
    assert _fetch(server, [1, 2], out)["complete"]
    assert server.names() == ["neutrino2.h5"]
    assert sorted(p.name for p in out.iterdir()) == ["MANIFEST.json", "neutrino1.h5", "neutrino2.h5"]


def test_missing_file_names_the_404(server: FileServer, serve: Callable[[int], bytes], tmp_path: Path) -> None:
    serve(1)
    with pytest.raises(NucvnError,
                       match=r"1 of 2 files failed: neutrino7\.h5: HTTP 404 Not Found under .*/nova/ \(check "
                             r"fetch\.url\.base"):
        _fetch(server, [1, 7], tmp_path)
    assert server.names().count("neutrino7.h5") == 1  # a 404 is not retried
    assert not (tmp_path / "neutrino7.h5").exists()
    assert (tmp_path / ".incoming" / "neutrino1.h5").exists()


def test_unreachable_server_retries_then_fails(tmp_path: Path) -> None:
    with pytest.raises(NucvnError,
                       match=r"1 of 1 files failed: neutrino1\.h5: cannot connect to 127\.0\.0\.1:9 \(Connection "
                             r"refused\);"):
        fetch_url("http://127.0.0.1:9/", [1], tmp_path, retries=1, backoff=0.01, timeout=2, progress=False)
    with pytest.raises(NucvnError, match="parallel"):
        fetch_url("http://127.0.0.1:9/", [1], tmp_path, parallel=0, progress=False)


def test_fetch_sim_reuses_same_params_and_replaces_on_change(tmp_path: Path) -> None:
    out = tmp_path / "raw"
    first = fetch_sim(out, files=3, events=20, seed=4, workers=1, progress=False)
    assert first["source"] == "sim" and first["complete"]
    assert [e["name"] for e in first["files"]] == ["neutrino1.h5", "neutrino2.h5", "neutrino3.h5"]
    assert all(inspect_file(out / e["name"]).simulated and e["n_events"] == 20 for e in first["files"])
    assert first["files"][0]["sha256"] == sha256_file(out / "neutrino1.h5")
    stamp = (out / "neutrino1.h5").stat().st_mtime_ns
    assert fetch_sim(out, files=3, events=20, seed=4, workers=1, progress=False) == first
    assert (out / "neutrino1.h5").stat().st_mtime_ns == stamp  # nothing simulated again
    second = fetch_sim(out, files=2, events=20, seed=5, workers=1, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["MANIFEST.json", "neutrino1.h5", "neutrino2.h5"]
    assert second["files"][0]["sha256"] != first["files"][0]["sha256"]
    assert read_manifest(out) == second


def test_fetch_sim_simulates_again_when_the_simulation_code_changed(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from nucvn.sim import simulate

    out = tmp_path / "raw"
    first = fetch_sim(out, files=1, events=20, seed=4, progress=False)
    assert first["parameters"]["code"] == simulate.code_fingerprint()
    stamp = (out / "neutrino1.h5").stat().st_mtime_ns
    monkeypatch.setattr(simulate, "code_fingerprint", lambda: "another version of the simulation")
    again = fetch_sim(out, files=1, events=20, seed=4, progress=False)
    assert again["parameters"]["code"] == "another version of the simulation"
    assert (out / "neutrino1.h5").stat().st_mtime_ns != stamp  # simulated again, not reused


def test_fetch_sim_records_the_detector_response_and_resimulates_on_change(tmp_path: Path) -> None:
    """MANIFEST.json records every detector parameter used; a varied response (+5 % gain) is a new
    sample (files replaced), and asking for it again reuses it."""
    out = tmp_path / "raw"
    nominal = fetch_sim(out, files=1, events=20, seed=4, workers=1, progress=False)
    assert nominal["parameters"]["detector"] == dataclasses.asdict(DetectorParams())
    gain = DetectorParams().scaled({"gain_counts_per_pe": 1.05})
    varied = fetch_sim(out, files=1, events=20, seed=4, workers=1, progress=False, detector_params=gain)
    assert varied["parameters"]["detector"] == dataclasses.asdict(gain)
    assert varied["parameters"]["detector"]["gain_counts_per_pe"] == pytest.approx(0.55 * 1.05)
    assert varied["files"][0]["sha256"] != nominal["files"][0]["sha256"]
    assert read_manifest(out) == varied
    stamp = (out / "neutrino1.h5").stat().st_mtime_ns
    assert fetch_sim(out, files=1, events=20, seed=4, workers=1, progress=False, detector_params=gain) == varied
    assert (out / "neutrino1.h5").stat().st_mtime_ns == stamp


def test_fetch_stage_passes_fetch_sim_detector(tmp_path: Path) -> None:
    """stages/fetch.py simulates with params.yaml's fetch.sim.detector; a bad value is one line."""
    sim = {"files": 1, "events": 10, "seed": 2, "workers": 1, "detector": {"gain_counts_per_pe": 0.6}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"fetch": {"source": "sim", "sim": sim}}))
    env = os.environ | {"PYTHONPATH": str(REPO / "src")}
    cmd = [sys.executable, str(REPO / "stages" / "fetch.py")]
    res = subprocess.run(cmd, cwd=tmp_path, check=False, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr
    detector = json.loads((tmp_path / "data" / "raw" / "MANIFEST.json").read_text())["parameters"]["detector"]
    assert detector["gain_counts_per_pe"] == 0.6
    assert detector["noise_hits_per_view"] == DetectorParams().noise_hits_per_view
    sim["detector"] = {"gain_counts_per_pe": 0}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"fetch": {"source": "sim", "sim": sim}}))
    bad = subprocess.run(cmd, cwd=tmp_path, check=False, capture_output=True, text=True, timeout=300, env=env)
    assert bad.returncode == 2
    expected = "stage fetch: error: params.yaml: fetch.sim.detector.gain_counts_per_pe: must be > 0, got 0.0"
    assert bad.stderr.strip().splitlines() == [expected]


def test_url_source_serves_simulated_files(server: FileServer, tmp_path: Path) -> None:
    src = fetch_sim(tmp_path / "sim", files=2, events=25, seed=2, workers=1, progress=False)
    for e in src["files"]:
        server.files[e["name"]] = (tmp_path / "sim" / e["name"]).read_bytes()
    server.cut.add("neutrino2.h5")
    manifest = _fetch(server, "1-2", tmp_path / "raw")
    assert [e["sha256"] for e in manifest["files"]] == [e["sha256"] for e in src["files"]]
    assert inspect_file(tmp_path / "raw" / "neutrino2.h5").simulated
