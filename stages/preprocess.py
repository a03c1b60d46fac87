"""DVC stage ``preprocess``: stream ``data/raw`` into ``data/shards`` (train/val/test shards).

The inputs are the files listed in ``data/raw/MANIFEST.json``; all logic lives in
:func:`nucvn.shards.build_shards`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from nucvn.errors import NucvnError
from nucvn.fetch import read_manifest
from nucvn.shards import build_shards

RAW = Path("data/raw")
SHARDS = Path("data/shards")


def main() -> int:
    params = yaml.safe_load(Path("params.yaml").read_text())["preprocess"]
    manifest = read_manifest(RAW)
    if manifest is None or not manifest.get("complete"):
        raise NucvnError(f"{RAW / 'MANIFEST.json'}: missing or incomplete; run the fetch stage first (dvc repro fetch)")
    selection = params["selection"]
    index = build_shards(
        [RAW / e["name"] for e in manifest["files"]],
        SHARDS,
        split={str(k): float(v) for k, v in params["split"].items()},
        seed=int(params["seed"]),
        shard_size=int(params["shard_size"]),
        chunk_size=int(params["chunk_size"]),
        drop_interactions=[int(c) for c in selection["drop_interactions"]],
        drop_empty=bool(selection["drop_empty"]),
        on_bad_file=params["on_bad_file"],
        provenance={"source": manifest["source"], "parameters": manifest["parameters"]},
    )
    counts = ", ".join(f"{s} {v['n_events']}" for s, v in index["splits"].items())
    print(f"preprocess: {index['selection']['events_out']} of {index['selection']['events_in']} events kept ({counts}); "
          f"{len(index['skipped'])} files skipped")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except NucvnError as exc:
        print(f"stage preprocess: error: {exc}", file=sys.stderr)
        sys.exit(2)
