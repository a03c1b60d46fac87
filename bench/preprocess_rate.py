"""Preprocess throughput vs a plain h5py read of the same files, and preprocess peak memory.

Prints events/s of :func:`nucvn.data.shards.build_shards` and of reading every ``cvnmap`` chunk and
``neutrino/*`` dataset with bare h5py (the floor: decompression), measured alternately in the same
run on warm page cache (best of ``--repeat``), and their ratio (target >= 1.0 since the shards are
sparse, issue 13; it was 0.7 for dense shards), both in wall-clock time, in process CPU time (all
threads: the work if only one core were available) and in CPU time of the main thread
(build_shards writes and hashes shards in a second thread; when a core is free for it, the main
thread is the critical path). On a machine whose cores are busy with other work
the wall-clock ratio falls towards the all-threads ratio. A third reference, plain h5py read plus
a plain write of the same bytes, is the floor of any preprocessing that writes uncompressed
shards: on a VM that faults fresh page-cache pages in from the host (firecracker free-page
reporting) that write alone costs about as much as the read. Then it runs
build_shards in fresh subprocesses over 2, 4 and 8 files and prints each one's peak resident memory
(``VmHWM``) and tracemalloc peak: bounded memory shows as the same peak for every input size
(target < 1.5 GB).

    python bench/preprocess_rate.py [--files 8] [--events 2500] [--source random|sim]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from benchutil import peak_rss_mb
from nucvn.core.events import IMAGE_SHAPE, finalstate_code, flavour
from nucvn.data.h5write import write_events


def _random_file(path: Path, n: int, seed: int) -> Path:
    """Sparse images (a few straight tracks plus 1.5 % scattered hits, about 1 kB per event
    compressed, like the random test fixtures) and valid metadata."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, *IMAGE_SHAPE), dtype=np.uint8)
    for s in range(0, n, 256):
        block = images[s : s + 256]
        hit = rng.random(block.shape, dtype=np.float32) < 0.015
        block[hit] = rng.integers(1, 120, int(hit.sum()), dtype=np.uint8)
    for _ in range(4):
        p0, c0 = rng.integers(0, 100, n), rng.integers(0, 80, n)
        slope, length = rng.uniform(-1, 1, n), rng.integers(5, 60, n)
        for t in range(60):
            on = t < length
            p = np.clip(p0 + t, 0, 99)
            c = np.clip((c0 + slope * t).astype(int), 0, 79)
            for v in (0, 1):
                images[np.flatnonzero(on), v, p[on], c[on]] = rng.integers(20, 200, int(on.sum()), dtype=np.uint8)
    nu = rng.uniform(0.5, 20, n).astype(np.float32)
    inter = rng.integers(0, 15, n).astype(np.uint32)
    fl = flavour(inter)
    fs = finalstate_code(np.where(fl == 0, 0, np.where(fl == 1, 1, 2)), rng.integers(0, 4, n), rng.integers(0, 4, n))
    meta = {"nuenergy": nu, "lepenergy": nu * rng.uniform(0, 1, n).astype(np.float32), "interaction": inter,
            "finalstate": np.where(fl == 4, 48, fs).astype(np.uint32), "run": np.full(n, 7000 + seed),
            "subrun": np.zeros(n), "evt": np.arange(n), "cycle": np.zeros(n), "subevt": np.ones(n)}
    return write_events(path, images, meta)


def _make_files(directory: Path, files: int, events: int, source: str) -> list[Path]:
    if source == "sim":
        from nucvn.sim.simulate import simulate_files

        return sorted(simulate_files(directory, files=files, events=events, seed=1, workers=2, progress=False))
    return [_random_file(directory / f"neutrino{i}.h5", events, i) for i in range(1, files + 1)]


def _h5py_read(paths: list[Path], chunk: int) -> int:
    n = 0
    for p in paths:
        with h5py.File(p, "r") as f:
            meta = {k: v[()] for k, v in f["neutrino"].items()}
            ds = f["cvnmap"]
            for s in range(0, ds.shape[0], chunk):
                ds[s : s + chunk]
            n += ds.shape[0]
            del meta
    return n


