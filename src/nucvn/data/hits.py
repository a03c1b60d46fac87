"""The hits of sparse events: their on-disk record, encoding dense maps into them, and the two
compiled loops that read a batch of events back (decoded into dense maps, or gathered as hits).

An event lights a few hundred of its 16,000 pixels (221 on average on the default simulation,
99th percentile about 1,100), so shards store hits, not maps: each hit is its pixel's index in the
flattened ``(view, plane, cell)`` map, ``view * 8000 + plane * 80 + cell`` (uint16), and its value
(uint8), packed into 3 bytes (:data:`HIT_DTYPE`); a shard's int64 ``offsets`` say where each event's
hits start. This module is the one definition of that encoding (numpy and numba only, so building
shards needs no torch); :mod:`nucvn.data.sparse` decodes hits with torch on any device.

The loops run one event at a time over its contiguous hits (numba, compiled once and cached on
disk): gathering a random batch this way costs about what copying its hits costs, where numpy's
vectorised gather needs a dozen temporary arrays per batch.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from nucvn.core.events import N_PIXELS

__all__ = ["HIT_DTYPE", "encode", "decode_into", "gather_into"]

HIT_DTYPE = np.dtype([("pixel", "<u2"), ("value", "u1")])
"""One hit on disk: flat pixel index (< 16,000) and value, packed into 3 bytes."""


def encode(images: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.void], npt.NDArray[np.int64]]:
    """Hits of ``images`` ``(n, 2, 100, 80)`` uint8, event after event and in pixel order within an
    event, and the number of hits of each event."""
    flat = np.ascontiguousarray(images).reshape(len(images), N_PIXELS)
    where = np.flatnonzero(flat)
    counts = np.count_nonzero(flat, axis=1).astype(np.int64)
    hits = np.empty(len(where), dtype=HIT_DTYPE)
    hits["value"] = flat.reshape(-1)[where]
    hits["pixel"] = where - np.repeat(np.arange(len(flat), dtype=np.int64) * N_PIXELS, counts)
    return hits, counts


@numba.njit(cache=True, nogil=True)
def decode_into(pixel: npt.NDArray[np.uint16], value: npt.NDArray[np.uint8], offsets: npt.NDArray[np.int64],
                events: npt.NDArray[np.int64], rows: npt.NDArray[np.int64], out: npt.NDArray[np.uint8]) -> None:
    """Decode events ``events`` (indices into ``offsets``) into rows ``rows`` of ``out`` ``(b, 16000)``:
    each row is zeroed, then its hits written (while the row is in cache: faster than zeroing the
    whole batch first); ``pixel``/``value`` are one shard's hit fields."""
    for k in range(len(events)):
        e, r = events[k], rows[k]
        out[r, :] = 0
        for j in range(offsets[e], offsets[e + 1]):
            out[r, pixel[j]] = value[j]


@numba.njit(cache=True, nogil=True)
def gather_into(pixel: npt.NDArray[np.uint16], value: npt.NDArray[np.uint8], offsets: npt.NDArray[np.int64],
                events: npt.NDArray[np.int64], start: int, pixel_out: npt.NDArray[np.int16],
                value_out: npt.NDArray[np.uint8]) -> int:
    """Copy the hits of ``events`` one after the other into ``pixel_out``/``value_out`` from
    position ``start``; return the position after the last."""
    p = start
    for k in range(len(events)):
        e = events[k]
        for j in range(offsets[e], offsets[e + 1]):
            pixel_out[p] = pixel[j]
            value_out[p] = value[j]
            p += 1
    return p
