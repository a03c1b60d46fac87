"""HitTable reads random batches across shards back to the maps that were encoded."""

from __future__ import annotations

import numpy as np
import pytest

from nucvn.core.events import N_PIXELS
from nucvn.data.hits import HitTable, encode


def _shards(sizes: list[int], seed: int = 0) -> tuple[np.ndarray, HitTable]:
    """Random sparse maps (some empty, some dense), encoded into one shard per size."""
    rng = np.random.default_rng(seed)
    n = sum(sizes)
    dense = np.zeros((n, N_PIXELS), np.uint8)
    for i in range(n):
        k = [0, 1, 200, 3000][i % 4]
        dense[i, rng.choice(N_PIXELS, k, replace=False)] = rng.integers(1, 256, k)
    hits, offsets, start = [], [], 0
    for size in sizes:
        h, counts = encode(dense[start : start + size].reshape(size, 2, 100, 80))
        hits.append(h)
        offsets.append(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
        start += size
    return dense, HitTable(hits, offsets)


def test_decode_and_gather_random_batches_across_shards() -> None:
    dense, table = _shards([37, 1, 64, 20])
    n = len(dense)
    rng = np.random.default_rng(1)
    for _ in range(30):
        idx = rng.integers(-n, n, rng.integers(0, 40))  # negative, repeated, any order
        out = np.full((len(idx), N_PIXELS), 7, np.uint8)  # stale bytes must be overwritten
        assert table.decode(idx.copy(), out) == -1
        np.testing.assert_array_equal(out, dense[idx % n])
        pixel, value, lengths, rows, bad = table.gather(idx.copy())
        assert bad == -1 and sorted(rows) == list(range(len(idx))) and lengths.sum() == len(pixel)
        rebuilt = np.zeros_like(out)
        ends = np.cumsum(lengths)
        for r, a, b in zip(rows, ends - lengths, ends, strict=True):
            rebuilt[r, pixel[a:b]] = value[a:b]
        np.testing.assert_array_equal(rebuilt, dense[idx % n])
        assert pixel.dtype == np.int16 and value.dtype == np.uint8


def test_out_of_range_gives_its_position_and_decodes_nothing() -> None:
    _, table = _shards([10, 5])
    out = np.full((3, N_PIXELS), 7, np.uint8)
    assert table.decode(np.array([2, -15, 15], np.int64), out) == 2
    assert (out == 7).all()
    assert table.decode(np.array([-16], np.int64), out[:1]) == 0
    pixel, value, lengths, rows, bad = table.gather(np.array([0, 99], np.int64))
    assert bad == 1 and len(pixel) == len(value) == len(lengths) == len(rows) == 0


def test_empty_table() -> None:
    table = HitTable([], [])
    assert table.first.tolist() == [0]
    assert table.decode(np.zeros(0, np.int64), np.zeros((0, N_PIXELS), np.uint8)) == -1
    assert table.decode(np.array([0], np.int64), np.zeros((1, N_PIXELS), np.uint8)) == 0
    assert table.gather(np.array([0], np.int64))[-1] == 0


@pytest.mark.parametrize("sizes", [[1], [3, 3, 3]])
def test_whole_table_in_order(sizes: list[int]) -> None:
    dense, table = _shards(sizes, seed=2)
    out = np.empty((len(dense), N_PIXELS), np.uint8)
    assert table.decode(np.arange(len(dense), dtype=np.int64), out) == -1
    np.testing.assert_array_equal(out, dense)