def _h5py_read_write(paths: list[Path], chunk: int, out: Path) -> int:
    """The floor of any preprocessing: plain h5py read plus a plain write of the same bytes."""
    n = 0
    out.mkdir(exist_ok=True)
    for p in paths:
        with h5py.File(p, "r") as f, open(out / f"{p.stem}.raw", "wb") as g:
            meta = {k: v[()] for k, v in f["neutrino"].items()}
            ds = f["cvnmap"]
            for s in range(0, ds.shape[0], chunk):
                g.write(ds[s : s + chunk].data)
            n += ds.shape[0]
            del meta
    return n


def _child(paths: list[str], out: str) -> None:
    """Run build_shards once and print peak RSS and tracemalloc peak as JSON."""
    import tracemalloc

    from nucvn.data.shards import build_shards

    base = peak_rss_mb()
    tracemalloc.start()
    build_shards([Path(p) for p in paths], Path(out), progress=False)
    _, peak = tracemalloc.get_traced_memory()
    rss = peak_rss_mb()
    print(json.dumps({"maxrss_mb": rss, "rss_after_imports_mb": base, "tracemalloc_peak_mb": peak / 2**20}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--events", type=int, default=2500)
    ap.add_argument("--chunk", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--source", choices=("random", "sim"), default="random")
    ap.add_argument("--child", nargs=2, metavar=("PATHS_JSON", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(json.loads(args.child[0]), args.child[1])
        return
    from nucvn.data.shards import build_shards

    with tempfile.TemporaryDirectory(prefix="nucvn-bench-") as tmp:
        root = Path(tmp)
        paths = _make_files(root / "raw", args.files, args.events, args.source)
        size = sum(p.stat().st_size for p in paths)
        print(f"{len(paths)} {args.source} files, {args.files * args.events} events, {size / 2**20:.1f} MiB on disk")
        _h5py_read(paths, args.chunk)  # warm the page cache
        build_shards(paths, root / "shards", chunk_size=args.chunk, progress=False)  # warm up
        kinds = ("read", "read+write", "prep")
        wall: dict[str, list[float]] = {k: [] for k in kinds}
        cpu: dict[str, list[float]] = {k: [] for k in kinds}
        main: dict[str, list[float]] = {k: [] for k in kinds}
        for _ in range(args.repeat):
            for key in kinds:
                shutil.rmtree(root / "shards", ignore_errors=True)
                shutil.rmtree(root / "copy", ignore_errors=True)
                t, c, m = time.perf_counter(), time.process_time(), time.thread_time()
                if key == "read":
                    n = _h5py_read(paths, args.chunk)
                elif key == "read+write":
                    _h5py_read_write(paths, args.chunk, root / "copy")
                else:
                    build_shards(paths, root / "shards", chunk_size=args.chunk, progress=False)
                wall[key].append(time.perf_counter() - t)
                cpu[key].append(time.process_time() - c)
                main[key].append(time.thread_time() - m)
        for what, d in (("wall clock", wall), ("CPU time, all threads (one core's worth of work)", cpu),
                        ("CPU time of the main thread (the critical path when a core is free for the writer)", main)):
            rate = {k: n / min(v) for k, v in d.items()}
            print(f"{what}, best of {args.repeat}:")
            print(f"  plain h5py read              : {rate['read']:9.0f} events/s")
            print(f"  plain h5py read + plain write: {rate['read+write']:9.0f} events/s  (floor of any preprocessing)")
            print(f"  build_shards                 : {rate['prep']:9.0f} events/s")
            print(f"  ratio build_shards / read    : {rate['prep'] / rate['read']:.2f}  (target >= 1.0)")
            print(f"  ratio build_shards / read+write: {rate['prep'] / rate['read+write']:.2f}")
        print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print("peak memory of build_shards in a fresh process (target < 1.5 GB, flat in input size):")
        for k in sorted({min(2, len(paths)), min(4, len(paths)), len(paths)}):
            cmd = [sys.executable, __file__, "--child", json.dumps([str(p) for p in paths[:k]]), str(root / f"mem{k}")]
            res = json.loads(subprocess.run(cmd, check=True, capture_output=True,
                                            text=True).stdout.strip().splitlines()[-1])
            print(f"  {k:3d} files {k * args.events:7d} events: max RSS {res['maxrss_mb']:7.1f} MB "
                  f"(after imports {res['rss_after_imports_mb']:.1f} MB), tracemalloc peak "
                  f"{res['tracemalloc_peak_mb']:7.1f} MB")


if __name__ == "__main__":
    main()
