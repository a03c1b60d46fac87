"""DVC stage ``preprocess``: stream the fetched files into ``data/shards`` (train/val/test shards).

The inputs are the files listed in ``data/raw/MANIFEST.json`` (:func:`nucvn.data.fetch.raw_inputs`
refuses any that changed since the fetch); all logic lives in :func:`nucvn.data.shards.build_shards`.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from _stage import read_params, run_stage
from nucvn.data.manifest import raw_inputs, read_manifest
from nucvn.data.shards import build_shards
from nucvn.stage_params import PreprocessParams

RAW = Path("data/raw")
SHARDS = Path("data/shards")


def main(argv: list[str]) -> int:
    p = read_params(PreprocessParams, "preprocess")
    inputs = raw_inputs(RAW)
    manifest = read_manifest(RAW) or {}
    index = build_shards(
        inputs,
        SHARDS,
        split=asdict(p.split),
        seed=p.seed,
        shard_size=p.shard_size,
        chunk_size=p.chunk_size,
        drop_interactions=p.selection.drop_interactions,
        drop_empty=p.selection.drop_empty,
        on_bad_file=p.on_bad_file,
        on_duplicate=p.on_duplicate,
        provenance={"source": manifest.get("source"), "parameters": manifest.get("parameters")},
    )
    counts = ", ".join(f"{s} {v['n_events']}" for s, v in index["splits"].items())
    print(f"preprocess: {index['selection']['events_out']} of {index['selection']['events_in']} events kept "
          f"({counts}); "
          f"{len(index['skipped'])} files skipped")
    return 0


if __name__ == "__main__":
    run_stage("preprocess", main)
