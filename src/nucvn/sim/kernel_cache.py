"""Where the simulation's numba kernels are cached on disk, keyed by the code they depend on.

Numba's on-disk cache (``cache=True``) is invalidated only when the *defining* file changes,
not when a constant it inlines from another module does (the parameter indices of
:mod:`nucvn.sim.detector_params`, the geometry, the image shape). A stale kernel would read the
wrong parameters silently. So, before any kernel is defined, this module points numba's cache at
a directory named by a hash of every source file the kernels depend on and of the numba version:
any change there compiles afresh (≈ 20 s once) and a fresh checkout simply compiles on first use.
The base directory is ``$NUMBA_CACHE_DIR`` if set, else ``~/.cache/nucvn-numba``; if it cannot be
created, numba's default (next to the sources) is kept.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numba
from numba.core import config

__all__ = ["CACHE_DIR", "KERNEL_SOURCES"]

_SIM = Path(__file__).resolve().parent
KERNEL_SOURCES: tuple[Path, ...] = tuple(
    [_SIM / f"{m}.py" for m in ("kernel_cache", "detector_params", "geometry", "readout", "tracks", "showers",
                                "propagate", "window", "detector")]
    + [_SIM.parent / "core" / "events.py"]
)
"""Files whose content keys the cache."""


def _fingerprint() -> str:
    h = hashlib.sha256(numba.__version__.encode())
    for path in KERNEL_SOURCES:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _choose() -> str:
    base = os.environ.get("NUMBA_CACHE_DIR") or str(Path.home() / ".cache" / "nucvn-numba")
    target = Path(base) / f"nucvn-sim-{_fingerprint()}"
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError:
        return config.CACHE_DIR
    return str(target)


CACHE_DIR: str = _choose()
config.CACHE_DIR = CACHE_DIR
