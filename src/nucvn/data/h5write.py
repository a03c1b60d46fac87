"""Write ``neutrinoN.h5`` event files in the format of the real files (docs/format.md).

The writer of :mod:`nucvn.data.h5io`'s format (used by the simulation and the tests): it checks
the values with the reader's rules first, and writes to a temporary name that is renamed into
place, so a refused or interrupted write never leaves a half file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import h5py
import numpy as np
import numpy.typing as npt

from nucvn.core.errors import NucvnError
from nucvn.core.events import N_PIXELS
from nucvn.data.h5io import IMAGE_KEY, META_DTYPES, META_GROUP, REQUIRED_META, _check_values

__all__ = ["write_events"]


def write_events(
    path: str | os.PathLike[str],
    images: npt.ArrayLike,
    meta: Mapping[str, npt.ArrayLike],
    *,
    attrs: Mapping[str, object] | None = None,
    compression: Literal["gzip", "none"] = "gzip",
    chunk_events: int = 64,
) -> Path:
    """Write events in exactly the layout of docs/format.md, atomically (temporary name, then rename).

    ``images`` is ``(n, 2, 100, 80)`` or ``(n, 16000)`` uint8; ``meta`` maps known keys
    (:data:`META_DTYPES`) to length-n arrays and must hold the required keys. Metadata is stored
    ``(n, 1)``; with gzip the chunks hold whole events. The root attribute ``layout`` is always
    ``"view,plane,cell"``.
    """
    dest = Path(path)
    img = np.asarray(images)
    if img.dtype != np.uint8:
        raise NucvnError(f"{dest}: images must be uint8, got {img.dtype}")
    n = img.shape[0] if img.ndim else 0
    if n == 0:
        raise NucvnError(f"{dest}: refusing to write a file with no events")
    img = img.reshape(n, N_PIXELS)
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise NucvnError(f"{dest}: metadata lacks required key(s) {', '.join(missing)}")
    cols: dict[str, np.ndarray] = {}
    for key, values in meta.items():
        if key not in META_DTYPES:
            raise NucvnError(f"{dest}: unknown metadata key {key!r}; known keys: {', '.join(sorted(META_DTYPES))}")
        arr = np.asarray(values).reshape(-1)
        if arr.shape[0] != n:
            raise NucvnError(f"{dest}: metadata {key!r} has {arr.shape[0]} entries for {n} events")
        cols[key] = arr.astype(META_DTYPES[key])
    _check_values(dest, cols)
    comp = {"compression": "gzip", "compression_opts": 4, "shuffle": True} if compression == "gzip" else {}
    ce = max(1, min(chunk_events, n))
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as f:
            f.create_dataset(IMAGE_KEY, data=img, chunks=(ce, N_PIXELS) if comp else None, **comp)
            group = f.create_group(META_GROUP)
            for key, arr in cols.items():
                group.create_dataset(key, data=arr.reshape(n, 1), chunks=(min(n, 4096), 1) if comp else None, **comp)
            f.attrs["layout"] = "view,plane,cell"
            for k, v in (attrs or {}).items():
                f.attrs[k] = v
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dest
