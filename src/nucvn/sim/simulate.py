"""Orchestration of the fast simulation: generator → detector → ``neutrinoN.h5`` files.

:func:`simulate_events` makes one in-memory sample (images, file metadata and the generator's
full truth); :func:`simulate_files` writes ``out_dir/neutrino{i}.h5`` files in the docs/format.md
layout, in parallel worker processes. Every file's random streams derive from ``(seed, file
index)`` through :class:`numpy.random.SeedSequence` (and every chunk of 500 events from
``(seed, file index, chunk)``), so the output is byte-identical whatever the number of workers.
The generator has its own stream, and inside the detector every event has separate transport and
readout streams (:func:`nucvn.sim.detector.event_seed`), so the same ``seed`` with a varied
detector response (:meth:`DetectorParams.scaled`) gives the same generator events and the same
particle transport: a detector systematic shows up without the statistical noise of new events.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from nucvn import __version__
from nucvn.core.codehash import source_digest
from nucvn.core.errors import NucvnError
from nucvn.core.events import FS_COSMIC, FS_OTHER, finalstate_code, pack_particles
from nucvn.core.progress import progress_bar
from nucvn.data.h5io import META_DTYPES
from nucvn.data.h5write import write_events
from nucvn.sim.detector import Detector, DetectorResult
from nucvn.sim.detector_params import DetectorParams
from nucvn.sim.generator import Generator
from nucvn.sim.generator_params import GeneratorParams, validate_composition
from nucvn.sim.particles import FS_GROUP_KEY, GeneratedBatch

__all__ = ["GENERATOR_NAME", "CHUNK_EVENTS", "code_fingerprint", "SimulatedEvents", "simulate_events", "simulate_files",
           "finalstate_codes"]

GENERATOR_NAME = f"nucvn-sim {__version__}"
"""Root attribute ``generator`` of simulated files."""
CHUNK_EVENTS = 500
"""Events generated per chunk; fixed so results never depend on how work is split."""
_CODE = [*sorted(Path(__file__).resolve().parent.glob("*.py")),
         *(Path(__file__).resolve().parents[1] / m for m in ("core/events.py", "data/h5write.py", "data/h5io.py"))]


def code_fingerprint() -> str:
    """sha256 of what decides the simulated bytes besides the parameters: the simulation's source
    files (``nucvn/sim``, the label and file-format modules) and the versions of numpy, numba and
    Pythia. A manifest records it, so files simulated by other code are simulated again instead of
    reused (a changed generator keeps the parameters, not the events). Comments and docstrings do
    not count (:func:`nucvn.core.codehash.source_digest`): editing them leaves the data as it is."""
    from importlib.metadata import version

    versions = " ".join(f"{m} {version(m)}" for m in ("numpy", "numba", "pythia8mc"))
    return source_digest(_CODE, prefix=versions.encode())


@dataclass
class SimulatedEvents:
    """One simulated sample: what a file holds (``images``, ``meta``) plus full truth."""

    images: npt.NDArray[np.uint8]
    meta: dict[str, npt.NDArray[np.generic]]
    truth: dict[str, npt.NDArray[np.generic]]
    particles: npt.NDArray[np.void]

    def __len__(self) -> int:
        return int(self.images.shape[0])


def finalstate_codes(
    group: npt.ArrayLike, tracks: npt.ArrayLike, showers: npt.ArrayLike
) -> npt.NDArray[np.int64]:
    """``finalstate`` codes: :func:`nucvn.core.events.finalstate_code` for groups 0-2, 48 for cosmic
    and 49 for anything else."""
    g = np.asarray(group, dtype=np.int64)
    out = np.full(g.shape, FS_OTHER, dtype=np.int64)
    ok = (g >= 0) & (g <= 2)
    out[ok] = finalstate_code(g[ok], np.asarray(tracks)[ok], np.asarray(showers)[ok])
    out[g == FS_COSMIC] = FS_COSMIC
    return out


def _seeds(seed: int, *key: int) -> tuple[int, int]:
    state = np.random.SeedSequence(seed, spawn_key=key).generate_state(2, dtype=np.uint32)
    return int(state[0]), int(state[1])


def _concat(batches: list[GeneratedBatch]) -> GeneratedBatch:
    offset = 0
    parts = []
    for b in batches:
        p = b.particles.copy()
        p["event"] += offset
        parts.append(p)
        offset += b.n_events
    keys = batches[0].truth.keys()
    truth = {k: np.concatenate([np.asarray(b.truth[k]) for b in batches]) for k in keys}
    return GeneratedBatch(n_events=offset, particles=np.concatenate(parts), truth=truth)


def _meta(batch: GeneratedBatch, det: DetectorResult, params: DetectorParams, run: int,
          subrun: int) -> dict[str, npt.NDArray[np.generic]]:
    n = batch.n_events
    truth = batch.truth
    group = np.asarray(truth[FS_GROUP_KEY], dtype=np.int64)
    t, s = det.counts(n, min_visible_mev=params.min_visible_mev)
    tp, sp = det.counts(n, min_visible_mev=params.min_visible_mev, prong_min_cells=params.prong_min_cells)
    meta: dict[str, npt.NDArray[np.generic]] = {k: np.asarray(v) for k, v in truth.items() if k in META_DTYPES}
    meta["finalstate"] = finalstate_codes(group, t, s)
    meta["finalstateprong"] = finalstate_codes(group, tp, sp)
    counts = [np.asarray(truth.get(k, np.zeros(n)), dtype=np.int64)
              for k in ("nproton", "npion", "npizero", "nneutron")]
    meta["particles"] = pack_particles(*counts)
    meta["firstplane"] = det.firstplane
    meta["firstcellx"] = det.firstcellx
    meta["firstcelly"] = det.firstcelly
    meta["run"] = np.full(n, run, dtype=np.uint32)
    meta["subrun"] = np.full(n, subrun, dtype=np.uint32)
    meta["evt"] = np.arange(n, dtype=np.uint32)
    meta["cycle"] = np.zeros(n, dtype=np.int32)
    meta["subevt"] = np.ones(n, dtype=np.uint16)
    return meta


def simulate_events(
    n_events: int,
    *,
    seed: int,
    file_index: int = 1,
    generator_params: GeneratorParams | None = None,
    detector_params: DetectorParams | None = None,
    progress: tqdm | None = None,
) -> SimulatedEvents:
    """Simulate ``n_events`` events of file ``file_index`` of a run seeded by ``seed``.

    Chunks of :data:`CHUNK_EVENTS` events are generated and passed through the detector, each
    with random streams derived from ``(seed, file_index, chunk)``: the generator's numpy stream
    per chunk (it draws vectorised over the chunk's events; event by event it runs 33x slower,
    2.0 ms against 61 µs per event), Pythia's per string, the detector's per event
    (:func:`nucvn.sim.detector.event_seed`). Should a platform ever compute one event differently,
    the difference stays inside its chunk, and the transcendental functions are computed the same
    way on every CPU (:mod:`nucvn.sim.portable_math`), so none is expected.
    """
    gparams = generator_params or GeneratorParams()
    dparams = detector_params or DetectorParams()
    detector = Detector(dparams)
    generator = Generator(gparams, _seeds(seed, file_index, 0)[0])
    batches: list[GeneratedBatch] = []
    images: list[npt.NDArray[np.uint8]] = []
    metas: list[dict[str, npt.NDArray[np.generic]]] = []
    run = seed % (1 << 32)
    done = 0
    chunk = 0
    while done < n_events:
        m = min(CHUNK_EVENTS, n_events - done)
        gen_seed, det_seed = _seeds(seed, file_index, chunk)
        generator.reseed(gen_seed)
        batch = generator.generate(m)
        res = detector.simulate(batch, det_seed)
        meta = _meta(batch, res, dparams, run, file_index)
        meta["evt"] = meta["evt"] + np.uint32(done)
        batches.append(batch)
        images.append(res.images)
        metas.append(meta)
        done += m
        chunk += 1
        if progress is not None:
            progress.update(m)
    full = _concat(batches)
    meta_all = {k: np.concatenate([mm[k] for mm in metas]) for k in metas[0]}
    return SimulatedEvents(images=np.concatenate(images), meta=meta_all, truth=full.truth, particles=full.particles)


_Task = tuple[Path, int, int, int, dict[str, float], DetectorParams]


def _write_one(task: _Task, progress: tqdm | None = None) -> tuple[Path, int]:
    """Simulate and write one file (runs in a worker; the composition travels as a plain dict)."""
    path, index, n_events, seed, composition, dparams = task
    gparams = GeneratorParams(composition=composition)
    sim = simulate_events(n_events, seed=seed, file_index=index, generator_params=gparams, detector_params=dparams,
                          progress=progress)
    attrs = {"generator": GENERATOR_NAME, "seed": int(seed), "plane_stride": int(dparams.plane_stride)}
    write_events(path, sim.images, sim.meta, attrs=attrs)
    return path, n_events


def _check_count(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise NucvnError(f"simulate: {name} must be an integer >= {minimum}, got {value!r}")


def simulate_files(
    out_dir: Path,
    *,
    files: int,
    events: int,
    seed: int,
    workers: int = 1,
    composition: Mapping[str, float] | None = None,
    first_index: int = 1,
    progress: bool = True,
    detector_params: DetectorParams | None = None,
) -> list[Path]:
    """Write ``files`` files of ``events`` events to ``out_dir/neutrino{i}.h5`` (i from
    ``first_index``), using ``workers`` processes; returns the paths in index order.

    ``composition`` maps event classes (``numu_cc``, ``nue_cc``, ``nutau_cc``, ``nc``,
    ``nue_elastic``, ``cosmic``) to fractions summing to 1 (default: the real sample's).
    ``detector_params`` overrides the detector defaults (e.g. ``plane_stride``, recorded in the
    files, or a response variation, which keeps the events and their transport). Files are written
    atomically; the same arguments give byte-identical images and metadata for any ``workers``.
    Bad counts or compositions raise :class:`NucvnError`.
    """
    _check_count("files", files, 1)
    _check_count("events", events, 1)
    _check_count("seed", seed, 0)
    _check_count("workers", workers, 1)
    _check_count("first_index", first_index, 1)
    comp = dict(GeneratorParams().composition) if composition is None else validate_composition(composition)
    dparams = detector_params or DetectorParams()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NucvnError(f"simulate: output {out} exists and is not a directory; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    tasks: list[_Task] = [(out / f"neutrino{i}.h5", i, events, int(seed), comp, dparams)
                          for i in range(first_index, first_index + files)]
    bar = progress_bar(total=files * events, unit="ev", desc="simulate", disable=not progress, unit_scale=False)
    paths: list[Path] = []
    try:
        if workers == 1 or files == 1:
            paths.extend(_write_one(task, bar)[0] for task in tasks)
        else:
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(processes=min(workers, files)) as pool:
                for path, n in pool.imap(_write_one, tasks):
                    paths.append(path)
                    bar.update(n)
    finally:
        bar.close()
    return paths
