"""Streaming writer of ``.npy`` shard files (the low level of :mod:`nucvn.data.shards`).

A shard is three files: ``hits`` (every hit of its events, :data:`nucvn.data.hits.HIT_DTYPE`),
``offsets`` (int64, ``n + 1``: event i's hits are ``hits[offsets[i]:offsets[i + 1]]``) and ``meta``.
The hits file is written while events arrive: it starts with a placeholder ``.npy`` header long
enough for any hit count, each chunk's selected events are encoded (:func:`nucvn.data.hits.encode`)
and appended with ``writev`` by a background thread (so writes overlap reading), and the real
header, padded to the same length, is written over the placeholder when the shard is closed.
Every file is written under a temporary name, renamed when complete, and its checksum computed
while writing: for a hits file the sha256 of its payload (the bytes after the ``.npy`` header,
:func:`payload_sha256`), which the final header does not change, so no file is read back; for the
others that of the whole file. :func:`shard_sha256` is the one definition that readers verify.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import mmap
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from nucvn.data.hits import HIT_DTYPE, encode
from nucvn.data.manifest import sha256_file
from nucvn.data.shard_format import SHARD_FILES, ShardKind

__all__ = ["save_npy", "payload_sha256", "shard_sha256", "SplitWriter"]

_BLOCK = 1 << 24
_HEADER_LOCK = threading.Lock()


def save_npy(path: Path, arr: np.ndarray) -> str:
    """Write ``arr`` as ``.npy`` to ``path`` via a temporary name; return the file's sha256.

    The header and the array's own buffer are written and hashed directly (no copy of the data,
    no second read of the file).
    """
    arr = np.ascontiguousarray(arr)
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, np.lib.format.header_data_from_array_1_0(arr))
    body = arr.reshape(-1).view(np.uint8).data
    h = hashlib.sha256(head.getvalue())
    h.update(body)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(head.getvalue())
        f.write(body)
    os.replace(tmp, path)
    return h.hexdigest()


def payload_sha256(path: Path) -> str:
    """sha256 of a ``.npy`` file's array payload (everything after its header).

    The payload is hashed straight from a memory map (no copy; ``hashlib`` releases the GIL, so
    several shards hash in parallel threads), or read in 16 MiB blocks where mapping fails. The
    header is parsed under a lock: numpy reads it with :func:`ast.literal_eval`, and CPython 3.11's
    AST constructor keeps its recursion depth per interpreter, so two threads parsing at once can
    fail with "SystemError: AST constructor recursion depth mismatch" (CPython issue 106905).
    """
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        version = np.lib.format.read_magic(f)
        with _HEADER_LOCK:  # numpy parses the header with ast, which CPython 3.11 cannot run in two threads
            if version == (1, 0):
                np.lib.format.read_array_header_1_0(f)
            else:
                np.lib.format.read_array_header_2_0(f)
        start = f.tell()
        size = os.fstat(f.fileno()).st_size
        if size > start:
            try:
                with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m, memoryview(m) as view:
                    h.update(view[start:])
                return h.hexdigest()
            except (OSError, ValueError):
                f.seek(start)
        buf = bytearray(_BLOCK)
        with memoryview(buf) as view:
            while n := f.readinto(buf):
                h.update(view[:n])
    return h.hexdigest()


def shard_sha256(path: Path, kind: ShardKind) -> str:
    """The checksum that ``index.json`` records for a shard file: :func:`payload_sha256` for a
    hits file, the whole file's sha256 for the others."""
    return payload_sha256(path) if kind == "hits" else sha256_file(path, block=_BLOCK)


def _npy_header(dtype: np.dtype, shape: tuple[int, ...], length: int | None = None) -> bytes:
    """A version-1.0 ``.npy`` header; with ``length``, padded with spaces to exactly that size
    (so the final header of a hits file fits over the placeholder written first)."""
    buf = io.BytesIO()
    d = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buf, d)
    head = buf.getvalue()
    if length is None or len(head) == length:
        return head
    text = head[10:].rstrip(b" \n")
    if len(text) + 11 > length:
        raise AssertionError("npy header grew; this is a bug")
    return head[:8] + (length - 10).to_bytes(2, "little") + text.ljust(length - 11) + b"\n"


