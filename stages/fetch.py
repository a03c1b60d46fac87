"""DVC stage ``fetch``: fill ``data/raw`` with event files (or a manifest of them) and ``MANIFEST.json``.

``fetch.source``: ``sim`` simulates ``fetch.sim.files`` files (the offline default) with the
detector response ``fetch.sim.detector``; ``url`` downloads ``fetch.url.files`` from
``fetch.url.base``; ``dir`` lists ``fetch.dir.files`` of ``fetch.dir.path`` in place, without
copying. All logic lives in :mod:`nucvn.data.fetch`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from _stage import read_params, run_stage
from nucvn.core.errors import NucvnError
from nucvn.data.fetch import fetch_dir, fetch_sim, fetch_url
from nucvn.sim.detector_params import DetectorParams
from nucvn.stage_params import FetchParams

RAW = Path("data/raw")


def main(argv: list[str]) -> int:
    p = read_params(FetchParams, "fetch")
    if p.source == "sim":
        manifest = fetch_sim(RAW, files=p.sim.files, events=p.sim.events, seed=p.sim.seed, workers=p.sim.workers,
                             composition=p.sim.composition,
                             detector_params=DetectorParams(**dataclasses.asdict(p.sim.detector)))
    elif p.source == "url":
        manifest = fetch_url(p.url.base, p.url.files, RAW, parallel=p.url.parallel, retries=p.url.retries,
                             backoff=p.url.backoff, timeout=p.url.timeout, min_rate=p.url.min_rate)
    else:
        if not p.dir.path:
            raise NucvnError("params.yaml: fetch.dir.path is empty; set it to the directory that holds neutrinoN.h5 "
                             "(dvc exp run -S fetch.source=dir -S fetch.dir.path=/path/to/files)")
        manifest = fetch_dir(Path(p.dir.path), p.dir.files, RAW)
    n = sum(e["n_events"] for e in manifest["files"])
    print(f"fetch: {len(manifest['files'])} files, {n} events from source {p.source!r} in {RAW}")
    return 0


if __name__ == "__main__":
    run_stage("fetch", main)
