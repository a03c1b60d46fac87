"""``nucvn simulate --out DIR --files K --events N --seed S [--workers W] [--composition ...]``.

Writes ``DIR/neutrino1.h5 … neutrinoK.h5`` with the fast simulation (docs/simulation.md).
Bad options (negative or zero counts, unknown classes or fractions not summing to 1 in
``--composition``) are refused with a message naming the option.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nucvn.core.errors import NucvnError
from nucvn.sim.generator_params import parse_composition

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="output directory for neutrino{i}.h5")
    parser.add_argument("--files", required=True, type=int, help="number of files K (>= 1)")
    parser.add_argument("--events", required=True, type=int, help="events per file N (>= 1)")
    parser.add_argument("--seed", required=True, type=int, help="run seed S (>= 0); same seed, same bytes")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--first-index", type=int, default=1, help="index i of the first file (default 1)")
    parser.add_argument(
        "--composition",
        default=None,
        help="class fractions summing to 1, e.g. numu_cc=0.88,nc=0.075,nue_cc=0.035,nutau_cc=0.005,"
        "nue_elastic=0.002,cosmic=0.003 (default: the real sample's)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    for opt in ("files", "events", "workers", "first_index"):
        value = getattr(args, opt)
        if value < 1:
            raise NucvnError(f"--{opt.replace('_', '-')} must be >= 1, got {value}")
    if args.seed < 0:
        raise NucvnError(f"--seed must be >= 0, got {args.seed}")
    composition = None
    if args.composition is not None:
        try:
            composition = parse_composition(args.composition)
        except NucvnError as exc:
            raise NucvnError(f"--composition: {exc}") from None
    from nucvn.sim.simulate import simulate_files

    paths = simulate_files(
        args.out,
        files=args.files,
        events=args.events,
        seed=args.seed,
        workers=args.workers,
        composition=composition,
        first_index=args.first_index,
        progress=not args.no_progress,
    )
    print(f"wrote {len(paths)} file(s) to {args.out}")
    return 0
