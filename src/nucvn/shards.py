"""The sharded tensor format (``data/shards``) and its memory-mapped torch Dataset.

:func:`build_shards` streams event files through :mod:`nucvn.h5io` chunk by chunk and appends
each chunk's events to the open shard files (:mod:`nucvn.shard_writer`), so memory is bounded by
``chunk_size`` (a few chunks in flight) and one shard of metadata, never by the number or size of
the inputs. It writes::

    out_dir/index.json                     counts, shards with sha256, sources, params, skipped files
    out_dir/{train,val,test}/images-NNNNN.npy   uint8 (n, 2, 100, 80), [view][plane][cell]
    out_dir/{train,val,test}/meta-NNNNN.npy     structured array: metadata, labels, identity

The split is by event and deterministic: an event goes to the split into whose cumulative
fraction interval ``u = h(seed, identity) / 2**64`` falls, with ``h`` a chain of SplitMix64
finalisers (vectorised: no Python loop per event), so it depends only on the event and the seed,
and adding files never moves an existing event. The
identity is ``(run, subrun, evt, cycle[, subevt])`` when every input has those keys, else
``(file name, index in file)`` (so adding a file that lacks them re-splits everything: the index
records which identity was used). Fractions are renormalised to sum to one (both the given and the
used fractions are recorded), so ``dvc exp run -S preprocess.split.val=0.2`` works alone.

Raw metadata keys that collide with a label name (simulated files' ``mode``) are stored as
``raw_<key>``; labels come from :mod:`nucvn.events` only. ``n_tracks``/``n_showers`` are -1 where
no final state is coded (or the files lack ``finalstate``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import torch
from tqdm import tqdm

from nucvn import events as ev
from nucvn.errors import NucvnError
from nucvn.fetch import sha256_file
from nucvn.h5io import META_DTYPES, EventChunk, EventReader, inspect_file
from nucvn.shard_writer import SplitWriter, images_sha256

__all__ = ["SPLITS", "LABEL_COLUMNS", "IDENTITY_KEYS", "build_shards", "ShardDataset"]

SPLITS: tuple[str, ...] = ("train", "val", "test")
SplitName = Literal["train", "val", "test"]
IDENTITY_KEYS: tuple[str, ...] = ("run", "subrun", "evt", "cycle", "subevt")
LABEL_COLUMNS: dict[str, str] = {
    "numu_cc": "u1",
    "flavour": "i1",
    "mode": "i1",
    "n_tracks": "i1",
    "n_showers": "i1",
    "lepton_fraction": "<f4",
}
FORMAT_VERSION = 1
_ITEM_FLOAT = ("numu_cc", "lepton_fraction", "nuenergy", "lepenergy")
_ITEM_INT = ("flavour", "mode", "n_tracks", "n_showers")


def _normalise_split(split: Mapping[str, float]) -> dict[str, float]:
    unknown = set(split) - set(SPLITS)
    if unknown:
        raise NucvnError(f"preprocess.split: unknown split(s) {sorted(unknown)}; use {', '.join(SPLITS)}")
    frac = {s: float(split.get(s, 0.0)) for s in SPLITS}
    if any(not np.isfinite(v) or v < 0 for v in frac.values()) or sum(frac.values()) <= 0:
        raise NucvnError(f"preprocess.split: fractions must be non-negative with a positive sum, got {dict(split)}")
    total = sum(frac.values())
    return {s: v / total for s, v in frac.items()}


def _split_of(keys: npt.NDArray[np.uint64], frac: Mapping[str, float]) -> npt.NDArray[np.int8]:
    """Split index (0 train, 1 val, 2 test) of each 64-bit hash, by cumulative fraction."""
    u = keys.astype(np.float64) / 2.0**64
    edges = np.cumsum([frac[s] for s in SPLITS])[:-1]
    return np.searchsorted(edges, u, side="right").astype(np.int8)


_M1, _M2, _GOLDEN = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB), np.uint64(0x9E3779B97F4A7C15)


def _mix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """SplitMix64 finaliser (Steele, Lea & Flood, OOPSLA 2014; Stafford's "Mix13" constants):
    a bijection of 64-bit words with full avalanche, vectorised (uint64 arithmetic wraps)."""
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def _hash_identity(chunk: EventChunk, id_keys: Sequence[str], seed: int) -> npt.NDArray[np.uint64]:
    """A 64-bit keyed hash of each event's identity: the seed and every identity value are chained
    through :func:`_mix64`; without identity keys, the file name (blake2b) and the index in it."""
    n = len(chunk)
    h = np.full(n, _mix64(np.array([seed], dtype=np.int64).view(np.uint64) + _GOLDEN)[0], dtype=np.uint64)
    if id_keys:
        cols = [chunk.meta[k].to_numpy().astype(np.int64).view(np.uint64) for k in id_keys]
    else:
        name = int.from_bytes(hashlib.blake2b(chunk.path.name.encode(), digest_size=8).digest(), "little")
        cols = [np.full(n, name, dtype=np.uint64), np.arange(chunk.start, chunk.start + n, dtype=np.uint64)]
    for col in cols:
        h = _mix64((h ^ col) + _GOLDEN)
    return h


def _meta_dtype(keys: Sequence[str], sample: pd.DataFrame, name_len: int) -> np.dtype:
    fields: list[tuple[str, Any]] = []
    for k in keys:
        dt = META_DTYPES.get(k, sample[k].dtype)
        fields.append((f"raw_{k}" if k in LABEL_COLUMNS else k, np.dtype(dt).newbyteorder("<")))
    fields += list(LABEL_COLUMNS.items())
    fields += [("file", f"<U{max(name_len, 1)}"), ("index", "<i8")]
    return np.dtype(fields)


def _counts(meta: np.ndarray) -> dict[str, Any]:
    def tally(values: np.ndarray, names: dict[int, str]) -> dict[str, int]:
        u, c = np.unique(values, return_counts=True)
        return {names.get(int(v), str(int(v))): int(n) for v, n in zip(u, c, strict=True)}

    return {
        "events": int(len(meta)),
        "numu_cc": tally(meta["numu_cc"], {0: "background", 1: "signal"}),
        "flavour": tally(meta["flavour"], {f.value: f.name.lower() for f in ev.Flavour} | {-1: "none"}),
        "interaction": tally(meta["raw_interaction"] if "raw_interaction" in meta.dtype.names else meta["interaction"], {}),
    }


def build_shards(
    inputs: Sequence[Path],
    out_dir: Path,
    *,
    split: Mapping[str, float] = {"train": 0.8, "val": 0.1, "test": 0.1},  # noqa: B006 (read only)
    seed: int = 0,
    shard_size: int = 4096,
    chunk_size: int = 1024,
    drop_interactions: Sequence[int] = (15,),
    drop_empty: bool = True,
    on_bad_file: Literal["fail", "skip"] = "fail",
    progress: bool = True,
    provenance: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Stream ``inputs`` into train/val/test shards under ``out_dir`` and return the index.

    A file that fails validation raises :class:`NucvnError` naming it (``on_bad_file="fail"``) or
    is left out and listed in ``index["skipped"]`` with the reason (``"skip"``). Validation reads
    the metadata and the last event, not every image: a file whose images break mid-way fails
    the run, naming the file, in either mode (its events may already be in shards). Events whose
    interaction code is in ``drop_interactions`` or (``drop_empty``) whose two maps are all zero
    are dropped and counted. Everything is written into a temporary directory renamed onto
    ``out_dir`` at the end, so an interrupted run leaves the previous ``out_dir`` intact.
    ``provenance`` (e.g. the raw data's manifest source and parameters) is stored as
    ``index["data"]`` so every later result can say which data it came from.
    """
    if shard_size <= 0 or chunk_size <= 0:
        raise NucvnError(f"preprocess.shard_size and preprocess.chunk_size must be positive, got {shard_size}, {chunk_size}")
    if on_bad_file not in ("fail", "skip"):
        raise NucvnError(f"preprocess.on_bad_file must be 'fail' or 'skip', got {on_bad_file!r}")
    frac = _normalise_split(split)
    paths = [Path(p) for p in inputs]
    if not paths:
        raise NucvnError("preprocess: no input files; run the fetch stage first (data/raw/neutrino*.h5)")
    infos, skipped = [], []
    for p in paths:
        try:
            infos.append(inspect_file(p))
        except NucvnError as exc:
            if on_bad_file == "fail":
                raise NucvnError(f"{exc} (or set preprocess.on_bad_file: skip to leave the file out)") from exc
            skipped.append({"name": p.name, "reason": str(exc)})
    if not infos:
        raise NucvnError(f"preprocess: every input file is bad ({len(skipped)} skipped); fix or re-fetch data/raw")
    names = [fi.path.name for fi in infos]
    if len(set(names)) != len(names):
        raise NucvnError("preprocess: two input files share a name; the event identity needs unique file names")
    reader = EventReader.from_infos(infos)
    keys = reader.common_keys()
    id_keys = tuple(k for k in IDENTITY_KEYS if k in keys)
    if id_keys[:4] != IDENTITY_KEYS[:4]:
        id_keys = ()
    drop = np.asarray(sorted({int(c) for c in drop_interactions}), dtype=np.int64)

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shard-writer")
    writers: dict[str, SplitWriter] = {}
    try:
        sources: dict[str, dict[str, Any]] = {
            fi.path.name: {"name": fi.path.name, "size": fi.path.stat().st_size, "sha256": sha256_file(fi.path),
                           "n_events": fi.n_events, "n_selected": 0} for fi in infos
        }
        dropped = {"interaction": 0, "empty": 0}
        bar = tqdm(total=reader.n_events, unit="event", desc="preprocess", disable=not progress, dynamic_ncols=True)
        for chunk in reader.iter_chunks(chunk_size, keys=keys, prefetch=2):
            if not writers:
                dtype = _meta_dtype(keys, chunk.meta, max(len(n) for n in names))
                writers = {s: SplitWriter(tmp, s, shard_size, dtype, pool) for s in SPLITS}
            assert chunk.images is not None
            inter = chunk.meta["interaction"].to_numpy().astype(np.int64)
            keep = ~np.isin(inter, drop)
            dropped["interaction"] += int((~keep).sum())
            if drop_empty:
                empty = ~chunk.images.reshape(len(chunk), -1).view(np.uint64).any(axis=1)
                dropped["empty"] += int((empty & keep).sum())
                keep &= ~empty
            meta = np.zeros(len(chunk), dtype=dtype)
            for k in keys:
                meta[f"raw_{k}" if k in LABEL_COLUMNS else k] = chunk.meta[k].to_numpy()
            lep, nu = chunk.meta["lepenergy"].to_numpy(), chunk.meta["nuenergy"].to_numpy()
            meta["numu_cc"] = ev.numu_cc(inter)
            meta["flavour"] = ev.flavour(inter)
            meta["mode"] = ev.mode(inter)
            fs = chunk.meta["finalstate"].to_numpy() if "finalstate" in keys else np.full(len(chunk), -1)
            meta["n_tracks"], meta["n_showers"] = ev.n_tracks(fs), ev.n_showers(fs)
            meta["lepton_fraction"] = ev.lepton_fraction(lep, nu)
            meta["file"] = chunk.path.name
            meta["index"] = np.arange(chunk.start, chunk.start + len(chunk))
            which = _split_of(_hash_identity(chunk, id_keys, seed), frac)
            for i, s in enumerate(SPLITS):
                sel = np.flatnonzero(keep & (which == i))
                if len(sel):
                    writers[s].add(chunk.images, meta, sel)
            sources[chunk.path.name]["n_selected"] += int(keep.sum())
            bar.update(len(chunk))
        bar.close()
        splits: dict[str, Any] = {}
        for s, w in writers.items():
            w.finish()
            metas = [np.load(tmp / sh["meta"], allow_pickle=False) for sh in w.shards]
            met = np.concatenate(metas) if metas else np.zeros(0, dtype)
            splits[s] = {"n_events": int(len(met)), "shards": w.shards, "counts": _counts(met)}
        n_out = sum(v["n_events"] for v in splits.values())
        if n_out == 0:
            raise NucvnError(f"preprocess: no events left after selection (dropped {dropped}); relax preprocess.selection")
        index = {
            "format": "nucvn-shards",
            "version": FORMAT_VERSION,
            "image_shape": list(ev.IMAGE_SHAPE),
            "layout": "view,plane,cell",
            "identity": list(id_keys) if id_keys else ["file", "index"],
            "columns": list(dtype.names or ()),
            "params": {"split": dict(split), "split_used": frac, "seed": seed, "shard_size": shard_size,
                       "chunk_size": chunk_size, "on_bad_file": on_bad_file,
                       "selection": {"drop_interactions": drop.tolist(), "drop_empty": drop_empty}},
            "selection": {"events_in": int(reader.n_events), "events_out": n_out, "dropped": dropped},
            "splits": splits,
            "counts": {s: v["counts"] for s, v in splits.items()},
            "sources": list(sources.values()),
            "skipped": skipped,
            "data": dict(provenance) if provenance is not None else None,
        }
        with open(tmp / "index.json", "w") as f:
            json.dump(index, f, indent=2)
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        if out_dir.exists():
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for w in writers.values():
            w.abort()
        shutil.rmtree(tmp, ignore_errors=True)
    return index


class ShardDataset(torch.utils.data.Dataset):
    """One split of a shard directory as a map-style torch Dataset.

    Images are memory-mapped (``np.load(mmap_mode="r", allow_pickle=False)``); an item copies one
    event (16 kB), never a shard. ``dataset[i]`` is ``(uint8 tensor (2, 100, 80), labels)`` with
    labels ``numu_cc``, ``lepton_fraction``, ``nuenergy``, ``lepenergy`` (float32) and
    ``flavour``, ``mode``, ``n_tracks``, ``n_showers`` (int64). :meth:`batch` (also used by
    ``DataLoader`` through ``__getitems__``) reads many events with one fancy index per shard.
    The dataset pickles without its memory maps, so DataLoader workers reopen them.
    """

    def __init__(self, root: str | Path, split: SplitName) -> None:
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
        payload for image shards (:func:`nucvn.shard_writer.images_sha256`), of the file for
        metadata shards."""
        return {sh[kind]: sh["sha256"][kind] for sh in self._shards for kind in ("images", "meta")}

    def verify(self) -> None:
        """Recompute every shard's checksum and refuse, naming the file, on a mismatch."""
        for rel, want in self.shard_sha256.items():
            path = self.root / rel
            if (images_sha256(path) if Path(rel).name.startswith("images-") else sha256_file(path)) != want:
                raise NucvnError(f"{self.root / rel}: sha256 differs from index.json; the shard is corrupt, rerun preprocess")
