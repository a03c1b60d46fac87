"""Reading one split of a shard directory (``data/shards``) as a torch Dataset: :class:`ShardDataset`.

Opening a split checks every one of its shard files against the sha256 that ``index.json``
records (:func:`nucvn.data.shard_writer.shard_sha256`), so training or evaluating on shards whose bytes
changed after preprocessing fails at once, naming the file, instead of producing a model whose
recorded data checksum describes other data. Hashing runs in a few threads straight from memory
maps: about 0.35 s for 20k events (323 MB) on a 2-core CPU with the files in the page cache (sha256
itself runs at about 1.1 GB/s there); ``verify=False`` skips it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import torch

from nucvn.core import events as ev
from nucvn.core.errors import NucvnError
from nucvn.data.shard_format import FORMAT_VERSION, REPROCESS, SPLITS, SplitName
from nucvn.data.shard_writer import ShardKind, shard_sha256

__all__ = ["ShardDataset"]

_ITEM_FLOAT = ("numu_cc", "lepton_fraction", "nuenergy", "lepenergy")
_ITEM_INT = ("flavour", "mode", "n_tracks", "n_showers")
_HASH_THREADS = 4


class ShardDataset(torch.utils.data.Dataset):
    """One split of a shard directory as a map-style torch Dataset.

    Images are memory-mapped (``np.load(mmap_mode="r", allow_pickle=False)``); an item copies one
    event (16 kB), never a shard. ``dataset[i]`` is ``(uint8 tensor (2, 100, 80), labels)`` with
    labels ``numu_cc``, ``lepton_fraction``, ``nuenergy``, ``lepenergy`` (float32) and
    ``flavour``, ``mode``, ``n_tracks``, ``n_showers`` (int64). :meth:`batch` (also used by
    ``DataLoader`` through ``__getitems__``) reads many events with one fancy index per shard.
    The dataset pickles without its memory maps, so DataLoader workers reopen them (without
    verifying again).

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
        self._meta = np.concatenate(metas) if metas else np.zeros(0)
        self._offsets = np.cumsum([0] + [sh["n_events"] for sh in self._shards])
        if self._offsets[-1] != len(self._meta):
            raise NucvnError(f"{index_path}: split {split} lists {self._offsets[-1]} events but its meta shards "
                             f"hold {len(self._meta)}; rerun preprocess")
        self._items = {k: np.asarray(self._meta[k], np.float32) for k in _ITEM_FLOAT} if len(self._meta) else {}
        self._items |= {k: np.asarray(self._meta[k], np.int64) for k in _ITEM_INT} if len(self._meta) else {}
        self._images: list[np.ndarray] | None = None

    def _load(self, rel: str, mmap: bool = False) -> np.ndarray:
        path = self.root / rel
        try:
            return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise NucvnError(f"{path}: cannot be read ({exc}); rerun preprocess") from exc

    @property
    def images(self) -> list[np.ndarray]:
        """The memory-mapped image shards, opened on first use."""
        if self._images is None:
            images = [self._load(sh["images"], mmap=True) for sh in self._shards]
            for sh, arr in zip(self._shards, images, strict=True):
                if arr.dtype != np.uint8 or arr.shape != (sh["n_events"], *ev.IMAGE_SHAPE):
                    raise NucvnError(f"{self.root / sh['images']}: holds {arr.dtype} {arr.shape}, index.json expects "
                                     f"uint8 ({sh['n_events']}, 2, 100, 80); rerun preprocess")
            self._images = images
        return self._images

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__ | {"_images": None}

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def _locate(self, i: int) -> tuple[int, int]:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for {self.split} split of {n} events")
        i %= n
        s = int(np.searchsorted(self._offsets, i, side="right")) - 1
        return s, i - int(self._offsets[s])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        s, j = self._locate(int(i))
        image = torch.from_numpy(np.array(self.images[s][j]))
        i %= len(self)
        return image, {k: torch.tensor(v[i]) for k, v in self._items.items()}

    def batch(self, indices: Sequence[int] | npt.NDArray[np.integer]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Images ``(b, 2, 100, 80)`` uint8 and label tensors ``(b,)`` for ``indices``, in order."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self)
        if len(idx) and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"indices out of range for {self.split} split of {n} events")
        idx %= max(n, 1)
        out = np.empty((len(idx), *ev.IMAGE_SHAPE), dtype=np.uint8)
        shard = np.searchsorted(self._offsets, idx, side="right") - 1
        for s in np.unique(shard):
            pos = np.flatnonzero(shard == s)
            local = idx[pos] - self._offsets[s]
            order = np.argsort(local, kind="stable")
            out[pos[order]] = self.images[int(s)][local[order]]
        return torch.from_numpy(out), {k: torch.from_numpy(v[idx]) for k, v in self._items.items()}

    images_batch = batch

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
        images, labels = self.batch(indices)
        return [(images[b], {k: v[b] for k, v in labels.items()}) for b in range(len(images))]

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
        """Checksums of this split's shards by path relative to the root: sha256 of the pixel
        payload for image shards (:func:`nucvn.data.shard_writer.images_sha256`), of the file for
        metadata shards."""
        return {sh[kind]: sh["sha256"][kind] for sh in self._shards for kind in ("images", "meta")}

    def verify(self) -> None:
        """Recompute every shard's checksum (several files at once) and refuse, naming the first
        file in index order that differs from ``index.json``, with what to do."""
        files = [(sh[kind], kind, sh) for sh in self._shards for kind in ("images", "meta")]
        workers = max(1, min(_HASH_THREADS, os.cpu_count() or 1, len(files)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="shard-verify") as pool:
            problems = list(pool.map(lambda f: self._check(*f), files))
        for problem in problems:
            if problem is not None:
                raise NucvnError(problem)

    def _check(self, rel: str, kind: ShardKind, shard: dict[str, Any]) -> str | None:
        """``None`` if the shard file matches ``index.json``, else the one-line complaint."""
        path = self.root / rel
        want = shard.get("sha256", {}).get(kind)
        try:
            got = shard_sha256(path, kind)
        except (OSError, ValueError) as exc:
            return f"{path}: cannot be read ({exc}); {REPROCESS}"
        if got == want:
            return None
        if kind == "images":
            arr = self._load(rel, mmap=True)
            expect = (shard["n_events"], *ev.IMAGE_SHAPE)
            if arr.dtype != np.uint8 or arr.shape != expect:
                return f"{path}: holds {arr.dtype} {arr.shape}, index.json expects uint8 {expect}; {REPROCESS}"
        return (f"{path}: sha256 differs from the one in {self.root / 'index.json'} (the shard changed after "
                f"preprocessing); {REPROCESS}")
