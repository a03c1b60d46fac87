"""Names and constants of the shard format (``data/shards``), shared by its writer and reader.

Kept apart from :mod:`nucvn.data.shard_build` and :mod:`nucvn.data.shard_dataset` so that building shards
does not import torch, and both sides agree on one definition of splits, columns and version.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["SPLITS", "SplitName", "IDENTITY_KEYS", "LABEL_COLUMNS", "FORMAT_VERSION", "SHARD_FILES", "ShardKind",
           "REPROCESS"]

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
FORMAT_VERSION = 2
"""Version 2: sparse shards (hits, per-event offsets, metadata); version 1 stored dense maps."""
ShardKind = Literal["hits", "offsets", "meta"]
SHARD_FILES: tuple[ShardKind, ...] = ("hits", "offsets", "meta")
"""The files of one shard, as keys of its ``index.json`` entry and of its ``sha256``."""
REPROCESS = "rerun preprocess (dvc repro -f preprocess)"
"""What a message about a damaged or changed shard directory tells the user to do."""
