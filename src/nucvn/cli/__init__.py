"""``nucvn`` / ``python -m nucvn``: the commands a person runs by hand.

Each subcommand lives in its own module, which exposes ``add_arguments(parser)`` and
``run(args) -> int``; this file only maps names to modules (imported lazily, so ``nucvn --help``
stays fast and a command's heavy imports load only when it runs). A :class:`NucvnError` (bad file,
key or parameter) is printed as one line without a traceback and exits with status 2. Output
piped into a reader that stops early (``nucvn inspect --json | head``) ends quietly with status
141 (128 + SIGPIPE, what a shell reports for such a pipeline), as any Unix tool does.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from nucvn import __version__
from nucvn.core.errors import NucvnError

__all__ = ["COMMANDS", "main"]

COMMANDS: dict[str, tuple[str, str]] = {
    "inspect": ("nucvn.cli.inspect", "summarise event files; draw one event"),
    "predict": ("nucvn.cli.predict", "score event files with a trained model; write a CSV"),
    "evaluate": ("nucvn.cli.evaluate", "the evaluate stage's metrics and plots for any event files"),
    "export": ("nucvn.cli.export", "export a trained model to ONNX (+ JSON sidecar) for ONNX Runtime / C++"),
    "simulate": ("nucvn.sim.cli_simulate", "write simulated neutrinoN.h5 files (fast simulation)"),
    "validate-sim": ("nucvn.sim.validate", "simulate samples and write validation plots + summary.json"),
}
"""Subcommand name -> (module, one-line help)."""


def _parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nucvn", description="NOvA-like neutrino event classification")
    parser.add_argument("--version", action="version", version=f"nucvn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name in argv:
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = _parser(args_list).parse_args(args_list)
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        code = int(module.run(args) or 0)
        sys.stdout.flush()
        return code
    except NucvnError as exc:
        print(f"nucvn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away: point stdout at /dev/null so the interpreter's final flush is quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
