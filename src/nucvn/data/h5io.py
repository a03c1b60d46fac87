"""Read and validate ``neutrinoN.h5`` event files (docs/format.md); the writer is :mod:`nucvn.data.h5write`.

One reader serves the real UCL/NOvA files and the simulated ones. It opens files lazily and
iterates events in chunks, so memory is bounded by the chunk size, not the number of files.
Images come back as uint8 ``(n, 2, 100, 80)`` in ``[view][plane][cell]`` order; metadata as a
pandas DataFrame with one column per key (the name without the ``neutrino/`` prefix).

Validation refuses, with :class:`~nucvn.core.errors.NucvnError` naming the file and the key: a missing
required key, a ``cvnmap`` that is not ``(N, 16000)`` integers, metadata whose length differs from
``cvnmap``, NaN/inf or negative energies, ``lepenergy`` above ``nuenergy`` by more than float32
rounding, interaction codes outside 0..15, truncated or non-HDF5 files and files with no events.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import numpy.typing as npt
import pandas as pd

from nucvn.core.errors import NucvnError
from nucvn.core.events import IMAGE_SHAPE, N_INTERACTION, N_PIXELS
from nucvn.data.h5chunks import chunk_reader
from nucvn.data.readahead import read_ahead

__all__ = [
    "IMAGE_KEY",
    "META_GROUP",
    "REQUIRED_META",
    "META_DTYPES",
    "ENERGY_KEYS",
    "FileInfo",
    "EventChunk",
    "EventReader",
    "expand_paths",
    "open_events",
    "inspect_file",
    "inspect_file_deep",
]

IMAGE_KEY = "cvnmap"
META_GROUP = "neutrino"
REQUIRED_META: tuple[str, ...] = ("interaction", "nuenergy", "lepenergy")
ENERGY_KEYS: tuple[str, ...] = ("nuenergy", "lepenergy")

META_DTYPES: dict[str, np.dtype] = {
    name: np.dtype(dt)
    for name, dt in {
        "nuenergy": "float32",
        "lepenergy": "float32",
        "interaction": "uint32",
        "finalstate": "uint32",
        "finalstateprong": "uint32",
        "parent": "uint32",
        "particles": "uint32",
        "vtxx": "float64",
        "vtxy": "float64",
        "vtxz": "float64",
        "run": "uint32",
        "subrun": "uint32",
        "evt": "uint32",
        "cycle": "int32",
        "subevt": "uint16",
        "firstplane": "int32",
        "firstcellx": "int32",
        "firstcelly": "int32",
        "nproton": "uint16",
        "npion": "uint16",
        "npizero": "uint16",
        "nneutron": "uint16",
        "pdg": "int32",
        "iscc": "uint8",
        "mode": "uint8",
        "hadenergy": "float32",
        "inelasticity": "float32",
    }.items()
}
"""Every metadata key this project knows, with the dtype it writes (docs/format.md)."""

_LEP_RTOL = 1e-5
_LEP_ATOL = 1e-6


def _natural_key(path: Path) -> list[object]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def expand_paths(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Expand globs and directories into a naturally sorted list of files (neutrino2 before
    neutrino10). A pattern that matches nothing raises :class:`NucvnError`."""
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    out: list[Path] = []
    for item in items:
        s = os.fspath(item)
        if os.path.isdir(s):
            found = sorted(Path(s).glob("*.h5"), key=_natural_key)
        elif glob.has_magic(s):
            found = sorted((Path(p) for p in glob.glob(s)), key=_natural_key)
        else:
            found = [Path(s)]
        if not found:
            raise NucvnError(f"{s}: no .h5 files match; check the path or pattern")
        out.extend(found)
    return out


@dataclass(frozen=True)
class FileInfo:
    """What validation learned about one file without reading its images."""

    path: Path
    n_events: int
    meta_keys: tuple[str, ...]
    attrs: Mapping[str, object] = field(default_factory=dict)

    @property
    def simulated(self) -> bool:
        """True for files written by our simulation (they carry a ``generator`` attribute)."""
        return "generator" in self.attrs


@dataclass
class EventChunk:
    """A contiguous run of events from one file."""

    images: npt.NDArray[np.uint8] | None
    meta: pd.DataFrame
    path: Path
    start: int

    def __len__(self) -> int:
        return len(self.meta)


def _fail(path: Path, key: str | None, problem: str, todo: str) -> NucvnError:
    where = f"{path}" + (f" [{key}]" if key else "")
    return NucvnError(f"{where}: {problem}; {todo}")


