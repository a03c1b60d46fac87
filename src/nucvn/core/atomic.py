"""Write files atomically: to a temporary name in the same directory, then rename into place.

An interrupted stage therefore never leaves a half-written file under a name that a later stage
trusts. Every writer of JSON, CSV and plain text in the project goes through here;
the few formats with their own streaming writers (HDF5 events, ``.npy`` shards) follow the same
rule in their modules.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nucvn.core.errors import NucvnError

__all__ = ["atomic_write", "atomic_dir", "disk_errors", "write_json", "write_csv"]

_DISK_ERRNOS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}


@contextlib.contextmanager
def disk_errors(path: str | os.PathLike[str]) -> Iterator[None]:
    """Turn a full disk (``ENOSPC``, ``EDQUOT``) inside the block into one :class:`NucvnError`
    that names ``path`` and says what to do, instead of a traceback from deep inside a writer.

    Other ``OSError`` s pass through unchanged.
    """
    try:
        yield
    except OSError as exc:
        reason = _DISK_ERRNOS.get(exc.errno or 0)
        if reason is None:
            raise
        raise NucvnError(f"{path}: {reason}; free space on that disk (or point the output elsewhere) "
                         "and rerun") from exc


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it onto ``path``.

    The parent directory is created. On any error the temporary file is removed and ``path``
    keeps whatever it held before; a full disk becomes a :class:`NucvnError` naming ``path``.
    """
    dest = Path(path)
    tmp = dest.with_name(f".{dest.stem}.tmp-{os.getpid()}{dest.suffix}")
    try:
        with disk_errors(dest):
            dest.parent.mkdir(parents=True, exist_ok=True)
            write(tmp)
            os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dest


def atomic_dir(path: str | os.PathLike[str], fill: Callable[[Path], object]) -> Path:
    """Build a directory from scratch: ``fill(tmp)`` writes into a temporary directory beside
    ``path``, which then replaces ``path`` whole (files of an earlier run that ``fill`` no longer
    writes disappear). On any error ``path`` keeps what it held and the temporary directory is
    removed; a full disk becomes a :class:`NucvnError` naming ``path``.
    """
    dest = Path(path)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with disk_errors(dest):
            tmp.mkdir(parents=True)
            fill(tmp)
            if dest.exists():
                os.replace(dest, old)
            os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return dest


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not np.isfinite(v):
        return None
    if isinstance(v, np.generic):
        return _clean(v.item())
    if isinstance(v, Mapping):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, Path):
        return str(v)
    return v


def write_json(data: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a dict as indented JSON atomically; NaN/inf become null, numpy scalars and paths
    plain values, so the file is strict JSON that any tool (``dvc metrics``) reads."""

    def write(p: Path) -> None:
        with open(p, "w") as f:
            json.dump(_clean(dict(data)), f, indent=2, allow_nan=False)
            f.write("\n")

    return atomic_write(path, write)


def write_csv(table: pd.DataFrame, path: str | os.PathLike[str], *, float_format: str = "%.6g") -> Path:
    """Write a table as CSV atomically."""
    return atomic_write(path, lambda p: table.to_csv(p, index=False, float_format=float_format))