def _writev(fd: int, views: list[memoryview]) -> None:
    """Write every buffer in ``views`` to ``fd`` in order (``writev``, at most IOV_MAX at a time)."""
    for i in range(0, len(views), 1024):
        group = views[i : i + 1024]
        done = os.writev(fd, group)
        for v in group:  # a short write (rare on regular files): finish it byte by byte
            if done >= len(v):
                done -= len(v)
                continue
            rest = v[done:]
            while len(rest):
                rest = rest[os.write(fd, rest) :]
            done = 0


class SplitWriter:
    """Streams one split's events into shards of ``shard_size`` events.

    The selected events of a chunk are encoded into hits on the calling thread; writing and hashing
    them run on the background ``pool`` thread, so file writes overlap reading and decompression; at
    most ``_IN_FLIGHT`` jobs are queued. Offsets and metadata are written when a shard closes.
    """

    _IN_FLIGHT = 2
    _PLACEHOLDER = _npy_header(HIT_DTYPE, (10**15,))

    def __init__(self, root: Path, name: str, shard_size: int, meta_dtype: np.dtype, pool: ThreadPoolExecutor) -> None:
        (root / name).mkdir(parents=True)
        self.root, self.name, self.size, self.pool = root, name, shard_size, pool
        self.meta: list[np.ndarray] = []
        self.counts: list[npt.NDArray[np.int64]] = []
        self.fill = 0
        self.shards: list[dict[str, Any]] = []
        self.jobs: list[Future[None]] = []
        self._fd = -1
        self._hash: Any = None

    def add(self, images: np.ndarray, meta: np.ndarray, sel: npt.NDArray[np.intp]) -> None:
        """Append events ``sel`` (sorted indices) of a chunk: ``images`` dense ``(n, 2, 100, 80)``."""
        done = 0
        while done < len(sel):
            if self.fill == 0:
                k = len(self.shards)
                self.shards.append({kind: f"{self.name}/{kind}-{k:05d}.npy" for kind in SHARD_FILES})
                self._submit(self._open, self.shards[-1])
            take = min(self.size - self.fill, len(sel) - done)
            part = sel[done : done + take]
            hits, counts = encode(images, part)
            self._submit(self._write, hits)
            self.meta.append(meta[part])
            self.counts.append(counts)
            self.fill += take
            done += take
            if self.fill == self.size:
                self.close()

    def _submit(self, fn: Any, *args: Any) -> None:
        while len(self.jobs) > self._IN_FLIGHT:
            self.jobs.pop(0).result()
        self.jobs.append(self.pool.submit(fn, *args))

    def _open(self, entry: dict[str, Any]) -> None:
        self._fd = os.open(self.root / f"{entry['hits']}.tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        _writev(self._fd, [memoryview(self._PLACEHOLDER)])
        self._hash = hashlib.sha256()

    def _write(self, hits: np.ndarray) -> None:
        view = hits.view(np.uint8).reshape(-1).data if len(hits) else memoryview(b"")
        self._hash.update(view)
        _writev(self._fd, [view])

    def _close(self, entry: dict[str, Any], meta: np.ndarray, counts: npt.NDArray[np.int64]) -> None:
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        path = self.root / entry["hits"]
        os.pwrite(self._fd, _npy_header(HIT_DTYPE, (int(offsets[-1]),), len(self._PLACEHOLDER)), 0)
        os.close(self._fd)
        self._fd = -1
        os.replace(path.with_name(f"{path.name}.tmp"), path)
        entry["n_events"] = len(meta)
        entry["n_hits"] = int(offsets[-1])
        entry["sha256"] = {"hits": self._hash.hexdigest(), "offsets": save_npy(self.root / entry["offsets"], offsets),
                           "meta": save_npy(self.root / entry["meta"], meta)}

    def close(self) -> None:
        """Finish the open shard (if any); the writer thread completes it in order."""
        if self.fill == 0:
            return
        meta, counts = np.concatenate(self.meta), np.concatenate(self.counts)
        self.meta, self.counts, self.fill = [], [], 0
        self._submit(self._close, self.shards[-1], meta, counts)

    def finish(self) -> None:
        """Close the last shard and wait until every file is on disk; re-raise a write error."""
        self.close()
        while self.jobs:
            self.jobs.pop(0).result()

    def abort(self) -> None:
        """After an error (writer thread stopped): release the open file, if any."""
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
