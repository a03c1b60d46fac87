"""Small helpers shared by the benchmark scripts (run as ``python bench/NAME.py``)."""

from __future__ import annotations

import resource
from pathlib import Path

__all__ = ["peak_rss_mb"]


def peak_rss_mb() -> float:
    """This process's own peak resident memory in MB.

    Read from ``VmHWM`` in /proc, which starts afresh at exec; ``ru_maxrss`` would not do for a
    benchmark child process, because Linux carries the parent's high-water mark across ``execve``.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
