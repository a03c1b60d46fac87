"""Tests of nucvn.data.shards: building shards from event files and reading them back."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from conftest import random_events
from nucvn.core import events as ev
from nucvn.core.errors import NucvnError
from nucvn.data.h5write import write_events
from nucvn.data.hits import HIT_DTYPE
from nucvn.data.manifest import sha256_file
from nucvn.data.shard_writer import payload_sha256
from nucvn.data.shards import SPLITS, ShardDataset, build_shards
from nucvn.train.loop import batch_loader


def _files(directory: Path, sizes: list[int], *, first_seed: int = 0, empty_every: int = 0) -> list[Path]:
    out = []
    for k, n in enumerate(sizes):
        images, meta = random_events(n, seed=first_seed + k)
        if empty_every:
            images[::empty_every] = 0
        out.append(write_events(directory / f"neutrino{first_seed + k + 1}.h5", images, meta))
    return out


def _source(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    with h5py.File(path, "r") as f:
        images = f["cvnmap"][()].reshape(-1, *ev.IMAGE_SHAPE)
        meta = {k: f["neutrino"][k][()].reshape(-1) for k in f["neutrino"]}
    return images, meta


def _all(root: Path) -> dict[tuple[str, int], str]:
    """(file, index) -> split of every event in a shard directory."""
    out = {}
    for s in SPLITS:
        md = ShardDataset(root, s).metadata
        out.update({(f, int(i)): s for f, i in zip(md["file"], md["index"], strict=True)})
    return out


def test_roundtrip_images_labels_and_selection(tmp_path: Path) -> None:
    paths = _files(tmp_path, [300, 257], empty_every=10)
    index = build_shards(paths, tmp_path / "shards", shard_size=64, chunk_size=50, progress=False)
    sources = {p.name: _source(p) for p in paths}
    seen = 0
    for s in SPLITS:
        ds = ShardDataset(tmp_path / "shards", s)
        md = ds.metadata
        assert len(ds) == len(md) == index["splits"][s]["n_events"] > 0
        for i in range(len(ds)):
            image, labels = ds[i]
            src_images, src_meta = sources[md["file"][i]]
            j = int(md["index"][i])
            assert image.dtype == torch.uint8 and image.shape == (2, 100, 80)
            assert torch.equal(image, torch.from_numpy(src_images[j]))
            inter = src_meta["interaction"][j]
            assert inter != 15 and src_images[j].any()
            assert labels["numu_cc"].dtype == torch.float32 and labels["numu_cc"].item() == float(ev.numu_cc(inter)[0])
            assert labels["flavour"].dtype == torch.int64 and labels["flavour"].item() == ev.flavour(inter)[0]
            assert labels["mode"].item() == ev.mode(inter)[0]
            assert labels["n_tracks"].item() == ev.n_tracks(src_meta["finalstate"][j])[0]
            assert labels["n_showers"].item() == ev.n_showers(src_meta["finalstate"][j])[0]
            assert labels["nuenergy"].item() == pytest.approx(src_meta["nuenergy"][j])
            assert labels["lepton_fraction"].item() == pytest.approx(src_meta["lepenergy"][j] / src_meta["nuenergy"][j],
                                                                     rel=1e-5)
        seen += len(ds)
    n_15 = sum(int((m["interaction"] == 15).sum()) for _, m in sources.values())
    n_empty = sum(int(((m["interaction"] != 15) & ~im.reshape(len(im), -1).any(axis=1)).sum()) for im,
                  m in sources.values())
    assert index["selection"]["dropped"] == {"interaction": n_15, "empty": n_empty}
    assert seen == 557 - n_15 - n_empty == index["selection"]["events_out"]
    assert len(_all(tmp_path / "shards")) == seen  # every event exactly once


def test_shard_files_sizes_checksums_and_no_pickle(tmp_path: Path) -> None:
    paths = _files(tmp_path, [230])
    index = build_shards(paths, tmp_path / "out", shard_size=40, drop_interactions=(), drop_empty=False, progress=False)
    root = tmp_path / "out"
    train = index["splits"]["train"]["shards"]
    assert [sh["n_events"] for sh in train[:-1]] == [40] * (len(train) - 1)
    assert 0 < train[-1]["n_events"] <= 40
    for s in SPLITS:
        for sh in index["splits"][s]["shards"]:
            hits = np.load(root / sh["hits"], allow_pickle=False)
            offsets = np.load(root / sh["offsets"], allow_pickle=False)
            met = np.load(root / sh["meta"], allow_pickle=False)
            assert hits.dtype == HIT_DTYPE and hits.shape == (sh["n_hits"],) and hits["pixel"].max() < 16000
            assert offsets.dtype == np.int64 and offsets.shape == (sh["n_events"] + 1,) and offsets[-1] == sh["n_hits"]
            assert met.dtype.names is not None and len(met) == sh["n_events"]
            assert payload_sha256(root / sh["hits"]) == sh["sha256"]["hits"]
            assert sha256_file(root / sh["offsets"]) == sh["sha256"]["offsets"]
    assert index["sources"][0]["sha256"] == sha256_file(paths[0])
    assert index["sources"][0]["n_events"] == 230
    on_disk = json.loads((root / "index.json").read_text())
    assert on_disk["counts"] == index["counts"]
    assert sum(c["events"] for c in on_disk["counts"].values()) == 230
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # temporary dir gone

    ds = ShardDataset(root, "train")
    ds.verify()
    first = root / train[0]["hits"]
    raw = bytearray(first.read_bytes())
    raw[-1] ^= 0xFF
    first.write_bytes(bytes(raw))
    with pytest.raises(NucvnError, match=re.escape("hits-00000.npy")):
        ds.verify()


def test_split_is_stable_when_files_are_added_and_follows_seed(tmp_path: Path) -> None:
    paths = _files(tmp_path, [400, 400, 400])
    build_shards(paths[:2], tmp_path / "a", progress=False)
    build_shards(paths, tmp_path / "b", progress=False)
    build_shards(paths[:2], tmp_path / "c", seed=1, progress=False)
    a, b, c = _all(tmp_path / "a"), _all(tmp_path / "b"), _all(tmp_path / "c")
    assert all(b[k] == v for k, v in a.items())
    assert len(b) > len(a)
    moved = sum(a[k] != c[k] for k in a)
    assert 0.1 * len(a) < moved < 0.6 * len(a)
    frac = {s: sum(v == s for v in b.values()) / len(b) for s in SPLITS}
    assert frac["train"] == pytest.approx(0.8, abs=0.05) and frac["val"] == pytest.approx(0.1, abs=0.04)


def test_split_fractions_are_renormalised_and_recorded(tmp_path: Path) -> None:
    paths = _files(tmp_path, [600])
    index = build_shards(paths, tmp_path / "s", split={"train": 0.8, "val": 0.2, "test": 0.1}, progress=False)
    used = index["params"]["split_used"]
    assert index["params"]["split"] == {"train": 0.8, "val": 0.2, "test": 0.1}
    assert sum(used.values()) == pytest.approx(1.0) and used["val"] == pytest.approx(0.2 / 1.1)
    n = index["selection"]["events_out"]
    assert index["splits"]["val"]["n_events"] / n == pytest.approx(0.2 / 1.1, abs=0.05)
    with pytest.raises(NucvnError, match=re.escape("preprocess.split")):
        build_shards(paths, tmp_path / "t", split={"train": 1.0, "dev": 0.1}, progress=False)
    with pytest.raises(NucvnError, match=re.escape("preprocess.split")):
        build_shards(paths, tmp_path / "t", split={"train": -1.0, "val": 0.5}, progress=False)


def test_identity_hash_ignores_dtype_and_falls_back_to_file_index(tmp_path: Path) -> None:
    images, meta = random_events(300, seed=3)
    a = write_events(tmp_path / "x" / "neutrino1.h5", images, meta)
    with h5py.File(tmp_path / "neutrino1.h5", "w") as f:  # same identity stored as (N,) int64
        f["cvnmap"] = images.reshape(300, -1)
        for k, v in meta.items():
            f[f"neutrino/{k}"] = v.astype(np.int64) if k in ("run", "subrun", "evt", "cycle", "subevt") else v
    build_shards([a], tmp_path / "a", progress=False)
    build_shards([tmp_path / "neutrino1.h5"], tmp_path / "b", progress=False)
    assert _all(tmp_path / "a") == _all(tmp_path / "b")
    minimal = {k: meta[k] for k in ("interaction", "nuenergy", "lepenergy")}
    m = write_events(tmp_path / "m" / "neutrino1.h5", images, minimal)
    index = build_shards([m], tmp_path / "m_out", progress=False)
    assert index["identity"] == ["file", "index"]
    ds = ShardDataset(tmp_path / "m_out", "train")
    assert (ds.labels("n_tracks") == -1).all()
    assert ds[0][1]["n_showers"].item() == -1


def test_raw_mode_key_does_not_shadow_the_mode_label(tmp_path: Path) -> None:
    images, meta = random_events(200, seed=5)
    meta["mode"] = np.full(200, 7, dtype=np.uint8)
    p = write_events(tmp_path / "neutrino1.h5", images, meta)
    build_shards([p], tmp_path / "s", progress=False)
    md = ShardDataset(tmp_path / "s", "train").metadata
    assert (md["raw_mode"] == 7).all()
    assert (md["mode"].to_numpy() == ev.mode(md["interaction"].to_numpy())).all()


def test_bad_file_fails_or_is_skipped_and_old_output_survives(tmp_path: Path) -> None:
    good = _files(tmp_path, [200])
    bad = tmp_path / "neutrino9.h5"
    bad.write_bytes(good[0].read_bytes()[:5000])  # truncated copy
    out = tmp_path / "shards"
    build_shards(good, out, progress=False)
    before = (out / "index.json").read_text()
    with pytest.raises(NucvnError, match=r"neutrino9\.h5.*on_bad_file"):
        build_shards([*good, bad], out, progress=False)
    assert (out / "index.json").read_text() == before
    index = build_shards([*good, bad], out, on_bad_file="skip", progress=False)
    assert [s["name"] for s in index["skipped"]] == ["neutrino9.h5"]
    assert "neutrino9.h5" in index["skipped"][0]["reason"]
    assert [s["name"] for s in index["sources"]] == ["neutrino1.h5"]
    with pytest.raises(NucvnError, match="every input file is bad"):
        build_shards([bad], tmp_path / "none", on_bad_file="skip", progress=False)
    assert not (tmp_path / "none").exists()


def test_everything_dropped_is_an_error(tmp_path: Path) -> None:
    paths = _files(tmp_path, [50])
    with pytest.raises(NucvnError, match="no events left"):
        build_shards(paths, tmp_path / "s", drop_interactions=range(16), progress=False)


def test_batch_loader_pickle_and_labels(tmp_path: Path) -> None:
    paths = _files(tmp_path, [500])
    build_shards(paths, tmp_path / "s", shard_size=64, progress=False)
    ds = ShardDataset(tmp_path / "s", "train")
    idx = [len(ds) - 1, 3, 70, 3, 130, 0]
    x, y = ds.batch(idx)
    assert x.shape == (6, 2, 100, 80)
    hits = ds.sparse_batch(idx)  # what a GPU run copies and decodes on the device
    assert hits.pixel.dtype == torch.int16 and len(hits.pixel) == int(x.count_nonzero())
    assert torch.equal(hits.decode(), x) and torch.equal(ds.sparse_batch([]).decode(),
                                                         torch.zeros(0, 2, 100, 80, dtype=torch.uint8))
    sparse_loader = batch_loader(ds, range(len(ds)), 7, sparse=True)
    first, rows = next(iter(sparse_loader))
    assert torch.equal(first.decode(), ds.batch(rows.numpy())[0])
    for b, i in enumerate(idx):
        xi, yi = ds[i]
        assert torch.equal(x[b], xi)
        assert all(y[k][b].item() == pytest.approx(v.item()) for k, v in yi.items())
    assert ds[-1][0].equal(ds[len(ds) - 1][0])
    with pytest.raises(IndexError):
        ds[len(ds)]
    for read in (ds.images, ds.sparse_batch, ds.labels_of):  # one message, naming the index, from each reader
        message = rf"^index {-len(ds) - 1} out of range for train split of {len(ds)} events$"
        with pytest.raises(IndexError, match=message):
            read([0, -1, -len(ds) - 1, len(ds)])
    loader = torch.utils.data.DataLoader(ds, batch_size=32, shuffle=False)
    xb, yb = next(iter(loader))
    assert torch.equal(xb, ds.batch(range(32))[0]) and yb["numu_cc"].shape == (32,)
    state = pickle.dumps(ds)
    assert len(state) < 200_000  # no image data travels to DataLoader workers
    clone = pickle.loads(state)
    assert torch.equal(clone[5][0], ds[5][0])
    md = ds.metadata
    assert (ds.labels("numu_cc") == md["numu_cc"].to_numpy()).all()
    assert {"file", "index", "run", "evt", "flavour", "lepton_fraction"} <= set(md.columns)
    assert set(ds.shard_sha256) == {sh[k] for sh in ds.index["splits"]["train"]["shards"]
                                    for k in ("hits", "offsets", "meta")}
    with pytest.raises(NucvnError, match="no column"):
        ds.labels("nope")
    with pytest.raises(NucvnError, match=re.escape("index.json")):
        ShardDataset(tmp_path / "missing", "train")


def test_damaged_shard_directory_is_refused_with_the_file_named(tmp_path: Path) -> None:
    paths = _files(tmp_path, [150])
    index = build_shards(paths, tmp_path / "s", shard_size=50, progress=False)
    first = index["splits"]["train"]["shards"][0]
    np.save(tmp_path / "s" / first["hits"], np.zeros((3, 2, 100, 80), np.uint8))
    with pytest.raises(NucvnError, match=re.escape("hits-00000.npy: holds uint8 (3, 2, 100, 80)")):
        ShardDataset(tmp_path / "s", "train")
    build_shards(paths, tmp_path / "s", shard_size=50, progress=False)
    np.save(tmp_path / "s" / first["offsets"], np.arange(4))
    with pytest.raises(NucvnError, match=re.escape("offsets-00000.npy: ")):
        ShardDataset(tmp_path / "s", "train", verify=False)
    (tmp_path / "s" / "index.json").write_text("{not json")
    with pytest.raises(NucvnError, match=re.escape("index.json: not valid JSON")):
        ShardDataset(tmp_path / "s", "train")


def test_file_corrupt_mid_way_fails_naming_it_and_writes_nothing(tmp_path: Path) -> None:
    path = _files(tmp_path, [640])[0]
    with h5py.File(path, "r") as f:
        info = f["cvnmap"].id.get_chunk_info(4)  # a chunk in the middle; the last event stays readable
    raw = bytearray(path.read_bytes())
    raw[info.byte_offset : info.byte_offset + info.size] = bytes(info.size)
    path.write_bytes(bytes(raw))
    with pytest.raises(NucvnError, match=r"neutrino1\.h5 \[cvnmap\]"):
        build_shards([path], tmp_path / "s", chunk_size=100, progress=False)
    assert not (tmp_path / "s").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".s.")]
