"""Benchmark: stream-reading event files with nucvn.data.h5io vs plain h5py.

Writes ``--files`` files of ``--events`` events (sparse random maps, gzip, as the writer stores
them) into a temporary directory, then, each in a fresh subprocess so peak memory is its own:
  * ``nucvn``: ``open_events(dir).iter_chunks(1024)`` over every file (images + metadata);
  * ``h5py-chunked``: plain h5py reading the same chunks of ``cvnmap`` file by file;
  * ``h5py-all``: what the public notebooks do: every file's ``cvnmap`` read whole and concatenated.
Prints events/s and peak RSS (MB) for each, and the ratio nucvn / h5py-chunked.

Target (issue 2): nucvn holds memory under 500 MB for 10 files of 5,000 events.
Run: ``.venv/bin/python bench/read_rate.py [--files 10 --events 5000]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchutil import peak_rss_mb


def _write(directory: Path, files: int, events: int) -> None:
    from nucvn.data.h5write import write_events

    rng = np.random.default_rng(0)
    for i in range(1, files + 1):
        images = np.zeros((events, 16000), dtype=np.uint8)
        hits = rng.integers(0, 16000, size=(events, 150))
        np.put_along_axis(images, hits, rng.integers(1, 256, size=hits.shape, dtype=np.uint8), axis=1)
        nu = rng.uniform(0.5, 20, events).astype(np.float32)
        meta = {"nuenergy": nu, "lepenergy": nu * 0.5, "interaction": rng.integers(0, 16, events),
                "evt": np.arange(events)}
        write_events(directory / f"neutrino{i}.h5", images, meta)


def _child(mode: str, directory: str) -> None:
    import h5py

    start = time.perf_counter()
    n = 0
    checksum = 0
    paths = sorted(Path(directory).glob("neutrino*.h5"))
    if mode == "nucvn":
        from nucvn.data.h5io import open_events

        for chunk in open_events(directory).iter_chunks(1024):
            assert chunk.images is not None
            n += len(chunk)
            checksum += int(chunk.images[:, :, :, 0].sum())
    elif mode == "h5py-chunked":
        for p in paths:
            with h5py.File(p, "r") as f:
                ds = f["cvnmap"]
                meta = {k: f["neutrino"][k][()] for k in f["neutrino"]}
                for s in range(0, ds.shape[0], 1024):
                    block = ds[s : s + 1024].reshape(-1, 2, 100, 80)
                    n += block.shape[0]
                    checksum += int(block[:, :, :, 0].sum())
                del meta
    else:
        blocks = []
        for p in paths:
            with h5py.File(p, "r") as f:
                blocks.append(f["cvnmap"][()])
        allmaps = np.concatenate(blocks).reshape(-1, 2, 100, 80)
        n = allmaps.shape[0]
        checksum = int(allmaps[:, :, :, 0].sum())
    elapsed = time.perf_counter() - start
    peak_mb = peak_rss_mb()
    print(json.dumps({"mode": mode, "events": n, "seconds": elapsed, "events_per_s": n / elapsed,
                      "peak_rss_mb": peak_mb, "checksum": checksum}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    with tempfile.TemporaryDirectory(prefix="nucvn-bench-") as tmp:
        t0 = time.perf_counter()
        _write(Path(tmp), args.files, args.events)
        print(f"wrote {args.files} files x {args.events} events in {time.perf_counter() - t0:.1f} s")
        results = {}
        for mode in ("h5py-chunked", "nucvn", "h5py-all"):
            out = subprocess.run([sys.executable, __file__, "--child", mode, tmp], capture_output=True, text=True,
                                 check=True)
            results[mode] = json.loads(out.stdout)
            r = results[mode]
            print(f"{mode:>13}: {r['events_per_s']:9.0f} events/s   peak RSS {r['peak_rss_mb']:7.1f} MB   "
                  f"({r['events']} events)")
        assert len({r["checksum"] for r in results.values()}) == 1, "readers disagree"
        ratio = results["nucvn"]["events_per_s"] / results["h5py-chunked"]["events_per_s"]
        print(f"nucvn / h5py-chunked rate: {ratio:.2f};  nucvn peak RSS {results['nucvn']['peak_rss_mb']:.0f} MB "
              "(target < 500 MB)")


if __name__ == "__main__":
    main()
