"""Inflating stored chunks on threads gives exactly what h5py reads, or declines the dataset."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import random_events
from nucvn.core.errors import NucvnError
from nucvn.data.h5chunks import chunk_reader
from nucvn.data.h5io import IMAGE_KEY, open_events
from nucvn.data.h5write import write_events

RANGES = [(0, 1), (0, 7), (3, 40), (13, 14), (29, 30), (0, 30), (5, 30)]


def _write(path: Path, data: np.ndarray, **kwargs: object) -> h5py.Dataset:
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=data, **kwargs)
    return path


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("level", [1, 4, 9])
def test_rows_equal_h5py(tmp_path: Path, dtype: type, shuffle: bool, level: int) -> None:
    """zlib-ng inflates what HDF5's zlib deflated, at any level, to the bytes h5py reads."""
    rng = np.random.default_rng(3)
    data = (rng.random((30, 2, 5, 4)) * 300 * (rng.random((30, 2, 5, 4)) < 0.2)).astype(dtype)
    path = _write(tmp_path / "a.h5", data, chunks=(7, 2, 5, 4), compression="gzip", compression_opts=level,
                  shuffle=shuffle)
    with h5py.File(path) as f, ThreadPoolExecutor(3) as pool:
        reader = chunk_reader(f["x"])
        assert reader is not None and reader.shuffled == shuffle
        for a, b in RANGES:
            b = min(b, 30)
            got = reader.read(a, b, pool)
            assert got.dtype == f["x"].dtype and np.array_equal(got, f["x"][a:b]), (a, b)


@pytest.mark.parametrize("kwargs", [
    {},  # contiguous
    {"chunks": (4, 2, 5, 2), "compression": "gzip"},  # chunks split a row
    {"chunks": (4, 2, 5, 4), "compression": "lzf"},  # another compressor
    {"chunks": (4, 2, 5, 4), "compression": "gzip", "fletcher32": True},  # a checksum filter too
    {"chunks": (4, 2, 5, 4)},  # chunked, no filter
])
def test_declines_what_it_cannot_inflate(tmp_path: Path, kwargs: dict[str, object]) -> None:
    path = _write(tmp_path / "b.h5", np.ones((10, 2, 5, 4), np.uint8), **kwargs)
    with h5py.File(path) as f:
        assert chunk_reader(f["x"]) is None


def test_event_reader_images_unchanged(tmp_path: Path) -> None:
    """The reader's chunks (fast path) hold the bytes h5py reads, across chunk boundaries."""
    images, meta = random_events(300, seed=5)
    path = write_events(tmp_path / "neutrino1.h5", images, meta, chunk_events=64)
    with h5py.File(path) as f:
        assert chunk_reader(f[IMAGE_KEY]) is not None
    for size, prefetch in ((100, 0), (37, 2)):
        got = np.concatenate([c.images for c in open_events(path).iter_chunks(size, prefetch=prefetch)])
        assert np.array_equal(got, images)


def test_corrupt_chunk_names_the_file(tmp_path: Path) -> None:
    """A damaged compressed chunk is refused with one line naming the file, as on the h5py path."""
    images, meta = random_events(200, seed=6)
    path = write_events(tmp_path / "neutrino2.h5", images, meta, chunk_events=50)
    with h5py.File(path) as f:
        offset = f[IMAGE_KEY].id.get_chunk_info(1).byte_offset
    raw = bytearray(path.read_bytes())
    raw[offset + 20 : offset + 60] = bytes(40)
    path.write_bytes(bytes(raw))
    with pytest.raises(NucvnError, match=r"neutrino2\.h5"):
        for _ in open_events(path).iter_chunks(64):
            pass
