"""Progress bars that suit where the output goes.

On a terminal a bar redraws a few times a second (tqdm's default). Where stderr is not a terminal
(CI logs, ``dvc exp run --queue``, a batch job's log file) every redraw is a new line, so the bar
updates at most every ``NUCVN_PROGRESS_INTERVAL`` seconds (default 30) and never on its own
timer: a 10-minute stage writes a few dozen lines instead of thousands.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from tqdm import tqdm

__all__ = ["progress_bar", "LOG_INTERVAL_S"]

LOG_INTERVAL_S = 30.0
"""Seconds between updates of a bar whose output is not a terminal."""


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def progress_bar(*, disable: bool = False, **kwargs: Any) -> tqdm:
    """A :class:`tqdm` bar on stderr: live on a terminal, one line every ~30 s otherwise.

    Accepts tqdm's keyword arguments (``total``, ``unit``, ``desc``, ``unit_scale``, ...).
    """
    stream = kwargs.pop("file", sys.stderr)
    if not _is_terminal(stream):
        interval = float(os.environ.get("NUCVN_PROGRESS_INTERVAL", LOG_INTERVAL_S))
        kwargs.setdefault("mininterval", interval)
        kwargs.setdefault("maxinterval", max(interval, 1.0) * 4)
        kwargs.setdefault("dynamic_ncols", False)
        kwargs.setdefault("ncols", 100)
    else:
        kwargs.setdefault("dynamic_ncols", True)
    return tqdm(file=stream, disable=disable, **kwargs)
