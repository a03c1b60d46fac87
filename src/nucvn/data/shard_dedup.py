"""Duplicate inputs for :func:`nucvn.data.shard_build.build_shards`: the same file twice, the same event twice.

A mirror or redirect that serves one file under two names, or a file list that names one run
twice, would put the same events into the shards twice (and possibly into different ``file``
names, so nothing downstream notices). Files are compared by their sha256 (which the build
computes for ``index.json`` anyway), events by the 64-bit identity hash that also assigns the
split, so detection costs no extra reading.

Two distinct identities collide in the 64-bit hash with probability about ``n**2 / 2**65`` for
``n`` events (3e-8 for a million events, 3e-6 for ten million): a reported duplicate event is a
real one unless that improbable collision happened, which the message's identities would show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["duplicate_files", "IdentitySet", "DuplicateLog", "MAX_LISTED"]

MAX_LISTED = 100
"""At most this many dropped duplicate events are listed by name in ``index.json``."""
_INDEX_BITS = 40


def duplicate_files(names: Sequence[str], sha256: Sequence[str]) -> dict[str, str]:
    """``{later name: first name}`` for every file whose sha256 equals an earlier file's."""
    first: dict[str, str] = {}
    dups: dict[str, str] = {}
    for name, digest in zip(names, sha256, strict=True):
        if digest in first:
            dups[name] = first[digest]
        else:
            first[digest] = name
    return dups


class IdentitySet:
    """Every identity hash seen so far and where it was first seen (file number, index).

    Kept as sorted runs of 16 bytes per event that merge like a binary counter (a log-structured
    set): a lookup is one ``searchsorted`` per run (at most log2 of the number of chunks), an
    insertion costs amortised O(log n), and nothing is a Python object per event, so the memory
    stays 16 bytes per event seen (16 MB per million events).
    """

    def __init__(self) -> None:
        self._runs: list[tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]] = []

    def __len__(self) -> int:
        return sum(len(keys) for keys, _ in self._runs)

    def add(self, keys: npt.NDArray[np.uint64], file: int,
            start: int) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Add the events ``start, start + 1, ...`` of file number ``file`` with hashes ``keys``.

        Returns ``(duplicate, first_file, first_index)``: which of them repeat an identity seen
        before (in an earlier chunk or earlier in this one), and for those where it was first seen.
        """
        n = len(keys)
        loc = (np.uint64(file) << np.uint64(_INDEX_BITS)) | np.arange(start, start + n, dtype=np.uint64)
        seen = np.zeros(n, dtype=bool)
        first = np.zeros(n, dtype=np.uint64)
        for run_keys, run_loc in self._runs:
            pos = np.minimum(np.searchsorted(run_keys, keys), len(run_keys) - 1)
            hit = run_keys[pos] == keys
            seen |= hit
            first[hit] = run_loc[pos[hit]]
        _, head, inverse = np.unique(keys, return_index=True, return_inverse=True)
        repeated = np.ones(n, dtype=bool)
        repeated[head] = False
        first = np.where(seen, first, loc[head[inverse.reshape(-1)]])
        new = head[~seen[head]]
        self._push(keys[new], loc[new])
        dup = seen | repeated
        index = (first & np.uint64((1 << _INDEX_BITS) - 1)).astype(np.int64)
        return dup, (first >> np.uint64(_INDEX_BITS)).astype(np.int64), index

    def _push(self, keys: npt.NDArray[np.uint64], loc: npt.NDArray[np.uint64]) -> None:
        """Add a sorted run, merging it with the newest runs while they are not larger."""
        while self._runs and len(self._runs[-1][0]) <= len(keys):
            old_keys, old_loc = self._runs.pop()
            keys, loc = np.concatenate([old_keys, keys]), np.concatenate([old_loc, loc])
            order = np.argsort(keys, kind="stable")
            keys, loc = keys[order], loc[order]
        if len(keys):
            self._runs.append((keys, loc))


@dataclass
class DuplicateLog:
    """What ``on_duplicate="drop"`` left out, as stored in ``index["duplicates"]``."""

    files: list[dict[str, Any]] = field(default_factory=list)
    n_events: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)

    def add_events(self, files: Sequence[str], file: str, index: npt.NDArray[np.int64],
                   first_file: npt.NDArray[np.int64], first_index: npt.NDArray[np.int64]) -> None:
        """Count dropped duplicate events of ``file`` and list the first :data:`MAX_LISTED`."""
        self.n_events += len(index)
        for i, ff, fi in zip(index.tolist(), first_file.tolist(), first_index.tolist(), strict=True):
            if len(self.events) >= MAX_LISTED:
                break
            self.events.append({"file": file, "index": i, "duplicate_of": {"file": files[ff], "index": fi}})

    def to_json(self) -> dict[str, Any]:
        """``{"files": [...], "events": {"n_dropped", "listed", "max_listed"}}``."""
        events = {"n_dropped": self.n_events, "listed": self.events, "max_listed": MAX_LISTED}
        return {"files": self.files, "events": events}
