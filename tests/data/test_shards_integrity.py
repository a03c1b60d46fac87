"""Tests of shard integrity: checksums verified on opening, duplicate inputs, a full disk."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import random_events
from nucvn.core.errors import NucvnError
from nucvn.data import shard_writer
from nucvn.data.h5write import write_events
from nucvn.data.shard_dedup import MAX_LISTED, IdentitySet
from nucvn.data.shards import SPLITS, ShardDataset, build_shards


def _files(directory: Path, sizes: list[int]) -> list[Path]:
    out = []
    for k, n in enumerate(sizes):
        images, meta = random_events(n, seed=k)
        out.append(write_events(directory / f"neutrino{k + 1}.h5", images, meta))
    return out


def _events(root: Path) -> dict[tuple[str, int], str]:
    """(file, index) -> split of every event in a shard directory."""
    out = {}
    for s in SPLITS:
        md = ShardDataset(root, s).metadata
        out.update({(f, int(i)): s for f, i in zip(md["file"], md["index"], strict=True)})
    return out


def _flip(path: Path, offset: int) -> bytes:
    """Invert one byte of ``path`` (size unchanged); return the original content."""
    raw = path.read_bytes()
    changed = bytearray(raw)
    changed[offset] ^= 0xFF
    path.write_bytes(bytes(changed))
    return raw


def test_opening_a_split_verifies_its_shards_against_index_json(tmp_path: Path) -> None:
    paths = _files(tmp_path, [400])
    index = build_shards(paths, tmp_path / "s", shard_size=64, progress=False)
    root = tmp_path / "s"
    assert len(ShardDataset(root, "train")) == index["splits"]["train"]["n_events"]  # unchanged: opens
    second = index["splits"]["train"]["shards"][1]

    image = root / second["hits"]
    original = _flip(image, image.stat().st_size // 2)
    with pytest.raises(NucvnError) as err:
        ShardDataset(root, "train")
    message = str(err.value)
    assert "train/hits-00001.npy: sha256 differs" in message and "dvc repro -f preprocess" in message
    assert "\n" not in message
    assert len(ShardDataset(root, "val")) > 0  # other splits are not concerned
    assert len(ShardDataset(root, "train", verify=False)) == index["splits"]["train"]["n_events"]
    image.write_bytes(original)

    for kind in ("offsets", "meta"):
        path = root / second[kind]
        original = _flip(path, path.stat().st_size - 1)
        with pytest.raises(NucvnError, match=rf"train/{kind}-00001\.npy: sha256 differs.*dvc repro -f preprocess"):
            ShardDataset(root, "train")
        path.write_bytes(original)


def test_duplicate_input_file_fails_naming_both_or_is_dropped(tmp_path: Path) -> None:
    paths = _files(tmp_path, [150, 120])
    copy = tmp_path / "neutrino3.h5"
    shutil.copyfile(paths[1], copy)  # a redirect served neutrino2.h5 under another name
    with pytest.raises(NucvnError, match=r"neutrino3\.h5 is a byte-identical copy of neutrino2\.h5"
                                         r".*preprocess\.on_duplicate: drop"):
        build_shards([*paths, copy], tmp_path / "s", progress=False)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".s.") or p.name == "s"]

    index = build_shards([*paths, copy], tmp_path / "s", on_duplicate="drop", progress=False)
    build_shards(paths, tmp_path / "ref", progress=False)
    dup = index["duplicates"]["files"]
    assert [(d["name"], d["duplicate_of"], d["n_events"]) for d in dup] == [("neutrino3.h5", "neutrino2.h5", 120)]
    assert [s["name"] for s in index["sources"]] == ["neutrino1.h5", "neutrino2.h5"]
    assert index["selection"]["events_in"] == 270 and index["params"]["on_duplicate"] == "drop"
    assert _events(tmp_path / "s") == _events(tmp_path / "ref")
    assert json.loads((tmp_path / "s" / "index.json").read_text())["duplicates"] == index["duplicates"]


def _overlapping(tmp_path: Path) -> list[Path]:
    """neutrino1.h5: run 1000, evt 0-299; neutrino2.h5: other events whose identities repeat
    evt 150-299 of neutrino1.h5 (indices 0-149), then new ones, the last repeating the one before it."""
    a = write_events(tmp_path / "neutrino1.h5", *random_events(300, seed=0))
    images, meta = random_events(300, seed=9)
    meta["run"][:] = 1000
    meta["evt"] = np.arange(150, 450, dtype=np.uint32)
    meta["evt"][-1] = meta["evt"][-2]
    return [a, write_events(tmp_path / "neutrino2.h5", images, meta)]


def test_duplicate_events_fail_naming_identity_and_files_or_are_dropped(tmp_path: Path) -> None:
    paths = _overlapping(tmp_path)
    with pytest.raises(NucvnError) as err:
        build_shards(paths, tmp_path / "s", chunk_size=64, progress=False)
    assert str(err.value).startswith("preprocess: event (run=1000, subrun=0, evt=150, cycle=0, subevt=1) is in both "
                                     "neutrino1.h5 (index 150) and neutrino2.h5 (index 0)")
    assert not (tmp_path / "s").exists()

    index = build_shards(paths, tmp_path / "s", chunk_size=64, on_duplicate="drop", progress=False)
    events = index["duplicates"]["events"]
    assert events["n_dropped"] == 151 and len(events["listed"]) == MAX_LISTED == events["max_listed"]
    assert events["listed"][0] == {"file": "neutrino2.h5", "index": 0,
                                   "duplicate_of": {"file": "neutrino1.h5", "index": 150}}
    kept = _events(tmp_path / "s")
    assert not [k for k in kept if k[0] == "neutrino2.h5" and (k[1] < 150 or k[1] == 299)]
    ids = np.concatenate([ShardDataset(tmp_path / "s", s).metadata[["run", "evt"]].to_numpy() for s in SPLITS])
    assert len(np.unique(ids, axis=0)) == len(ids) == index["selection"]["events_out"]
    sel = index["selection"]
    assert sel["events_in"] == 600 == sel["events_out"] + sum(sel["dropped"].values()) + events["n_dropped"]


def test_identity_set_matches_a_python_set_across_many_chunks() -> None:
    rng = np.random.default_rng(1)
    seen = IdentitySet()
    first: dict[int, tuple[int, int]] = {}
    for c in range(40):
        keys = rng.integers(0, 3000, 97).astype(np.uint64)
        dup, ff, fi = seen.add(keys, c % 3, 1000 * c)
        for j, k in enumerate(keys.tolist()):
            assert bool(dup[j]) == (k in first)
            if k in first:
                assert (int(ff[j]), int(fi[j])) == first[k]
            else:
                first[k] = (c % 3, 1000 * c + j)
    assert len(seen) == len(first)


def test_full_disk_fails_naming_the_output_and_keeps_the_old_shards(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    paths = _files(tmp_path, [300])
    out = tmp_path / "shards"
    build_shards(paths, out, shard_size=64, progress=False)
    before = (out / "index.json").read_text()
    calls = {"n": 0}
    writev = shard_writer._writev

    def full(fd: int, views: list[memoryview]) -> None:
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        writev(fd, views)

    monkeypatch.setattr(shard_writer, "_writev", full)
    with pytest.raises(NucvnError) as err:
        build_shards(paths, out, shard_size=64, seed=5, progress=False)
    assert str(err.value).startswith(f"{out}: no space left on device") and "\n" not in str(err.value)
    assert (out / "index.json").read_text() == before
    assert len(ShardDataset(out, "train")) > 0  # the previous shards still verify
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".shards.")]
