"""Simulate and score a nominal sample and its detector variations: the measurement of the ``systematics`` stage.

Every sample is simulated with the same seed (:func:`nucvn.sim.simulate.simulate_files`), so it holds
the same generator events and particle transport; only the readout differs (``DetectorParams``
scaled by each variation's factors). Each is scored by the model through
:func:`nucvn.study.score_events`, preselected and cut at the threshold, and only what the shifts
need is kept (the selection, the event keys and labels, the preselection counts); the files are
removed as soon as they are scored. :mod:`nucvn.report.systematics` turns the selections into the
shifts and their paired errors.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nucvn.core.errors import NucvnError
from nucvn.core.events import Flavour
from nucvn.data.h5io import open_events
from nucvn.report import systematics as S
from nucvn.report.preselection import CUTS, Preselection, has_vertex
from nucvn.sim.detector_params import SCALABLE_FIELDS, DetectorParams
from nucvn.sim.simulate import simulate_files
from nucvn.study import file_source, score_events
from nucvn.train.distributed import DeviceName

__all__ = ["SampleSpec", "SystematicsResult", "detector_variations", "measure_systematics"]

TASK = "numu_cc"
BOOTSTRAP_RESAMPLES = 400
BOOTSTRAP_SEED = 0


def detector_variations(base: DetectorParams, variations: Mapping[str, Mapping[str, float]], *,
                        where: str = "systematics.variations") -> dict[str, DetectorParams]:
    """The detector response of each variation (``base`` with each field times its factor); a bad
    name, field or factor is one :class:`NucvnError` naming ``<where>.<name>.<field>``."""
    if not variations:
        raise NucvnError(f"{where}: give at least one variation")
    out: dict[str, DetectorParams] = {}
    for name, factors in variations.items():
        key = f"{where}.{name}"
        if name == "nominal":
            raise NucvnError(f"{key}: 'nominal' is the unvaried sample; give the variation another name")
        if not factors:
            raise NucvnError(f"{key}: give at least one field: factor (it would be the nominal sample)")
        for field, factor in factors.items():
            if field not in SCALABLE_FIELDS:
                if field in {f.name for f in dataclasses.fields(DetectorParams)}:
                    why = "is an integer field of DetectorParams and cannot be scaled"
                else:
                    close = difflib.get_close_matches(field, SCALABLE_FIELDS, n=1)
                    why = "is not a DetectorParams field" + (f" (did you mean {close[0]!r}?)" if close else "")
                raise NucvnError(f"{key}.{field}: {why}; "
                                 "e.g. gain_counts_per_pe, pe_per_mip_far, attenuation_length_cm")
            if not math.isfinite(factor) or factor <= 0:
                raise NucvnError(f"{key}.{field}: the factor must be a finite number > 0, got {factor!r}")
        try:
            out[name] = base.scaled(factors)
        except NucvnError as exc:
            raise NucvnError(f"{key}: {exc}") from exc
    return out


@dataclass(frozen=True)
class SampleSpec:
    """How each sample is simulated and scored."""

    files: int
    events_per_file: int
    seed: int
    workers: int
    composition: Mapping[str, float]
    batch_size: int = 256
    device: DeviceName = "auto"


@dataclass
class SystematicsResult:
    """``metrics`` (nominal block + one block per variation), ``info`` (counts, flips, method),
    ``table`` (one row per variation, percentage points) and the nominal values."""

    metrics: dict[str, Any]
    info: dict[str, Any]
    table: pd.DataFrame
    nominal: dict[str, float]
    results: dict[str, S.SystematicShift]


def _score_samples(responses: Mapping[str, DetectorParams], spec: SampleSpec, model: Any, config: Mapping[str, Any],
                   cuts: Preselection, threshold: float, work: Path, *, progress: bool
                   ) -> tuple[dict[str, np.ndarray], dict[str, pd.DataFrame], dict[str, Any]]:
    selected: dict[str, np.ndarray] = {}
    events: dict[str, pd.DataFrame] = {}
    preselection: dict[str, Any] = {}
    shutil.rmtree(work, ignore_errors=True)
    try:
        for name, response in responses.items():
            n = spec.events_per_file * spec.files
            print(f"systematics: simulating and scoring {name} ({n} events, seed {spec.seed})", flush=True)
            paths = simulate_files(work / name, files=spec.files, events=spec.events_per_file, seed=spec.seed,
                                   workers=spec.workers, composition=spec.composition, progress=progress,
                                   detector_params=response)
            scored = score_events(model, config, file_source(open_events(paths)), cuts=cuts, batch_size=spec.batch_size,
                                  device=spec.device, progress=progress)
            selected[name] = S.selected_events(scored.preselected, scored.predictions[TASK], threshold)
            preselection[name] = {"events": int(scored.preselected.sum()),
                                  "signal": int((scored.preselected & (scored.meta[TASK].to_numpy() == 1)).sum()),
                                  "failing_each_cut": {c: int((~scored.passes[c]).sum()) for c in CUTS}}
            events[name] = scored.meta[[k for k in (*S.EVENT_KEYS, TASK, "flavour") if k in scored.meta.columns]]
            shutil.rmtree(work / name, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return selected, events, preselection


def measure_systematics(base: DetectorParams, variations: Mapping[str, Mapping[str, float]],
                        responses: Mapping[str, DetectorParams], spec: SampleSpec, *, model: Any,
                        config: Mapping[str, Any], cuts: Preselection, threshold: float, work: Path,
                        progress: bool = True) -> SystematicsResult:
    """Simulate the nominal sample (``base``) and every variation's response (``responses``, from
    :func:`detector_variations` of ``variations``) under ``work`` (removed whatever happens), score
    them and measure the shift of efficiency, purity and NC mis-identification."""
    responses = {"nominal": base} | dict(responses)
    selected, events, preselection = _score_samples(responses, spec, model, config, cuts, threshold, work,
                                                    progress=progress)
    nominal = events["nominal"]
    is_signal = nominal[TASK].to_numpy().astype(bool)
    is_nc = nominal["flavour"].to_numpy() == int(Flavour.NC)
    results = {name: S.systematic_shifts(selected["nominal"], selected[name], is_signal, is_nc,
                                         nominal_events=nominal, varied_events=events[name], name=name,
                                         n_boot=BOOTSTRAP_RESAMPLES, seed=BOOTSTRAP_SEED)
               for name in responses if name != "nominal"}
    counts = S.selection_counts(selected["nominal"], is_signal, is_nc)
    nominal_metrics = S.nominal_block(counts)
    info = {"events": spec.events_per_file * spec.files, "files": spec.files, "seed": spec.seed, "threshold": threshold,
            "task": TASK, "model": str(config["model"]), "composition": dict(spec.composition),
            "cuts": cuts.describe(has_vertex(nominal)),
            "nominal": {"counts": counts.to_dict(), "preselected": preselection["nominal"]},
            "variations": {name: {"factors": dict(variations[name]), "label": S.variation_label(name, variations[name]),
                                  "counts": r.varied.to_dict(), "preselected": preselection[name],
                                  "flipped": {k: {"selected_only_varied": b, "selected_only_nominal": c}
                                              for k, (b, c) in r.flips.items()}}
                           for name, r in results.items()},
            "method": {"selected": "preselected and score >= threshold", "rate_shift_error": "paired proportions, "
                       "var = (b + c - (b - c)^2 / n) / n^2", "purity_shift_error":
                       f"paired bootstrap over events, {BOOTSTRAP_RESAMPLES} resamples, seed {BOOTSTRAP_SEED}",
                       "nominal_interval": "Clopper-Pearson 68.27 %"}}
    metrics = {"nominal": nominal_metrics} | {name: r.metrics() for name, r in results.items()}
    return SystematicsResult(metrics=metrics, info=info, table=S.shifts_table(results, variations),
                             nominal=nominal_metrics, results=results)
