"""Obtain the raw event files: simulate them, download them, or list a local directory.

Every source fills one directory (``data/raw``) with ``MANIFEST.json`` (source, parameters, and
per file: name, size, sha256, number of events; see :mod:`nucvn.data.manifest`) and, for ``sim`` and
``url``, the ``neutrinoN.h5`` files themselves. The directory is owned by the fetch stage: after
a successful call it holds exactly the planned files (stray event files and stale partial
downloads are removed, other unknown files reported), and a later call reuses every file that
still matches the manifest instead of producing it again. The manifest is written last, so it
always describes a complete data set; the preprocess stage gets its inputs from
:func:`raw_inputs`, which refuses files that changed since.

- ``sim`` (:func:`fetch_sim`, here): the fast simulation, into a temporary folder, then moved in;
- ``url`` (:func:`nucvn.data.fetch_url.fetch_url`): resumable, staged downloads, re-checked against
  the server on every run;
- ``dir`` (:func:`nucvn.data.fetch_dir.fetch_dir`): files read in place, never copied.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nucvn.data.fetch_dir import fetch_dir
from nucvn.data.fetch_url import DEFAULT_BASE, fetch_url
from nucvn.data.h5io import inspect_file
from nucvn.data.manifest import (
    MANIFEST,
    matches,
    parse_files,
    raw_inputs,
    read_manifest,
    sha256_file,
    tidy,
    write_manifest,
)

__all__ = [
    "DEFAULT_BASE", "MANIFEST", "sha256_file", "parse_files", "read_manifest", "write_manifest", "raw_inputs",
    "fetch_url", "fetch_sim", "fetch_dir",
]

if TYPE_CHECKING:
    from nucvn.sim.detector_params import DetectorParams

_SIM_TMP = ".sim.tmp"


def fetch_sim(
    out_dir: Path,
    *,
    files: int,
    events: int,
    seed: int,
    workers: int = 1,
    composition: Mapping[str, float] | None = None,
    progress: bool = True,
    detector_params: DetectorParams | None = None,
) -> dict[str, Any]:
    """Simulate ``files`` files of ``events`` events into ``out_dir`` (``nucvn.sim``); return the manifest.

    ``detector_params`` sets the detector response (default: :class:`DetectorParams` defaults); a
    variation of it re-simulates the same generator events and transport. The manifest records
    every detector parameter used under ``parameters.detector``, so a sample made with another
    response is never mistaken for this one, and the simulation code's fingerprint
    (:func:`nucvn.sim.simulate.code_fingerprint`) under ``parameters.code``, so that files simulated
    by other code are not reused after an update. If the previous manifest records the same parameters
    and every file still matches its size and sha256, nothing is simulated again (stray files are
    still removed). New files are simulated into a temporary directory and moved into place only
    when all are written.
    """
    from nucvn.sim.detector_params import DetectorParams
    from nucvn.sim.simulate import code_fingerprint, simulate_files

    dparams = detector_params if detector_params is not None else DetectorParams()
    # The files do not depend on the number of workers (byte-identical), so it is not recorded.
    params = {"files": files, "events": events, "seed": seed,
              "composition": dict(composition) if composition is not None else None,
              "detector": dataclasses.asdict(dparams), "code": code_fingerprint()}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    old = read_manifest(out_dir) or {}
    if old.get("source") == "sim" and old.get("parameters") == params and old.get("complete") \
            and all(matches(out_dir / e["name"], e) for e in old["files"]):
        tidy(out_dir, {e["name"] for e in old["files"]})
        return old
    tmp = out_dir / _SIM_TMP
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        paths = simulate_files(tmp, files=files, events=events, seed=seed, workers=workers,
                               composition=composition, first_index=1, progress=progress, detector_params=dparams)
        (out_dir / MANIFEST).unlink(missing_ok=True)
        entries = []
        for p in sorted(paths, key=lambda q: int(re.sub(r"\D", "", q.name) or 0)):
            info = inspect_file(p)
            entries.append({"name": p.name, "size": p.stat().st_size, "sha256": sha256_file(p),
                            "n_events": info.n_events, "generator": str(info.attrs.get("generator", ""))})
            os.replace(p, out_dir / p.name)
        tidy(out_dir, {str(e["name"]) for e in entries}, own={_SIM_TMP})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    manifest = {"source": "sim", "parameters": params, "complete": True, "files": entries}
    write_manifest(out_dir, manifest)
    return manifest
