"""Building the shard directory (``data/shards``) from event files: :func:`build_shards`.

Event files are streamed through :mod:`nucvn.data.h5io` chunk by chunk and each chunk's events are
appended to the open shard files (:mod:`nucvn.data.shard_writer`), so memory is bounded by
``chunk_size`` (a few chunks in flight) and one shard of metadata, never by the number or size of
the inputs (the duplicate check adds 16 bytes per event, :mod:`nucvn.data.shard_dedup`). The format
is described in :mod:`nucvn.data.shards`.

The split is by event and deterministic: an event goes to the split into whose cumulative
fraction interval ``u = h(seed, identity) / 2**64`` falls, with ``h`` a chain of SplitMix64
finalisers (vectorised: no Python loop per event), so it depends only on the event and the seed,
and adding files never moves an existing event. The identity is ``(run, subrun, evt, cycle[,
subevt])`` when every input has those keys, else ``(file name, index in file)`` (so adding a file
that lacks them re-splits everything: the index records which identity was used). Fractions are
renormalised to sum to one (both the given and the used fractions are recorded).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from nucvn.core import events as ev
from nucvn.core.atomic import disk_errors
from nucvn.core.errors import NucvnError
from nucvn.core.progress import progress_bar
from nucvn.data.h5io import META_DTYPES, EventChunk, EventReader, FileInfo, inspect_file
from nucvn.data.labels import label_columns
from nucvn.data.manifest import sha256_file
from nucvn.data.shard_dedup import DuplicateLog, IdentitySet, duplicate_files
from nucvn.data.shard_format import FORMAT_VERSION, IDENTITY_KEYS, LABEL_COLUMNS, SPLITS
from nucvn.data.shard_workdir import publish, remove_stale, sigterm_exits, work_dir
from nucvn.data.shard_writer import SplitWriter

__all__ = ["build_shards"]

_DROP_HINT = "or set preprocess.on_duplicate: drop to keep only the first copy"


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
        "events": len(meta),
        "numu_cc": tally(meta["numu_cc"], {0: "background", 1: "signal"}),
        "flavour": tally(meta["flavour"], {f.value: f.name.lower() for f in ev.Flavour} | {-1: "none"}),
        "interaction": tally(meta["raw_interaction"] if "raw_interaction" in (meta.dtype.names or ())
                             else meta["interaction"], {}),
    }


def _event_meta(chunk: EventChunk, keys: Sequence[str], dtype: np.dtype, inter: np.ndarray) -> np.ndarray:
    """The structured metadata rows of a chunk: raw keys, derived labels, identity."""
    meta = np.zeros(len(chunk), dtype=dtype)
    for k in keys:
        meta[f"raw_{k}" if k in LABEL_COLUMNS else k] = chunk.meta[k].to_numpy()
    raw = {"interaction": inter, "lepenergy": chunk.meta["lepenergy"].to_numpy(),
           "nuenergy": chunk.meta["nuenergy"].to_numpy()}
    if "finalstate" in keys:
        raw["finalstate"] = chunk.meta["finalstate"].to_numpy()
    for name, values in label_columns(raw).items():
        meta[name] = values
    meta["file"] = chunk.path.name
    meta["index"] = np.arange(chunk.start, chunk.start + len(chunk))
    return meta


def _drop_duplicate_files(infos: list[FileInfo], sha: dict[str, str], on_duplicate: str,
                          log: DuplicateLog) -> list[FileInfo]:
    """``infos`` without files whose bytes repeat an earlier file's (``"drop"``, logged), or
    refuse naming both (``"fail"``)."""
    names = [fi.path.name for fi in infos]
    dups = duplicate_files(names, [sha[n] for n in names])
    for later, first in dups.items():
        if on_duplicate == "fail":
            raise NucvnError(f"preprocess: {later} is a byte-identical copy of {first} (sha256 {sha[later][:16]}…); "
                             f"delete {later} and fetch it again (a mirror or redirect may have served the wrong "
                             "file), "
                             f"{_DROP_HINT}")
        n = next(fi.n_events for fi in infos if fi.path.name == later)
        log.files.append({"name": later, "duplicate_of": first, "sha256": sha[later], "n_events": n})
    return [fi for fi in infos if fi.path.name not in dups]


def _duplicate_events(chunk: EventChunk, h: npt.NDArray[np.uint64], seen: IdentitySet, files: list[str],
                      id_keys: Sequence[str], on_duplicate: str, log: DuplicateLog) -> npt.NDArray[np.bool_]:
    """Mark the events of ``chunk`` whose identity was seen before (logged for ``"drop"``), or
    refuse naming the identity and both files (``"fail"``)."""
    dup, first_file, first_index = seen.add(h, files.index(chunk.path.name), chunk.start)
    where = np.flatnonzero(dup)
    if len(where) and on_duplicate == "fail":
        i = int(where[0])
        ident = ", ".join(f"{k}={chunk.meta[k].iloc[i]}" for k in id_keys) if id_keys else f"hash {int(h[i]):#018x}"
        raise NucvnError(f"preprocess: event ({ident}) is in both {files[first_file[i]]} (index {first_index[i]}) and "
                         f"{chunk.path.name} (index {chunk.start + i}); remove the duplicate input, {_DROP_HINT}")
    if len(where):
        log.add_events(files, chunk.path.name, chunk.start + where, first_file[where], first_index[where])
    return dup


def build_shards(
    inputs: Sequence[Path],
    out_dir: Path,
    *,
    split: Mapping[str, float] = {"train": 0.8, "val": 0.1, "test": 0.1},
    seed: int = 0,
    shard_size: int = 65536,
    chunk_size: int = 1024,
    drop_interactions: Sequence[int] = (15,),
    drop_empty: bool = True,
    on_bad_file: Literal["fail", "skip"] = "fail",
    on_duplicate: Literal["fail", "drop"] = "fail",
    progress: bool = True,
    provenance: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Stream ``inputs`` into train/val/test shards under ``out_dir`` and return the index.

    A file that fails validation raises :class:`NucvnError` naming it (``on_bad_file="fail"``) or
    is left out and listed in ``index["skipped"]`` with the reason (``"skip"``). Validation reads
    the metadata and the last event, not every image: a file whose images break mid-way fails
    the run, naming the file, in either mode. Events whose interaction code is in
    ``drop_interactions`` or (``drop_empty``) whose two maps are all zero are dropped and counted.

    Duplicates (:mod:`nucvn.data.shard_dedup`): an input file with the same sha256 as an earlier one,
    or an event with the same identity hash as an earlier event, raises :class:`NucvnError` naming
    both files (``on_duplicate="fail"``); with ``"drop"`` the later copies are left out and listed
    in ``index["duplicates"]``. Simulated files never repeat an identity (run = seed, subrun =
    file number, evt = index).

    Everything is written into ``.<out_dir>.tmp-<pid>`` renamed onto ``out_dir`` at the end, so an
    interrupted run leaves the previous ``out_dir`` intact; the temporary directory is removed on
    any exception (and on ``SIGTERM``, which exits with status 143), and leftovers of killed runs
    are removed at the start (:mod:`nucvn.data.shard_workdir`). A full disk raises one
    :class:`NucvnError` naming ``out_dir``. ``provenance`` (e.g. the raw data's manifest source and
    parameters) is stored as ``index["data"]`` so every later result can say which data it came from.
    """
    if shard_size <= 0 or chunk_size <= 0:
        raise NucvnError(f"preprocess.shard_size and preprocess.chunk_size must be positive, got {shard_size}, "
                         f"{chunk_size}")
    if on_bad_file not in ("fail", "skip"):
        raise NucvnError(f"preprocess.on_bad_file must be 'fail' or 'skip', got {on_bad_file!r}")
    if on_duplicate not in ("fail", "drop"):
        raise NucvnError(f"preprocess.on_duplicate must be 'fail' or 'drop', got {on_duplicate!r}")
    frac = _normalise_split(split)
    out_dir = Path(out_dir)
    remove_stale(out_dir)
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
    sha = {fi.path.name: sha256_file(fi.path) for fi in infos}
    log = DuplicateLog()
    infos = _drop_duplicate_files(infos, sha, on_duplicate, log)
    reader = EventReader.from_infos(infos)
    keys = reader.common_keys()
    id_keys = tuple(k for k in IDENTITY_KEYS if k in keys)
    if id_keys[:4] != IDENTITY_KEYS[:4]:
        id_keys = ()
    drop = np.asarray(sorted({int(c) for c in drop_interactions}), dtype=np.int64)
    sources: dict[str, dict[str, Any]] = {
        fi.path.name: {"name": fi.path.name, "size": fi.path.stat().st_size, "sha256": sha[fi.path.name],
                       "n_events": fi.n_events, "n_selected": 0} for fi in infos
    }
    params = {"split": dict(split), "split_used": frac, "seed": seed, "shard_size": shard_size,
              "chunk_size": chunk_size,
              "on_bad_file": on_bad_file, "on_duplicate": on_duplicate,
              "selection": {"drop_interactions": drop.tolist(), "drop_empty": drop_empty}}
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with sigterm_exits(), disk_errors(out_dir), work_dir(out_dir) as tmp:
        splits, dropped, columns = _stream(reader, keys, id_keys, tmp, sources, log, params, drop, progress)
        n_out = sum(v["n_events"] for v in splits.values())
        if n_out == 0:
            raise NucvnError(f"preprocess: no events left after selection (dropped {dropped}); relax "
                             "preprocess.selection")
        index = {
            "format": "nucvn-shards",
            "version": FORMAT_VERSION,
            "image_shape": list(ev.IMAGE_SHAPE),
            "layout": "view,plane,cell",
            "encoding": ("sparse: hits (pixel = view * 8000 + plane * 80 + cell, uint16; value, uint8) "
                         "and int64 offsets"),
            "n_hits": sum(sh["n_hits"] for v in splits.values() for sh in v["shards"]),
            "identity": list(id_keys) if id_keys else ["file", "index"],
            "columns": columns,
            "params": params,
            "selection": {"events_in": int(reader.n_events), "events_out": n_out, "dropped": dropped},
            "splits": splits,
            "counts": {s: v["counts"] for s, v in splits.items()},
            "sources": list(sources.values()),
            "skipped": skipped,
            "duplicates": log.to_json(),
            "data": dict(provenance) if provenance is not None else None,
        }
        with open(tmp / "index.json", "w") as f:
            json.dump(index, f, indent=2)
        publish(tmp, out_dir)
    return index


