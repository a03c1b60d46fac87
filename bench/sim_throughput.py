"""Fast-simulation throughput for the default mix, end to end (generate → detector → gzip file).

Prints events/s with 1 worker and with ``--workers`` worker processes, per core, plus the split
of one worker's time between the generator and the detector. CPU-time rates are printed next to
wall-clock ones: on a machine shared with other work they are the meaningful per-core figure.
Target: >= 500 events/s per core.

    python bench/sim_throughput.py [--events 3000] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from nucvn.sim.detector import Detector
from nucvn.sim.generator import Generator
from nucvn.sim.generator_params import GeneratorParams
from nucvn.sim.simulate import simulate_files


def _split(events: int) -> tuple[float, float]:
    gen = Generator(GeneratorParams(), 12345)
    det = Detector()
    det.simulate(gen.generate(200), 1)  # warm up (numba cache load, Pythia init)
    t0 = time.process_time()
    batch = gen.generate(events)
    t1 = time.process_time()
    det.simulate(batch, 2)
    t2 = time.process_time()
    return events / (t1 - t0), events / (t2 - t1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000, help="events per worker (default 3000)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    gen_rate, det_rate = _split(args.events)
    print(f"generator alone: {gen_rate:8.0f} events/s (CPU time, one core)")
    print(f"detector alone:  {det_rate:8.0f} events/s (CPU time, one core)")
    with tempfile.TemporaryDirectory() as tmp:
        simulate_files(Path(tmp) / "warm", files=1, events=100, seed=1, progress=False)
        t0, c0 = time.perf_counter(), time.process_time()
        simulate_files(Path(tmp) / "w1", files=1, events=args.events, seed=2, workers=1, progress=False)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"1 worker:  {args.events / wall:8.0f} events/s wall, {args.events / cpu:8.0f} events/s per CPU-second "
              f"(end to end incl. gzip HDF5 writing)")  # fmt: skip
        if args.workers > 1:
            n = args.workers
            t0 = time.perf_counter()
            c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            simulate_files(Path(tmp) / "wn", files=n, events=args.events, seed=3, workers=n, progress=False)
            wall = time.perf_counter() - t0
            c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            child_cpu = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)
            total = n * args.events
            print(f"{n} workers: {total / wall:8.0f} events/s wall = {total / wall / n:8.0f} events/s per core; "
                  f"{total / child_cpu:8.0f} events/s per worker CPU-second "
                  "(both include worker start-up)")
    print("target: >= 500 events/s per core")


if __name__ == "__main__":
    main()
