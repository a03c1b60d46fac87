"""``nucvn inspect FILE [FILE...]``: summarise event files; ``--display N --out event.png``."""

from __future__ import annotations

import argparse
import json

from nucvn.core.events import Interaction
from nucvn.data.h5io import open_events
from nucvn.data.summary import format_summary, summarise
from nucvn.report.display import save_event_display

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", help="event files, directories or glob patterns")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--display", type=int, metavar="N", help="draw event N (0-based, counted across the files)")
    parser.add_argument("--out", default="event.png", help="PNG written by --display (default: event.png)")


def run(args: argparse.Namespace) -> int:
    reader = open_events(args.files)
    if args.display is not None:
        ev = reader.event(args.display)
        assert ev.images is not None
        code = int(ev.meta["interaction"].iloc[0])
        energy = float(ev.meta["nuenergy"].iloc[0])
        title = f"event {args.display}: {Interaction(code).name}, E_nu = {energy:.2f} GeV"
        out = save_event_display(ev.images[0], args.out, title=title,
                                 footer=f"{ev.path.name}, event {ev.start} of that file")
        print(f"wrote {out}")
        return 0
    s = summarise(reader)
    print(json.dumps(s, indent=2) if args.json else format_summary(s))
    return 0