def _open(path: Path) -> h5py.File:
    if not path.exists():
        raise _fail(path, None, "file does not exist", "check the path")
    if path.stat().st_size == 0:
        raise _fail(path, None, "file is empty (0 bytes)", "download or regenerate it")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise _fail(
            path, None, f"not a readable HDF5 file (truncated or corrupt: {exc})", "download or regenerate it"
        ) from exc


def _meta_datasets(f: h5py.File) -> dict[str, h5py.Dataset]:
    group = f.get(META_GROUP)
    if not isinstance(group, h5py.Group):
        return {}
    return {k: v for k, v in group.items() if isinstance(v, h5py.Dataset)}


def _read_column(path: Path, key: str, ds: h5py.Dataset, n: int) -> npt.NDArray[np.generic]:
    if ds.ndim not in (1, 2) or (ds.ndim == 2 and ds.shape[1] != 1):
        raise _fail(path, f"{META_GROUP}/{key}", f"shape {ds.shape} is neither (N,) nor (N, 1)", "fix the file")
    if ds.shape[0] != n:
        raise _fail(
            path,
            f"{META_GROUP}/{key}",
            f"has {ds.shape[0]} entries but {IMAGE_KEY} has {n} events",
            "the file is inconsistent; regenerate or re-download it",
        )
    try:
        return np.asarray(ds[()]).reshape(-1)
    except OSError as exc:
        raise _fail(path, f"{META_GROUP}/{key}", f"cannot be read ({exc})",
                    "the file is truncated or corrupt; re-download it") from exc


def _check_values(path: Path, cols: Mapping[str, npt.NDArray[np.generic]]) -> None:
    for key in ENERGY_KEYS:
        e = cols[key].astype(np.float64)
        bad = ~np.isfinite(e)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise _fail(path, f"{META_GROUP}/{key}", f"{int(bad.sum())} NaN/inf values (first at event {i})",
                        "fix or drop the file")
        neg = e < 0
        if neg.any():
            i = int(np.flatnonzero(neg)[0])
            raise _fail(path, f"{META_GROUP}/{key}",
                        f"{int(neg.sum())} negative energies (first at event {i}: {e[i]:g} GeV)",
                        "fix or drop the file")
    nu = cols["nuenergy"].astype(np.float64)
    lep = cols["lepenergy"].astype(np.float64)
    over = lep > nu * (1 + _LEP_RTOL) + _LEP_ATOL
    if over.any():
        i = int(np.flatnonzero(over)[0])
        raise _fail(
            path,
            f"{META_GROUP}/lepenergy",
            f"{int(over.sum())} events with lepenergy > nuenergy (first at event {i}: {lep[i]:g} > {nu[i]:g} GeV)",
            "energies are swapped or corrupt; fix or drop the file",
        )
    code = cols["interaction"]
    if not np.issubdtype(code.dtype, np.integer):
        raise _fail(path, f"{META_GROUP}/interaction", f"dtype {code.dtype} is not an integer code", "fix the file")
    badc = (code.astype(np.int64) < 0) | (code.astype(np.int64) >= N_INTERACTION)
    if badc.any():
        i = int(np.flatnonzero(badc)[0])
        raise _fail(
            path,
            f"{META_GROUP}/interaction",
            f"{int(badc.sum())} codes outside 0..15 (first at event {i}: {int(code[i])})",
            "16 is kNIntType, a count, not a label; fix or drop the file",
        )


def _inspect_open(path: Path, f: h5py.File) -> tuple[FileInfo, dict[str, npt.NDArray[np.generic]]]:
    img = f.get(IMAGE_KEY)
    if not isinstance(img, h5py.Dataset):
        raise _fail(path, IMAGE_KEY, "required dataset is missing", "this is not a neutrinoN.h5 event file")
    if img.ndim != 2 or img.shape[1] != N_PIXELS:
        raise _fail(path, IMAGE_KEY, f"shape {img.shape} is not (N, {N_PIXELS})",
                    "each event must hold two 100x80 maps")
    if not np.issubdtype(img.dtype, np.integer):
        raise _fail(path, IMAGE_KEY, f"dtype {img.dtype} is not an integer type", "pixel maps must be 8-bit counts")
    n = int(img.shape[0])
    if n == 0:
        raise _fail(path, IMAGE_KEY, "file holds no events", "download or regenerate it")
    meta = _meta_datasets(f)
    for key in REQUIRED_META:
        if key not in meta:
            raise _fail(path, f"{META_GROUP}/{key}", "required dataset is missing", "this key is needed by every task")
    cols = {k: _read_column(path, k, ds, n) for k, ds in meta.items()}
    _check_values(path, cols)
    try:
        img[n - 1 : n]
    except OSError as exc:
        raise _fail(path, IMAGE_KEY, f"last event cannot be read ({exc})",
                    "the file is truncated; re-download it") from exc
    attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    return FileInfo(path=path, n_events=n, meta_keys=tuple(sorted(cols)), attrs=attrs), cols


