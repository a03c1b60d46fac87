"""Benchmark: the training loader on sparse shards against the dense shards of format 1, one core.

Reads the train split of a shard directory (``--shards``, e.g. ``data/shards``; by default it
simulates ``--files`` x ``--events`` events and preprocesses them into a temporary directory), then
writes the same events, decoded, as dense format-1 shards (``uint8 (n, 2, 100, 80)`` per shard
file, read with one sorted fancy index per shard from a memory map, as the format-1 reader did)
and times, in one run, with torch and numpy on one thread, ``--batches`` shuffled batches of
``--batch`` events through each of the following, in ``--repeat`` rounds that alternate between
them: the best round's rate is shown, and each reader's ratio to the dense reader round by round
(median, min and max: a shared machine's drifts move single rounds by 30 %, pairs much less):

* ``dense (format 1)``: the format-1 reader's batch, memory-mapped dense shards;
* ``sparse -> dense (CPU)``: :func:`nucvn.train.loop.batch_loader` as CPU training uses it (hits
  gathered and decoded into dense maps);
* ``sparse hits only``: the same loader as CUDA training uses it (hits gathered, decoded on the GPU).

Each is timed with the files in the page cache ("warm") and after evicting them with
``posix_fadvise(DONTNEED)`` ("cold": read from disk, as when a data set exceeds memory). It prints
events/s, the ratio to the dense reader, and the bytes per event on disk of both formats.

With ``--epoch-only`` it instead runs one shuffled epoch over the whole train split through the
CPU training loader and prints its rate and this process's peak resident memory (``VmHWM``, memory
maps of the shards included): the loader's memory at full size.

Target (issue 13): sparse -> dense at >= 2x the dense reader; <= 1 kB per event on disk.

    python bench/loader_rate.py [--shards data/shards] [--files 2 --events 10000] [--batch 128 --batches 300]
    python bench/loader_rate.py --shards data/shards --epoch-only
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from benchutil import peak_rss_mb
from nucvn.core.events import IMAGE_SHAPE
from nucvn.data.shards import ShardDataset, build_shards
from nucvn.train.loop import batch_loader


class DenseReference:
    """The format-1 reader's batch: dense uint8 shards, memory-mapped, one sorted fancy index per shard."""

    def __init__(self, paths: list[Path]) -> None:
        self.images = [np.load(p, mmap_mode="r", allow_pickle=False) for p in paths]
        self.offsets = np.cumsum([0] + [len(a) for a in self.images])

    def batch(self, idx: np.ndarray) -> torch.Tensor:
        out = np.empty((len(idx), *IMAGE_SHAPE), dtype=np.uint8)
        shard = np.searchsorted(self.offsets, idx, side="right") - 1
        for s in np.unique(shard):
            pos = np.flatnonzero(shard == s)
            local = idx[pos] - self.offsets[s]
            order = np.argsort(local, kind="stable")
            out[pos[order]] = self.images[int(s)][local[order]]
        return torch.from_numpy(out)


def _evict(paths: list[Path]) -> None:
    """Drop the files' pages from the page cache (clean pages need no privileges)."""
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _time(fn: Callable[[np.ndarray], object], batches: list[np.ndarray]) -> float:
    start = time.perf_counter()
    for b in batches:
        fn(b)
    return sum(len(b) for b in batches) / (time.perf_counter() - start)


