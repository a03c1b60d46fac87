"""Tests of nucvn.data.shard_writer: streamed .npy shards, padded headers, writev."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from nucvn.core.events import IMAGE_SHAPE
from nucvn.data.manifest import sha256_file
from nucvn.data.shard_writer import SplitWriter, _npy_header, _writev, images_sha256, save_npy


@pytest.mark.parametrize("n", [1, 9, 10, 99999, 100000])
def test_padded_header_loads_with_the_short_shape(tmp_path: Path, n: int) -> None:
    full = _npy_header(np.dtype(np.uint8), (100000, 2, 100, 80))
    head = _npy_header(np.dtype(np.uint8), (n, 2, 100, 80), len(full))
    assert len(head) == len(full) and len(head) % 64 == 0
    path = tmp_path / "a.npy"
    path.write_bytes(head + bytes(3 * 16000))  # np.load checks the header, mmap only maps
    if n <= 3:
        assert np.load(path, allow_pickle=False).shape[0] == n
    else:
        with open(path, "rb") as f:
            assert np.lib.format.read_magic(f) == (1, 0)
            assert np.lib.format.read_array_header_1_0(f)[0] == (n, 2, 100, 80)


def test_split_writer_streams_shards_equal_to_np_save(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    dtype = np.dtype([("a", "<i8"), ("file", "<U12")])
    writer_root = tmp_path / "out"
    writer_root.mkdir()
    expected_images, expected_meta = [], []
    with ThreadPoolExecutor(max_workers=1) as pool:
        w = SplitWriter(writer_root, "train", 50, dtype, pool)
        for c in range(7):
            images = rng.integers(0, 255, (40, *IMAGE_SHAPE), dtype=np.uint8)
            meta = np.zeros(40, dtype)
            meta["a"] = np.arange(40) + 100 * c
            sel = np.flatnonzero(rng.random(40) < 0.6)
            w.add(images, meta, sel)
            expected_images.append(images[sel])
            expected_meta.append(meta[sel])
        w.finish()
    want_images, want_meta = np.concatenate(expected_images), np.concatenate(expected_meta)
    got_images = np.concatenate([np.load(writer_root / sh["images"], allow_pickle=False) for sh in w.shards])
    got_meta = np.concatenate([np.load(writer_root / sh["meta"], allow_pickle=False) for sh in w.shards])
    assert np.array_equal(got_images, want_images) and np.array_equal(got_meta, want_meta)
    assert [sh["n_events"] for sh in w.shards[:-1]] == [50] * (len(w.shards) - 1)
    for sh in w.shards:
        assert images_sha256(writer_root / sh["images"]) == sh["sha256"]["images"]
        payload = np.load(writer_root / sh["images"], allow_pickle=False).tobytes()
        assert hashlib.sha256(payload).hexdigest() == sh["sha256"]["images"]
        assert sha256_file(writer_root / sh["meta"]) == sh["sha256"]["meta"]
    assert not list(writer_root.rglob("*.tmp"))
    # a full shard is byte-identical to np.save of the same array
    ref = tmp_path / "ref.npy"
    np.save(ref, want_images[:50])
    assert (writer_root / w.shards[0]["images"]).read_bytes() == ref.read_bytes()
    assert save_npy(tmp_path / "m.npy", want_meta) == sha256_file(tmp_path / "m.npy")


def test_writev_more_buffers_than_iov_max(tmp_path: Path) -> None:
    data = [memoryview(bytes([i % 251]) * (i % 7 + 1)) for i in range(2500)]
    fd = os.open(tmp_path / "v", os.O_WRONLY | os.O_CREAT)
    try:
        _writev(fd, data)
    finally:
        os.close(fd)
    assert (tmp_path / "v").read_bytes() == b"".join(bytes(v) for v in data)