def inspect_file(path: str | os.PathLike[str]) -> FileInfo:
    """Validate one file (structure and metadata values, not every image) and describe it."""
    p = Path(path)
    with _open(p) as f:
        info, _ = _inspect_open(p, f)
    return info


def inspect_file_deep(path: str | os.PathLike[str], *, block_bytes: int = 64 << 20) -> FileInfo:
    """Validate one file like :func:`inspect_file`, then read (decompress) every chunk of ``cvnmap``.

    :func:`inspect_file` reads only the metadata and the last event, so a file whose gzip chunks
    are corrupt in the middle passes it; this reads the whole image dataset in blocks of about
    ``block_bytes`` (whole HDF5 chunks, so each is decompressed once), keeping memory bounded.
    Use it before trusting a file that came from outside (a download, a user's directory).
    """
    p = Path(path)
    with _open(p) as f:
        info, _ = _inspect_open(p, f)
        img = f[IMAGE_KEY]
        row_bytes = N_PIXELS * img.dtype.itemsize
        chunk_rows = img.chunks[0] if img.chunks else 1
        rows = max(chunk_rows, (max(block_bytes, row_bytes) // row_bytes) // chunk_rows * chunk_rows)
        for start in range(0, info.n_events, rows):
            stop = min(start + rows, info.n_events)
            try:
                img[start:stop]
            except OSError:
                _locate_bad_chunk(p, img, start, stop, chunk_rows)
    return info


def _locate_bad_chunk(path: Path, img: h5py.Dataset, start: int, stop: int, chunk_rows: int) -> None:
    """Raise naming the first chunk of ``img[start:stop]`` that cannot be read."""
    for lo in range(start, stop, chunk_rows):
        hi = min(lo + chunk_rows, stop)
        try:
            img[lo:hi]
        except OSError as exc:
            raise _fail(path, IMAGE_KEY, f"events {lo}..{hi - 1} cannot be read ({exc})",
                        "the file is corrupt; re-download or regenerate it") from exc
    raise _fail(path, IMAGE_KEY, f"events {start}..{stop - 1} cannot be read",
                "the file is corrupt; re-download or regenerate it")


def _to_uint8(raw: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
    if raw.dtype == np.uint8:
        return raw
    return np.clip(raw, 0, 255).astype(np.uint8)


class EventReader:
    """Lazy reader over one or more files; nothing is loaded until iterated.

    Every file is validated when the reader is built (metadata only), so a bad file fails before
    any work starts, with its name in the message.
    """

    def __init__(self, paths: Sequence[Path], *, validate: bool = True) -> None:
        self.files: list[FileInfo] = [inspect_file(p) if validate else self._light_info(p) for p in paths]

    @classmethod
    def from_infos(cls, infos: Sequence[FileInfo]) -> EventReader:
        """A reader over files already validated with :func:`inspect_file` (no second look)."""
        reader = cls([], validate=False)
        reader.files = list(infos)
        return reader

    @staticmethod
    def _light_info(path: Path) -> FileInfo:
        with _open(path) as f:
            img = f.get(IMAGE_KEY)
            if not isinstance(img, h5py.Dataset):
                raise _fail(path, IMAGE_KEY, "required dataset is missing", "this is not a neutrinoN.h5 event file")
            keys = tuple(sorted(_meta_datasets(f)))
            return FileInfo(path=path, n_events=int(img.shape[0]), meta_keys=keys, attrs=dict(f.attrs))

    @property
    def n_events(self) -> int:
        return sum(fi.n_events for fi in self.files)

    def common_keys(self) -> tuple[str, ...]:
        """Metadata keys present in every file."""
        keys = set(self.files[0].meta_keys) if self.files else set()
        for fi in self.files[1:]:
            keys &= set(fi.meta_keys)
        return tuple(sorted(keys))

    def require(self, keys: Iterable[str]) -> None:
        """Refuse, naming the file and key, if any file lacks one of ``keys``."""
        for fi in self.files:
            for key in keys:
                if key not in fi.meta_keys:
                    raise _fail(fi.path, f"{META_GROUP}/{key}", "dataset is missing but this task needs it",
                                "use files that carry it")

    def iter_chunks(
        self,
        chunk_size: int = 1024,
        *,
        keys: Sequence[str] | None = None,
        images: bool = True,
        prefetch: int = 0,
    ) -> Iterator[EventChunk]:
        """Yield :class:`EventChunk` of at most ``chunk_size`` events, file by file.

        ``keys`` selects metadata columns (default: every key of the file); ``images=False``
        skips the pixel maps. Memory held is one chunk of images plus one file's metadata, plus
        ``prefetch`` chunks read ahead by a background thread: h5py releases the GIL while it
        decompresses, so with ``prefetch > 0`` reading overlaps the consumer's own work.
        """
        if chunk_size <= 0:
            raise NucvnError(f"chunk_size must be positive, got {chunk_size}")
        if keys is not None:
            self.require(keys)
        chunks = self._chunks(chunk_size, keys, images)
        return read_ahead(chunks, prefetch) if prefetch > 0 else chunks

    def _chunks(self, chunk_size: int, keys: Sequence[str] | None, images: bool) -> Iterator[EventChunk]:
        if not images:  # metadata only: nothing to inflate
            yield from self._file_chunks(chunk_size, keys, None)
            return
        # One more inflating thread than cores: the reading thread mostly waits on them (h5chunks).
        workers = min(8, (os.cpu_count() or 1) + 1)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="h5io-inflate") as pool:
            yield from self._file_chunks(chunk_size, keys, pool)

    def _file_chunks(self, chunk_size: int, keys: Sequence[str] | None,
                     pool: Executor | None) -> Iterator[EventChunk]:
        """Chunks file by file; their images inflated on ``pool``, or none read when ``pool`` is None."""
        for fi in self.files:
            with _open(fi.path) as f:
                meta_ds = _meta_datasets(f)
                wanted = list(fi.meta_keys) if keys is None else list(keys)
                cols = {k: _read_column(fi.path, k, meta_ds[k], fi.n_events) for k in wanted}
                frame = pd.DataFrame(cols)
                img = f[IMAGE_KEY]
                fast = chunk_reader(img) if pool is not None else None
                for start in range(0, fi.n_events, chunk_size):
                    stop = min(start + chunk_size, fi.n_events)
                    arr: npt.NDArray[np.uint8] | None = None
                    if pool is not None:
                        try:
                            raw = fast.read(start, stop, pool) if fast is not None else img[start:stop]
                        except OSError as exc:
                            raise _fail(fi.path, IMAGE_KEY, f"events {start}..{stop} cannot be read ({exc})",
                                        "the file is truncated or corrupt; re-download it") from exc
                        arr = _to_uint8(raw).reshape((stop - start, *IMAGE_SHAPE))
                    yield EventChunk(images=arr, meta=frame.iloc[start:stop].reset_index(drop=True), path=fi.path,
                                     start=start)

    def event(self, i: int) -> EventChunk:
        """Event ``i`` counted across all files (0-based), as a one-event chunk."""
        if not 0 <= i < self.n_events:
            raise NucvnError(f"event {i} does not exist: the files hold events 0..{self.n_events - 1}")
        for fi in self.files:
            if i < fi.n_events:
                with _open(fi.path) as f:
                    meta_ds = _meta_datasets(f)
                    cols = {k: np.asarray(meta_ds[k][i]).reshape(-1) for k in fi.meta_keys}
                    raw = f[IMAGE_KEY][i : i + 1]
                return EventChunk(images=_to_uint8(raw).reshape((1, *IMAGE_SHAPE)), meta=pd.DataFrame(cols),
                                  path=fi.path, start=i)
            i -= fi.n_events
        raise AssertionError("unreachable")

    def read_metadata(self, keys: Sequence[str] | None = None) -> pd.DataFrame:
        """All metadata of all files as one DataFrame (small: no images), with ``file`` and
        ``index`` columns giving each event's origin."""
        frames = []
        use = list(keys) if keys is not None else list(self.common_keys())
        for chunk in self.iter_chunks(chunk_size=1 << 62, keys=use, images=False):
            frame = chunk.meta.copy()
            frame["file"] = chunk.path.name
            frame["index"] = np.arange(len(frame), dtype=np.int64)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)


def open_events(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], *,
                validate: bool = True) -> EventReader:
    """Open one file, a directory, a glob or a list of them lazily, validating each file."""
    return EventReader(expand_paths(paths), validate=validate)