def _write_dense(data: ShardDataset, n: int, out: Path, shard_size: int) -> list[Path]:
    """The first ``n`` events of ``data`` as dense format-1 shards of ``shard_size`` events."""
    paths = []
    for k, start in enumerate(range(0, n, shard_size)):
        p = out / f"images-{k:05d}.npy"
        np.save(p, data.batch(np.arange(start, min(start + shard_size, n)))[0].numpy())
        paths.append(p)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shards", type=Path, help="shard directory to read (default: simulate one)")
    ap.add_argument("--files", type=int, default=2)
    ap.add_argument("--events", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--batches", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=9, help="alternating rounds per cache state")
    ap.add_argument("--max-events", type=int, default=40000, help="events of the train split used (dense copy size)")
    ap.add_argument("--epoch-only", action="store_true", help="one epoch of the whole train split: rate and peak RSS")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.epoch_only:
        data = ShardDataset(args.shards, "train")
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0)).tolist()
        start = time.perf_counter()
        n = sum(len(rows) for _, rows in batch_loader(data, order, args.batch))
        rate = n / (time.perf_counter() - start)
        print(f"one epoch of the train split through the CPU loader: {n} events, {rate:.0f} events/s, "
              f"peak RSS {peak_rss_mb():.0f} MB")
        return
    with tempfile.TemporaryDirectory(prefix="nucvn-loader-") as tmp_name:
        tmp = Path(tmp_name)
        root = args.shards
        if root is None:
            from nucvn.sim.simulate import simulate_files

            files = simulate_files(tmp / "raw", files=args.files, events=args.events, seed=1, workers=2, progress=False)
            root = tmp / "shards"
            build_shards(files, root, progress=False)
        data = ShardDataset(root, "train")
        shards = data.index["splits"]["train"]["shards"]
        sparse_files = [root / sh[k] for sh in shards for k in ("hits", "offsets", "meta")]
        n_all = len(data)
        sparse_bytes = sum(p.stat().st_size for p in sparse_files)
        (tmp / "dense").mkdir()
        n = min(n_all, args.max_events)  # both readers read the first n events of the split
        dense_paths = _write_dense(data, n, tmp / "dense", shards[0]["n_events"])
        dense = DenseReference(dense_paths)
        meta_bytes = sum((root / sh["meta"]).stat().st_size for sh in shards)
        dense_bytes = sum(p.stat().st_size for p in dense_paths) / n + meta_bytes / n_all
        rng = np.random.default_rng(0)
        batches = [np.sort(rng.choice(n, size=min(args.batch, n), replace=False)) for _ in range(args.batches)]
        dense_loader = batch_loader(data, range(n), args.batch)
        # The loader's own per-batch call, given the list of Python ints that its BatchSampler yields
        # (a list of numpy scalars would cost more to convert than the whole decode).
        cpu = lambda b: dense_loader.dataset[b.tolist()]  # noqa: E731
        sparse_loader = batch_loader(data, range(n), args.batch, sparse=True)
        hits_only = lambda b: sparse_loader.dataset[b.tolist()]  # noqa: E731
        readers = (("dense (format 1)", dense.batch, dense_paths),
                   ("sparse -> dense (CPU)", cpu, sparse_files),
                   ("sparse hits only (GPU decodes)", hits_only, sparse_files))
        for _, fn, _ in readers:  # first touch: compile, map pages
            _time(fn, batches[:20])
        rows = []
        for cache in ("warm", "cold"):
            rates: dict[str, list[float]] = {name: [] for name, _, _ in readers}
            for _ in range(args.repeat):  # the readers alternate, so drifts of the machine hit all alike
                for name, fn, files in readers:
                    if cache == "cold":
                        _evict(files)
                    rates[name].append(_time(fn, batches))
            base = rates["dense (format 1)"]
            for name, r in rates.items():
                ratios = sorted(a / b for a, b in zip(r, base, strict=True))
                rows.append((cache, name, max(r), statistics.median(ratios), ratios[0], ratios[-1]))
        print(f"train split: {n} of {n_all} events read, batch {args.batch}, {args.batches} shuffled batches, 1 thread")
        print(f"bytes per event on disk: sparse {sparse_bytes / n_all:.0f} (hits, offsets, metadata), "
              f"dense format 1 {dense_bytes:.0f}; ratio {dense_bytes / (sparse_bytes / n_all):.1f}")
        print(f"{args.repeat} alternating rounds: the best round's events/s; the ratio to the dense reader "
              "round by round (median, min-max)")
        print(f"{'cache':<6} {'reader':<32} {'events/s':>10} {'x dense':>8} {'min-max':>11}")
        for cache, name, rate, ratio, lo, hi in rows:
            print(f"{cache:<6} {name:<32} {rate:>10.0f} {ratio:>8.2f} {lo:>5.2f}-{hi:<5.2f}")


if __name__ == "__main__":
    main()
