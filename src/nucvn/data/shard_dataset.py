"""Reading one split of a shard directory (``data/shards``) as a torch Dataset: :class:`ShardDataset`,
the one reader of the shard format.

Shards are sparse (:mod:`nucvn.data.hits`): a batch is read from the memory-mapped hits of its
events, shard by shard in file order, and decoded into dense maps on the CPU
(:meth:`ShardDataset.batch`), or gathered as hits (:meth:`ShardDataset.sparse_batch`) that the
training loop copies to the GPU and decodes there (:class:`nucvn.data.sparse.SparseBatch`).

Opening a split checks every one of its shard files against the sha256 that ``index.json``
records (:func:`nucvn.data.shard_writer.shard_sha256`), so training or evaluating on shards whose bytes
changed after preprocessing fails at once, naming the file, instead of producing a model whose
recorded data checksum describes other data. Hashing runs in a few threads straight from memory
maps (sha256 runs at about 1.1 GB/s on one core here, and the shards hold under 1 kB per event);
``verify=False`` skips it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import torch

from nucvn.core.errors import NucvnError
from nucvn.core.events import IMAGE_SHAPE, N_PIXELS
from nucvn.data.hits import HIT_DTYPE, HitTable
from nucvn.data.shard_format import FORMAT_VERSION, REPROCESS, SHARD_FILES, SPLITS, ShardKind, SplitName
from nucvn.data.shard_writer import shard_sha256
from nucvn.data.sparse import SparseBatch

__all__ = ["ShardDataset"]

_ITEM_FLOAT = ("numu_cc", "lepton_fraction", "nuenergy", "lepenergy")
_ITEM_INT = ("flavour", "mode", "n_tracks", "n_showers")
_HASH_THREADS = 4


class ShardDataset(torch.utils.data.Dataset):
    """One split of a shard directory as a map-style torch Dataset.

    Hits are memory-mapped (``np.load(mmap_mode="r", allow_pickle=False)``), offsets and metadata
    loaded (8 bytes and about 100 bytes per event). ``dataset[i]`` is ``(uint8 tensor (2, 100, 80),
    labels)`` with labels ``numu_cc``, ``lepton_fraction``, ``nuenergy``, ``lepenergy`` (float32)
    and ``flavour``, ``mode``, ``n_tracks``, ``n_showers`` (int64). :meth:`batch` (also used by
    ``DataLoader`` through ``__getitems__``) decodes many events at once; :meth:`sparse_batch` gives
    their hits undecoded, for decoding on a GPU. The dataset pickles without its memory maps, so
    DataLoader workers reopen them (without verifying again).

    With ``verify`` (default) every shard of the split is checked against its sha256 in
    ``index.json`` on opening (:meth:`verify`); ``verify=False`` skips that, e.g. in benchmarks.
    """

    def __init__(self, root: str | Path, split: SplitName, *, verify: bool = True) -> None:
        self.root = Path(root)
        if split not in SPLITS:
            raise NucvnError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        index_path = self.root / "index.json"
        if not index_path.is_file():
            raise NucvnError(f"{index_path}: missing; run the preprocess stage (dvc repro preprocess)")
        try:
            self.index: dict[str, Any] = json.loads(index_path.read_text())
        except ValueError as exc:
            raise NucvnError(f"{index_path}: not valid JSON ({exc}); rerun preprocess") from exc
        fmt = (self.index.get("format"), self.index.get("version")) if isinstance(self.index, dict) else None
        if fmt != ("nucvn-shards", FORMAT_VERSION):
            raise NucvnError(f"{index_path}: not a version-{FORMAT_VERSION} nucvn shard index; rerun preprocess")
        self.split = split
        self._shards: list[dict[str, Any]] = self.index["splits"][split]["shards"]
        if verify:
            self.verify()
        metas = [self._load(sh["meta"]) for sh in self._shards]
        self._meta: npt.NDArray[np.void] = np.concatenate(metas) if metas else np.zeros(0, dtype=np.dtype([]))
        self._offsets = np.cumsum([0] + [sh["n_events"] for sh in self._shards])
        if self._offsets[-1] != len(self._meta):
            raise NucvnError(f"{index_path}: split {split} lists {self._offsets[-1]} events but its meta shards "
                             f"hold {len(self._meta)}; rerun preprocess")
        self._hit_offsets = [self._checked_offsets(sh) for sh in self._shards]
        self._items = {k: np.asarray(self._meta[k], np.float32) for k in _ITEM_FLOAT} if len(self._meta) else {}
        self._items |= {k: np.asarray(self._meta[k], np.int64) for k in _ITEM_INT} if len(self._meta) else {}
        self._hits: list[np.ndarray] | None = None
        self._table: HitTable | None = None

    def _load(self, rel: str, mmap: bool = False) -> np.ndarray:
        path = self.root / rel
        try:
            return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise NucvnError(f"{path}: cannot be read ({exc}); rerun preprocess") from exc

    def _checked_offsets(self, shard: dict[str, Any]) -> npt.NDArray[np.int64]:
        offsets = self._load(shard["offsets"])
        n = shard["n_events"]
        if (offsets.dtype != np.int64 or offsets.shape != (n + 1,) or offsets[0] != 0
                or offsets[-1] != shard.get("n_hits") or np.any(np.diff(offsets) < 0)):
            raise NucvnError(f"{self.root / shard['offsets']}: not the int64 offsets of {n} events and "
                             f"{shard.get('n_hits')} hits that index.json describes; {REPROCESS}")
        return np.asarray(offsets)

    @property
    def hits(self) -> list[np.ndarray]:
        """The memory-mapped hits of each shard, opened on first use."""
        if self._hits is None:
            hits = [self._load(sh["hits"], mmap=True) for sh in self._shards]
            for sh, arr in zip(self._shards, hits, strict=True):
                if arr.dtype != HIT_DTYPE or arr.shape != (sh["n_hits"],):
                    raise NucvnError(f"{self.root / sh['hits']}: holds {arr.dtype} {arr.shape}, index.json expects "
                                     f"{sh['n_hits']} hits of {HIT_DTYPE}; {REPROCESS}")
            self._hits = hits
        return self._hits

    @property
    def table(self) -> HitTable:
        """The shards' hits as one :class:`nucvn.data.hits.HitTable` (memory maps), made on first use."""
        if self._table is None:
            self._table = HitTable(self.hits, self._hit_offsets)
        return self._table

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__ | {"_hits": None, "_table": None}

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        n = len(self)
        if not -n <= int(i) < n:
            raise IndexError(f"index {i} out of range for {self.split} split of {n} events")
        images, labels = self.batch([int(i) % n])
        return images[0], {k: v[0] for k, v in labels.items()}

    def _indices(self, indices: Sequence[int] | npt.NDArray[np.integer]) -> npt.NDArray[np.int64]:
        """``indices`` checked and wrapped, for the labels (the hits' readers do this themselves)."""
        idx = self._raw_indices(indices)
        n = len(self)
        bad = np.flatnonzero((idx < -n) | (idx >= n))
        if len(bad):
            raise self._out_of_range(idx, int(bad[0]))
        return idx % max(n, 1)

    def _raw_indices(self, indices: Sequence[int] | npt.NDArray[np.integer]) -> npt.NDArray[np.int64]:
        """A fresh int64 copy of ``indices``, which :class:`HitTable` may change in place."""
        return np.array(indices, dtype=np.int64).reshape(-1)

    def _out_of_range(self, indices: npt.NDArray[np.int64], bad: int) -> IndexError:
        return IndexError(f"index {int(indices[bad])} out of range for {self.split} split of {len(self)} events")

    def sparse_batch(self, indices: Sequence[int] | npt.NDArray[np.integer]) -> SparseBatch:
        """The hits of events ``indices`` (row b of the batch is event ``indices[b]``), undecoded:
        what a GPU run copies to the device (:meth:`SparseBatch.decode` builds the maps there)."""
        idx = self._raw_indices(indices)
        pixel, value, lengths, rows, bad = self.table.gather(idx)
        if bad >= 0:
            raise self._out_of_range(idx, bad)
        return SparseBatch(torch.from_numpy(pixel), torch.from_numpy(value), torch.from_numpy(lengths),
                           torch.from_numpy(rows), size=len(idx))

    def labels_of(self, indices: Sequence[int] | npt.NDArray[np.integer]) -> dict[str, torch.Tensor]:
        """The label tensors ``(b,)`` of events ``indices``."""
        idx = self._indices(indices)
        return {k: torch.from_numpy(v[idx]) for k, v in self._items.items()}

    def images(self, indices: Sequence[int] | npt.NDArray[np.integer]) -> torch.Tensor:
        """Dense uint8 maps ``(b, 2, 100, 80)`` of events ``indices``, in order, decoded on the CPU."""
        idx = self._raw_indices(indices)
        out = np.empty((len(idx), N_PIXELS), np.uint8)  # every row is written once
        bad = self.table.decode(idx, out)
        if bad >= 0:
            raise self._out_of_range(idx, bad)
        return torch.from_numpy(out).view(-1, *IMAGE_SHAPE)

    def batch(self, indices: Sequence[int] | npt.NDArray[np.integer]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Images ``(b, 2, 100, 80)`` uint8 (:meth:`images`) and label tensors ``(b,)`` for ``indices``, in order."""
        return self.images(indices), self.labels_of(indices)

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
        images, labels = self.batch(indices)
        return [(images[b], {k: v[b] for k, v in labels.items()}) for b in range(len(images))]

    def dense_blocks(self, block: int = 4096) -> Iterator[npt.NDArray[np.uint8]]:
        """The split's images in order, ``block`` events at a time, as dense uint8 arrays."""
        for start in range(0, len(self), block):
            yield self.batch(np.arange(start, min(start + block, len(self))))[0].numpy()

    @property
    def metadata(self) -> pd.DataFrame:
        """Every column (metadata, labels, identity) of the split, in dataset order."""
        return pd.DataFrame(self._meta) if len(self._meta) else pd.DataFrame(columns=self.index["columns"])

    def labels(self, name: str) -> np.ndarray:
        """One column for the whole split (no images read), e.g. for class weights."""
        if not self._meta.dtype.names or name not in self._meta.dtype.names:
            columns = ", ".join(self.index["columns"])
            raise NucvnError(f"{self.root}: no column {name!r} in split {self.split}; columns: {columns}")
        return np.asarray(self._meta[name])

    @property
    def shard_sha256(self) -> dict[str, str]:
        """Checksums of this split's shard files by path relative to the root (sha256 of the
        payload for hits files, of the file for offsets and metadata)."""
        return {sh[kind]: sh["sha256"][kind] for sh in self._shards for kind in SHARD_FILES}

    def verify(self) -> None:
        """Recompute every shard's checksum (several files at once) and refuse, naming the first
        file in index order that differs from ``index.json``, with what to do."""
        files = [(sh[kind], kind, sh) for sh in self._shards for kind in SHARD_FILES]
        workers = max(1, min(_HASH_THREADS, os.cpu_count() or 1, len(files)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="shard-verify") as pool:
            hashes = list(pool.map(lambda f: self._hash(f[0], f[1]), files))
        for (rel, kind, shard), got in zip(files, hashes, strict=True):
            problem = self._problem(rel, kind, shard, got)
            if problem is not None:
                raise NucvnError(problem)

    def _hash(self, rel: str, kind: ShardKind) -> str | OSError | ValueError:
        """The shard file's checksum (:func:`shard_sha256`), or why it cannot be read."""
        try:
            return shard_sha256(self.root / rel, kind)
        except (OSError, ValueError) as exc:
            return exc

    def _problem(self, rel: str, kind: ShardKind, shard: dict[str, Any], got: str | OSError | ValueError) -> str | None:
        """``None`` if the shard file matches ``index.json``, else the one-line complaint."""
        path = self.root / rel
        if not isinstance(got, str):
            return f"{path}: cannot be read ({got}); {REPROCESS}"
        if got == shard.get("sha256", {}).get(kind):
            return None
        if kind == "hits":
            arr = self._load(rel, mmap=True)
            if arr.dtype != HIT_DTYPE or arr.shape != (shard["n_hits"],):
                return (f"{path}: holds {arr.dtype} {arr.shape}, index.json expects {shard['n_hits']} hits of "
                        f"{HIT_DTYPE}; {REPROCESS}")
        return (f"{path}: sha256 differs from the one in {self.root / 'index.json'} (the shard changed after "
                f"preprocessing); {REPROCESS}")
