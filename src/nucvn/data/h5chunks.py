"""Read rows of a gzip-compressed HDF5 dataset by inflating its stored chunks on several threads.

HDF5 runs its filter pipeline (shuffle, deflate) inside the library call, under h5py's global
lock, so however many threads read, one core decompresses: a plain ``dataset[a:b]`` of the event
files is bound by zlib on one core (about 33 µs per event). Preprocessing does more than that
read (it encodes and writes the hits), so to run faster than a plain read, the compressed bytes
of each chunk are fetched with ``H5Dread_chunk`` (``DatasetID.read_direct_chunk``: no filters run,
so the lock is held only for the copy) and inflated on a pool of threads by zlib-ng
(``zlib_ng.decompress``, which releases the GIL and inflates about twice as fast as zlib: 64k
against 31k events/s on one core here); a shuffled chunk is unshuffled with numpy (a no-op for
one-byte pixels). The result is the same array ``dataset[a:b]`` returns, byte for byte: deflate
streams have one decoding, whichever library inflates them.

Only the filter pipelines written by gzip writers (deflate, optionally preceded by shuffle) and
chunks that span whole rows take this path; :func:`chunk_reader` returns ``None`` for anything
else (other compressors, Fletcher checksums, scale-offset, contiguous storage), and a chunk whose
filter mask says a filter was skipped is read through h5py, so every file still reads correctly.
"""

from __future__ import annotations

import math
from concurrent.futures import Executor, Future
from dataclasses import dataclass

import h5py
import numpy as np
import numpy.typing as npt
from zlib_ng import zlib_ng

__all__ = ["ChunkReader", "chunk_reader"]

_SHUFFLE = h5py.h5z.FILTER_SHUFFLE
_DEFLATE = h5py.h5z.FILTER_DEFLATE


@dataclass(frozen=True)
class ChunkReader:
    """Reads rows ``[start, stop)`` of one chunked, deflate-compressed dataset (see module docstring)."""

    dataset: h5py.Dataset
    rows_per_chunk: int
    shuffled: bool

    def _decode(self, raw: bytes) -> npt.NDArray[np.generic]:
        """One stored chunk's bytes -> its rows (``rows_per_chunk`` of them, as HDF5 stores edge chunks whole)."""
        dtype = self.dataset.dtype
        size = self.rows_per_chunk * math.prod(self.dataset.shape[1:]) * dtype.itemsize
        try:
            data = zlib_ng.decompress(raw, bufsize=size)
        except zlib_ng.error as exc:  # type: ignore[misc]  # its stub declares error an instance
            raise OSError(f"a compressed chunk cannot be inflated ({exc})") from exc
        if len(data) != size:
            raise OSError(f"a chunk inflates to {len(data)} bytes, not the {size} its shape needs")
        arr = np.frombuffer(data, dtype=np.uint8)
        if self.shuffled and dtype.itemsize > 1:
            arr = np.ascontiguousarray(arr.reshape(dtype.itemsize, -1).T)
        return arr.view(dtype).reshape((self.rows_per_chunk, *self.dataset.shape[1:]))

    def read(self, start: int, stop: int, pool: Executor) -> npt.NDArray[np.generic]:
        """Rows ``[start, stop)`` of the dataset, the chunks inflated concurrently on ``pool``.

        A corrupt chunk raises :class:`OSError` (as h5py does), so callers handle both paths alike.
        """
        out = np.empty((stop - start, *self.dataset.shape[1:]), dtype=self.dataset.dtype)
        dsid = self.dataset.id
        origin = (0,) * (len(self.dataset.shape) - 1)
        pending: list[tuple[int, Future[npt.NDArray[np.generic]] | npt.NDArray[np.generic]]] = []
        for c in range(start // self.rows_per_chunk, (stop - 1) // self.rows_per_chunk + 1):
            lo = c * self.rows_per_chunk
            try:
                mask, raw = dsid.read_direct_chunk((lo, *origin))
            except (KeyError, RuntimeError, ValueError):  # e.g. a chunk never written: HDF5 fills it
                mask, raw = 1, b""
            if mask:  # a filter was skipped for this chunk: let HDF5 apply the pipeline it recorded
                pending.append((lo, self.dataset[lo : min(lo + self.rows_per_chunk, self.dataset.shape[0])]))
            else:
                pending.append((lo, pool.submit(self._decode, raw)))
        parts = [(lo, p.result() if isinstance(p, Future) else p) for lo, p in pending]
        for lo, rows in parts:
            a, b = max(start, lo), min(stop, lo + len(rows))
            out[a - start : b - start] = rows[a - lo : b - lo]
        return out


def chunk_reader(dataset: h5py.Dataset) -> ChunkReader | None:
    """A :class:`ChunkReader` for ``dataset`` when its chunks are whole rows compressed with
    deflate (optionally after shuffle) and nothing else; otherwise ``None`` (read it with h5py)."""
    chunks = dataset.chunks
    if chunks is None or tuple(chunks[1:]) != tuple(dataset.shape[1:]) or dataset.dtype.kind not in "uif":
        return None
    try:
        plist = dataset.id.get_create_plist()
        filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    except (RuntimeError, ValueError):
        return None
    if filters not in ([_DEFLATE], [_SHUFFLE, _DEFLATE]):
        return None
    if math.prod(chunks) * dataset.dtype.itemsize == 0:
        return None
    return ChunkReader(dataset=dataset, rows_per_chunk=int(chunks[0]), shuffled=filters[0] == _SHUFFLE)
