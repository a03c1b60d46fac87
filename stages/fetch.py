"""DVC stage ``fetch``: fill ``data/raw`` with event files and ``MANIFEST.json``.

``fetch.source: sim`` simulates ``fetch.sim.files`` files (the offline default); ``url``
downloads ``fetch.url.files`` from ``fetch.url.base``. All logic lives in :mod:`nucvn.fetch`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from nucvn.errors import NucvnError
from nucvn.fetch import fetch_sim, fetch_url

RAW = Path("data/raw")


def main() -> int:
    params = yaml.safe_load(Path("params.yaml").read_text())["fetch"]
    source = params["source"]
    if source == "sim":
        sim = params["sim"]
        manifest = fetch_sim(
            RAW,
            files=int(sim["files"]),
            events=int(sim["events"]),
            seed=int(sim["seed"]),
            workers=int(sim["workers"]),
            composition=sim.get("composition"),
        )
    elif source == "url":
        url = params["url"]
        manifest = fetch_url(
            str(url["base"]),
            url["files"],
            RAW,
            parallel=int(url["parallel"]),
            retries=int(url["retries"]),
            backoff=float(url["backoff"]),
            timeout=float(url["timeout"]),
        )
    else:
        raise NucvnError(f"params.yaml: fetch.source must be 'sim' or 'url', got {source!r}")
    n = sum(e["n_events"] for e in manifest["files"])
    print(f"fetch: {len(manifest['files'])} files, {n} events from source {source!r} in {RAW}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except NucvnError as exc:
        print(f"stage fetch: error: {exc}", file=sys.stderr)
        sys.exit(2)