def _stream(reader: EventReader, keys: tuple[str, ...], id_keys: tuple[str, ...], tmp: Path,
            sources: dict[str, dict[str, Any]], log: DuplicateLog, params: dict[str, Any],
            drop: npt.NDArray[np.int64], progress: bool) -> tuple[dict[str, Any], dict[str, int], list[str]]:
    """Write every selected event into shards under ``tmp``; return the splits' entries of the
    index, the counts of dropped events and the metadata columns. Updates ``sources``
    (``n_selected``) and ``log`` (duplicate events) on the way."""
    files = list(sources)
    seen = IdentitySet()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shard-writer")
    writers: dict[str, SplitWriter] = {}
    dropped = {"interaction": 0, "empty": 0}
    dtype = np.dtype([])
    bar = progress_bar(total=reader.n_events, unit="event", desc="preprocess", disable=not progress)
    try:
        for chunk in reader.iter_chunks(params["chunk_size"], keys=keys, prefetch=2):
            if not writers:
                dtype = _meta_dtype(keys, chunk.meta, max(len(n) for n in files))
                writers = {s: SplitWriter(tmp, s, params["shard_size"], dtype, pool) for s in SPLITS}
            assert chunk.images is not None
            h = _hash_identity(chunk, id_keys, params["seed"])
            keep = ~_duplicate_events(chunk, h, seen, files, id_keys, params["on_duplicate"], log)
            inter = chunk.meta["interaction"].to_numpy().astype(np.int64)
            unwanted = np.isin(inter, drop) & keep
            dropped["interaction"] += int(unwanted.sum())
            keep &= ~unwanted
            if params["selection"]["drop_empty"]:
                empty = ~chunk.images.reshape(len(chunk), -1).view(np.uint64).any(axis=1) & keep
                dropped["empty"] += int(empty.sum())
                keep &= ~empty
            meta = _event_meta(chunk, keys, dtype, inter)
            which = _split_of(h, params["split_used"])
            for i, s in enumerate(SPLITS):
                sel = np.flatnonzero(keep & (which == i))
                if len(sel):
                    writers[s].add(chunk.images, meta, sel)
            sources[chunk.path.name]["n_selected"] += int(keep.sum())
            bar.update(len(chunk))
        splits: dict[str, Any] = {}
        for s, w in writers.items():
            w.finish()
            metas = [np.load(tmp / sh["meta"], allow_pickle=False) for sh in w.shards]
            met = np.concatenate(metas) if metas else np.zeros(0, dtype)
            splits[s] = {"n_events": len(met), "shards": w.shards, "counts": _counts(met)}
    finally:
        bar.close()
        pool.shutdown(wait=True, cancel_futures=True)
        for w in writers.values():
            w.abort()
    return splits, dropped, list(dtype.names or ())
