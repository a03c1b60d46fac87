"""The sharded tensor format (``data/shards``): build it with :func:`build_shards`, read it with
:class:`ShardDataset`.

The implementation lives in :mod:`nucvn.data.shard_build` (streaming event files into shards, the
split, duplicate checks), :mod:`nucvn.data.shard_writer` (``.npy`` files and their checksums),
:mod:`nucvn.data.shard_workdir` (the temporary directory and its cleanup), :mod:`nucvn.data.shard_dedup`,
:mod:`nucvn.data.sparse` (the hit encoding and its decoding on any device) and
:mod:`nucvn.data.shard_dataset` (the memory-mapped torch Dataset); this module is the public face.
A build writes::

    out_dir/index.json                     counts, shards with sha256, sources, params, skipped
                                           files, duplicates left out
    out_dir/{train,val,test}/hits-NNNNN.npy     every hit of the shard's events: (pixel uint16, value uint8),
                                                pixel = view * 8000 + plane * 80 + cell
    out_dir/{train,val,test}/offsets-NNNNN.npy  int64 (n + 1): event i's hits are hits[offsets[i]:offsets[i+1]]
    out_dir/{train,val,test}/meta-NNNNN.npy     structured array: metadata, labels, identity

Raw metadata keys that collide with a label name (simulated files' ``mode``) are stored as
``raw_<key>``; labels come from :mod:`nucvn.core.events` only. ``n_tracks``/``n_showers`` are -1 where
no final state is coded (or the files lack ``finalstate``). A hits file's sha256 covers its
payload after the ``.npy`` header, the other files' the whole file
(:func:`nucvn.data.shard_writer.shard_sha256`); :class:`ShardDataset` checks them when it opens a split.
"""

from __future__ import annotations

from nucvn.data.shard_build import build_shards
from nucvn.data.shard_dataset import ShardDataset
from nucvn.data.shard_format import FORMAT_VERSION, IDENTITY_KEYS, LABEL_COLUMNS, SPLITS, SplitName

__all__ = ["SPLITS", "SplitName", "LABEL_COLUMNS", "IDENTITY_KEYS", "FORMAT_VERSION", "build_shards", "ShardDataset"]
