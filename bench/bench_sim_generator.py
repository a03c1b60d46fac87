"""Event-generator throughput (no detector): events/s on one core for the default mix.

Usage: ``python bench/bench_sim_generator.py [--events N] [--seed S]``. Prints the rate of the
full generator, and of a numu-CC-only and an NC-only sample, and the share of DIS systems
(the part that calls Pythia), so the figure can be compared with the 3000 events/s target.
"""

from __future__ import annotations

import argparse
import time

from nucvn.sim.generator import Generator
from nucvn.sim.generator_params import GeneratorParams
from nucvn.sim.xsec import GenMode


def _rate(params: GeneratorParams, n: int, seed: int) -> tuple[float, float]:
    gen = Generator(params, seed)
    gen.generate(200)  # Pythia initialisation and imports outside the timing
    start = time.perf_counter()
    batch = gen.generate(n)
    elapsed = time.perf_counter() - start
    return n / elapsed, float((batch.truth["mode"] == GenMode.DIS).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    for label, params in (
        ("default mix", GeneratorParams()),
        ("numu_cc only", GeneratorParams(composition={"numu_cc": 1.0})),
        ("nc only", GeneratorParams(composition={"nc": 1.0})),
    ):
        rate, dis = _rate(params, args.events, args.seed)
        print(f"{label:14s} {rate:9.0f} events/s  (DIS share {dis:.2f}, {args.events} events, one core)")


if __name__ == "__main__":
    main()
