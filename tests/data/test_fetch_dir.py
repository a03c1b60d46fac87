"""Tests of the dir source (nucvn.data.fetch_dir), of raw_inputs (the preprocess stage's inputs) and of
the removal of stray files by every source."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

import nucvn.data.fetch_dir
from httpserver import FileServer, corrupt_middle_chunk, snapshot
from nucvn.core.errors import NucvnError
from nucvn.data.fetch import fetch_dir, fetch_sim, fetch_url, raw_inputs, read_manifest, sha256_file, write_manifest


@pytest.fixture
def src(make_event_file: Callable[..., Path], tmp_path: Path) -> Path:
    """A physicist's folder with neutrino1..3.h5 (and an unrelated file)."""
    folder = tmp_path / "mine"
    for i in (1, 2, 3):
        make_event_file(f"neutrino{i}.h5", n=40 + i, seed=i, directory=folder)
    (folder / "notes.txt").write_text("not an event file")
    return folder


def test_fetch_dir_lists_files_in_place_and_rehashes_only_changed(
    src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "raw"
    manifest = fetch_dir(src, "1-2", out, progress=False)
    assert manifest["source"] == "dir" and manifest["complete"]
    assert manifest["parameters"] == {"path": str(src.resolve()), "files": [1, 2]}
    for i, e in zip((1, 2), manifest["files"], strict=True):
        p = src.resolve() / f"neutrino{i}.h5"
        assert e == {"name": p.name, "path": str(p), "size": p.stat().st_size, "sha256": sha256_file(p),
                     "mtime_ns": p.stat().st_mtime_ns, "n_events": 40 + i}
    assert sorted(x.name for x in out.iterdir()) == ["MANIFEST.json"]  # nothing copied
    assert raw_inputs(out) == [src.resolve() / "neutrino1.h5", src.resolve() / "neutrino2.h5"]

    hashed: list[str] = []
    monkeypatch.setattr(nucvn.data.fetch_dir, "sha256_file", lambda p: hashed.append(Path(p).name) or sha256_file(p))
    assert fetch_dir(src, "1-2", out, progress=False) == manifest and hashed == []
    st = (src / "neutrino2.h5").stat()
    os.utime(src / "neutrino2.h5", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    again = fetch_dir(src, "1-2", out, progress=False)
    assert hashed == ["neutrino2.h5"] and again["files"][1]["mtime_ns"] == st.st_mtime_ns + 10**9
    every = fetch_dir(src, "all", out, progress=False)
    assert [e["name"] for e in every["files"]] == ["neutrino1.h5", "neutrino2.h5", "neutrino3.h5"]
    assert every["parameters"]["files"] == "all" and hashed == ["neutrino2.h5", "neutrino3.h5"]


def test_fetch_dir_refuses_missing_and_corrupt_files(src: Path, tmp_path: Path,
                                                     make_event_file: Callable[..., Path]) -> None:
    out = tmp_path / "raw"
    with pytest.raises(NucvnError, match=r"^fetch\.dir\.path: .*nowhere is not a directory"):
        fetch_dir(tmp_path / "nowhere", "all", out, progress=False)
    with pytest.raises(NucvnError,
                       match=r"^fetch\.dir\.files: 2 of 4 selected files are not in .*mine \(neutrino4\.h5, "
                             r"neutrino7\.h5\)"):
        fetch_dir(src, [1, 2, 4, 7], out, progress=False)
    with pytest.raises(NucvnError, match=r"fetch\.dir\.path: .* output folder"):
        fetch_dir(out, "all", out, progress=False)
    fetch_dir(src, "1-2", out, progress=False)
    before = snapshot(out)
    corrupt_middle_chunk(make_event_file("neutrino5.h5", n=300, seed=5, directory=src))
    with pytest.raises(NucvnError, match=r"^fetch\.dir\.path: .*neutrino5\.h5 \[cvnmap\]: events .* cannot be read"):
        fetch_dir(src, "all", out, progress=False)
    assert snapshot(out) == before


def test_raw_inputs_refuses_missing_or_changed_files(src: Path, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    with pytest.raises(NucvnError, match=r"raw/MANIFEST\.json: missing or incomplete; run `dvc repro fetch`"):
        raw_inputs(raw)
    data = (src / "neutrino1.h5").read_bytes()
    (raw / "neutrino1.h5").write_bytes(data)
    entry = {"name": "neutrino1.h5", "size": len(data), "sha256": sha256_file(raw / "neutrino1.h5"), "n_events": 41}
    write_manifest(raw, {"source": "url", "parameters": {}, "complete": False, "files": [entry]})
    with pytest.raises(NucvnError, match="missing or incomplete"):
        raw_inputs(raw)
    write_manifest(raw, {"source": "url", "parameters": {}, "complete": True, "files": [entry]})
    assert raw_inputs(raw) == [raw / "neutrino1.h5"]
    (raw / "neutrino1.h5").write_bytes(data[:-1])
    with pytest.raises(NucvnError, match=r"neutrino1\.h5: changed since fetch \(size .*rerun `dvc repro -f fetch`"):
        raw_inputs(raw)
    (raw / "neutrino1.h5").unlink()
    with pytest.raises(NucvnError, match=r"neutrino1\.h5: listed in .*MANIFEST\.json but missing"):
        raw_inputs(raw)

    fetch_dir(src, [2], raw, progress=False)
    p = src / "neutrino2.h5"
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched, same content: still fine
    assert raw_inputs(raw) == [p.resolve()]
    body = bytearray(p.read_bytes())
    body[-1] ^= 1
    p.write_bytes(bytes(body))  # same size, other content
    with pytest.raises(NucvnError,
                       match=r"neutrino2\.h5: changed since fetch \(sha256 differs.*rerun `dvc repro -f fetch`"):
        raw_inputs(raw)


def test_every_source_removes_stray_event_files(
    server: FileServer, serve: Callable[..., bytes], src: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "raw"
    first = fetch_sim(out, files=2, events=10, seed=3, workers=1, progress=False)

    def litter() -> None:
        (out / "neutrino9.h5").write_bytes(b"not hdf5")
        (out / ".neutrino5.h5.part").write_bytes(b"half")
        (out / "README.txt").write_text("mine")

    litter()
    capsys.readouterr()
    assert fetch_sim(out, files=2, events=10, seed=3, workers=1, progress=False) == first  # params match
    said = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["MANIFEST.json", "README.txt", "neutrino1.h5", "neutrino2.h5"]
    assert "removed" in said and "neutrino9.h5" in said and ".neutrino5.h5.part" in said
    assert "README.txt is not part of the data set; left in place" in said

    serve(1)
    litter()
    fetch_url(server.base, [1], out, retries=0, backoff=0, timeout=10, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["MANIFEST.json", "README.txt", "neutrino1.h5"]

    litter()
    fetch_dir(src, [3], out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["MANIFEST.json", "README.txt"]
    assert read_manifest(out)["source"] == "dir"
