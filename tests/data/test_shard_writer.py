"""Tests of nucvn.data.shard_writer and nucvn.data.sparse: streamed sparse .npy shards, padded headers,
the hit encoding and its decoding, writev."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from nucvn.core.events import IMAGE_SHAPE
from nucvn.data.hits import HIT_DTYPE, encode
from nucvn.data.manifest import sha256_file
from nucvn.data.shard_writer import (
    SplitWriter,
    _npy_header,
    _writev,
    payload_sha256,
    save_npy,
)
from nucvn.data.sparse import SparseBatch


@pytest.mark.parametrize("n", [0, 1, 9, 10, 99999, 10**15 - 1])
def test_padded_header_loads_with_the_final_shape(tmp_path: Path, n: int) -> None:
    full = _npy_header(HIT_DTYPE, (10**15,))
    head = _npy_header(HIT_DTYPE, (n,), len(full))
    assert len(head) == len(full) and len(head) % 64 == 0
    path = tmp_path / "a.npy"
    path.write_bytes(head + bytes(3 * min(n, 5)))  # np.load checks the header, mmap only maps
    if n <= 5:
        assert np.load(path, allow_pickle=False).shape == (n,)
    else:
        with open(path, "rb") as f:
            assert np.lib.format.read_magic(f) == (1, 0)
            assert np.lib.format.read_array_header_1_0(f)[0] == (n,)


def _decode(hits: np.ndarray, counts: np.ndarray) -> np.ndarray:
    batch = SparseBatch(torch.from_numpy(hits["pixel"].astype(np.int16)),
                        torch.from_numpy(np.ascontiguousarray(hits["value"])),
                        torch.from_numpy(counts), torch.arange(len(counts)), size=len(counts))
    return batch.decode().numpy()


def test_encode_then_decode_gives_the_maps_back_and_keeps_the_pixel_layout() -> None:
    rng = np.random.default_rng(3)
    images = np.zeros((30, *IMAGE_SHAPE), np.uint8)
    lit = rng.random(images.shape) < 0.02
    images[lit] = rng.integers(1, 256, int(lit.sum()), dtype=np.uint8)
    images[4] = 0  # an empty event
    images[7, 1, 99, 79] = 255  # the last pixel: view 1, plane 99, cell 79
    images[8, 0, 0, 0] = 1
    hits, counts = encode(images)
    assert hits.dtype.itemsize == 3 and counts[4] == 0 and counts.sum() == len(hits) == np.count_nonzero(images)
    first7 = counts[:7].sum()
    last7 = first7 + counts[7] - 1
    assert hits["pixel"][last7] == 1 * 8000 + 99 * 80 + 79 and hits["value"][last7] == 255
    assert np.array_equal(_decode(hits, counts), images)
    # rows in any order: the batch holds event b at row rows[b]
    order = np.array([2, 0, 1])
    three, c3 = encode(images[[5, 6, 7]][np.argsort(order)])
    batch = SparseBatch(torch.from_numpy(three["pixel"].astype(np.int16)),
                        torch.from_numpy(np.ascontiguousarray(three["value"])),
                        torch.from_numpy(c3), torch.from_numpy(np.sort(order)), size=3)
    assert np.array_equal(batch.decode().numpy(), images[[5, 6, 7]][np.argsort(order)])
    # chosen rows are read in place and give the records of those events alone, in the order asked
    rows = np.array([9, 4, 7, 0])
    picked, c_picked = encode(images, rows)
    alone, c_alone = encode(images[rows])
    assert picked.tobytes() == alone.tobytes() and np.array_equal(c_picked, c_alone)
    assert np.array_equal(c_picked, [np.count_nonzero(images[r]) for r in rows])


def test_split_writer_streams_sparse_shards_equal_to_np_save(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    dtype = np.dtype([("a", "<i8"), ("file", "<U12")])
    writer_root = tmp_path / "out"
    writer_root.mkdir()
    expected_images, expected_meta = [], []
    with ThreadPoolExecutor(max_workers=1) as pool:
        w = SplitWriter(writer_root, "train", 50, dtype, pool)
        for c in range(7):
            images = (rng.integers(0, 255, (40, *IMAGE_SHAPE),
                                   dtype=np.uint8) * (rng.random((40, *IMAGE_SHAPE)) < 0.03)).astype(np.uint8)
            meta = np.zeros(40, dtype)
            meta["a"] = np.arange(40) + 100 * c
            sel = np.flatnonzero(rng.random(40) < 0.6)
            w.add(images, meta, sel)
            expected_images.append(images[sel])
            expected_meta.append(meta[sel])
        w.finish()
    want_images, want_meta = np.concatenate(expected_images), np.concatenate(expected_meta)
    def load(sh: dict, kind: str) -> np.ndarray:
        return np.load(writer_root / sh[kind], allow_pickle=False)

    got_images = np.concatenate([_decode(load(sh, "hits"), np.diff(load(sh, "offsets"))) for sh in w.shards])
    got_meta = np.concatenate([load(sh, "meta") for sh in w.shards])
    assert np.array_equal(got_images, want_images) and np.array_equal(got_meta, want_meta)
    assert [sh["n_events"] for sh in w.shards[:-1]] == [50] * (len(w.shards) - 1)
    for sh in w.shards:
        assert payload_sha256(writer_root / sh["hits"]) == sh["sha256"]["hits"]
        assert hashlib.sha256(load(sh, "hits").tobytes()).hexdigest() == sh["sha256"]["hits"]
        assert load(sh, "offsets")[-1] == sh["n_hits"] == len(load(sh, "hits"))
        for kind in ("offsets", "meta"):
            assert sha256_file(writer_root / sh[kind]) == sh["sha256"][kind]
    assert not list(writer_root.rglob("*.tmp"))
    # a hits file is np.save of the same hits, up to the header's padding
    ref = tmp_path / "ref.npy"
    hits0, _ = encode(want_images[:50])
    np.save(ref, hits0)
    assert np.array_equal(load(w.shards[0], "hits"), hits0)
    assert (writer_root / w.shards[0]["hits"]).read_bytes().endswith(ref.read_bytes()[128:])
    assert save_npy(tmp_path / "m.npy", want_meta) == sha256_file(tmp_path / "m.npy")


def test_writev_more_buffers_than_iov_max(tmp_path: Path) -> None:
    data = [memoryview(bytes([i % 251]) * (i % 7 + 1)) for i in range(2500)]
    fd = os.open(tmp_path / "v", os.O_WRONLY | os.O_CREAT)
    try:
        _writev(fd, data)
    finally:
        os.close(fd)
    assert (tmp_path / "v").read_bytes() == b"".join(bytes(v) for v in data)
