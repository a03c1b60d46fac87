"""DVC stage ``systematics``: how the νμ CC selection moves when the simulated detector response is shifted.

Simulates a nominal sample (the pipeline's composition ``fetch.sim.composition`` and detector
response ``fetch.sim.detector``) and one sample per variation of ``params.yaml: systematics.variations``
(factors on the readout fields of :class:`nucvn.sim.detector_params.DetectorParams`), all with the
same seed, so every sample holds the same events and particle transport. Each is scored by
``data/model`` through :func:`nucvn.study.score_events`, preselected with ``evaluate.preselection``
and cut at the threshold chosen on val (``metrics/threshold.json``); :mod:`nucvn.report.systematics`
measures the shift of efficiency, purity and NC mis-identification with its paired statistical
error. Writes

- ``metrics/systematics.json``: the ``nominal`` block (values with Clopper-Pearson bounds) and one
  block per variation (varied values, ``*_shift``, ``*_shift_err``, ``*_shift_nsigma``);
- ``info/systematics.json``: events, seed, factors, threshold, cuts, counts and flipped events;
- ``plots/systematics/shifts.csv`` (one row per variation, percentage points) and ``shifts.png``.

The samples are written under ``data/systematics.tmp/`` (``--work``), removed as soon as scored, at
the end and at the start of a rerun. Params are checked, and every variation's fields and factors,
before anything is simulated.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import math
import shutil
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _stage import read_params, run_stage

from nucvn.core.atomic import atomic_dir, write_csv, write_json
from nucvn.core.errors import NucvnError
from nucvn.core.events import Flavour
from nucvn.data.h5io import open_events
from nucvn.inference import load_model, model_tasks
from nucvn.report import plots as P
from nucvn.report import systematics as S
from nucvn.report.preselection import CUTS, Preselection, has_vertex
from nucvn.sim.detector_params import SCALABLE_FIELDS, DetectorParams
from nucvn.sim.simulate import simulate_files
from nucvn.stage_params import EvaluateParams, FetchParams, SystematicsParams
from nucvn.study import file_source, score_events

BOOTSTRAP_RESAMPLES = 400
BOOTSTRAP_SEED = 0
TASK = "numu_cc"


def _args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.add_argument("--model-dir", type=Path, default=Path("data/model"))
    p.add_argument("--threshold", type=Path, default=Path("metrics/threshold.json"))
    p.add_argument("--metrics", type=Path, default=Path("metrics/systematics.json"))
    p.add_argument("--info", type=Path, default=Path("info/systematics.json"))
    p.add_argument("--plots", type=Path, default=Path("plots/systematics"))
    p.add_argument("--work", type=Path, default=Path("data/systematics.tmp"), help="temporary samples (removed)")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def _threshold(path: Path) -> float:
    """The νμ CC threshold chosen on val by the threshold stage."""
    try:
        return float(json.loads(path.read_text())[TASK]["threshold"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NucvnError(f"{path}: no {TASK} threshold ({exc}); run the threshold stage (dvc repro threshold)") from exc


def _variations(p: SystematicsParams, base: DetectorParams, params_path: Path) -> dict[str, DetectorParams]:
    """The detector response of each variation; a bad field or factor is one error naming its key."""
    if not p.variations:
        raise NucvnError(f"{params_path}: systematics.variations: give at least one variation")
    out: dict[str, DetectorParams] = {}
    for name, factors in p.variations.items():
        key = f"{params_path}: systematics.variations.{name}"
        if name == "nominal":
            raise NucvnError(f"{key}: 'nominal' is the unvaried sample; give the variation another name")
        if not factors:
            raise NucvnError(f"{key}: give at least one field: factor (it would be the nominal sample)")
        for field, factor in factors.items():
            if field not in SCALABLE_FIELDS:
                known = {f.name for f in dataclasses.fields(DetectorParams)}
                if field in known:
                    why = "is an integer field of DetectorParams and cannot be scaled"
                else:
                    close = difflib.get_close_matches(field, SCALABLE_FIELDS, n=1)
                    why = "is not a DetectorParams field" + (f" (did you mean {close[0]!r}?)" if close else "")
                raise NucvnError(f"{key}.{field}: {why}; e.g. gain_counts_per_pe, pe_per_mip_far, attenuation_length_cm")
            if not math.isfinite(factor) or factor <= 0:
                raise NucvnError(f"{key}.{field}: the factor must be a finite number > 0, got {factor!r}")
        try:
            out[name] = base.scaled(factors)
        except NucvnError as exc:
            raise NucvnError(f"{key}: {exc}") from exc
    return out


def _score_samples(responses: Mapping[str, DetectorParams], p: SystematicsParams, per_file: int,
                   composition: Mapping[str, float], model: Any, config: Mapping[str, Any], cuts: Preselection,
                   threshold: float, work: Path, *, progress: bool) -> tuple[dict[str, np.ndarray],
                                                                            dict[str, pd.DataFrame], dict[str, Any]]:
    """Simulate each sample under ``work`` (same seed), score it and keep only its selection, its
    event keys and labels, and its preselection counts; ``work`` is removed whatever happens."""
    selected: dict[str, np.ndarray] = {}
    events: dict[str, pd.DataFrame] = {}
    preselection: dict[str, Any] = {}
    shutil.rmtree(work, ignore_errors=True)
    try:
        for name, response in responses.items():
            print(f"systematics: simulating and scoring {name} ({per_file * p.files} events, seed {p.seed})", flush=True)
            paths = simulate_files(work / name, files=p.files, events=per_file, seed=p.seed, workers=p.workers,
                                   composition=composition, progress=progress, detector_params=response)
            scored = score_events(model, config, file_source(open_events(paths)), cuts=cuts, batch_size=p.batch_size,
                                  device=p.device, progress=progress)
            selected[name] = S.selected_events(scored.preselected, scored.predictions[TASK], threshold)
            preselection[name] = {"events": int(scored.preselected.sum()),
                                  "signal": int((scored.preselected & (scored.meta[TASK].to_numpy() == 1)).sum()),
                                  "failing_each_cut": {c: int((~scored.passes[c]).sum()) for c in CUTS}}
            events[name] = scored.meta[[k for k in (*S.EVENT_KEYS, TASK, "flavour") if k in scored.meta.columns]]
            shutil.rmtree(work / name, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return selected, events, preselection


def main(argv: list[str]) -> int:
    args = _args(argv)
    p = read_params(SystematicsParams, "systematics", args.params)
    ev = read_params(EvaluateParams, "evaluate", args.params)
    fetch = read_params(FetchParams, "fetch", args.params)
    base = DetectorParams(**dataclasses.asdict(fetch.sim.detector))
    responses = {"nominal": base} | _variations(p, base, args.params)
    cuts = Preselection(**asdict(ev.preselection))
    threshold = _threshold(args.threshold)
    model, config = load_model(args.model_dir)
    if TASK not in [t.name for t in model_tasks(config)]:
        raise NucvnError(f"{args.model_dir}: the model has no {TASK} head; train it with that task")
    per_file = -(-p.events // p.files)
    selected, events, preselection = _score_samples(responses, p, per_file, fetch.sim.composition, model, config, cuts,
                                                    threshold, args.work, progress=not args.no_progress)
    nominal = events["nominal"]
    is_signal = nominal[TASK].to_numpy().astype(bool)
    is_nc = nominal["flavour"].to_numpy() == int(Flavour.NC)
    results = {name: S.systematic_shifts(selected["nominal"], selected[name], is_signal, is_nc,
                                         nominal_events=nominal, varied_events=events[name], name=name,
                                         n_boot=BOOTSTRAP_RESAMPLES, seed=BOOTSTRAP_SEED)
               for name in responses if name != "nominal"}
    counts = S.selection_counts(selected["nominal"], is_signal, is_nc)
    nominal_metrics = S.nominal_block(counts)
    metrics = {"nominal": nominal_metrics} | {name: r.metrics() for name, r in results.items()}
    n_events = per_file * p.files
    info = {"events": n_events, "files": p.files, "seed": p.seed, "threshold": threshold, "task": TASK,
            "model": str(config["model"]), "composition": fetch.sim.composition,
            "nominal_detector": dataclasses.asdict(fetch.sim.detector), "cuts": cuts.describe(has_vertex(nominal)),
            "nominal": {"counts": counts.to_dict(), "preselected": preselection["nominal"]},
            "variations": {name: {"factors": p.variations[name], "label": S.variation_label(name, p.variations[name]),
                                  "counts": r.varied.to_dict(), "preselected": preselection[name],
                                  "flipped": {k: {"selected_only_varied": b, "selected_only_nominal": c}
                                              for k, (b, c) in r.flips.items()}}
                           for name, r in results.items()},
            "method": {"selected": "preselected and score >= threshold", "rate_shift_error": "paired proportions, "
                       "var = (b + c - (b - c)^2 / n) / n^2", "purity_shift_error":
                       f"paired bootstrap over events, {BOOTSTRAP_RESAMPLES} resamples, seed {BOOTSTRAP_SEED}",
                       "nominal_interval": "Clopper-Pearson 68.27 %"}}
    table = S.shifts_table(results, p.variations)
    footer = (f"simulation | {n_events} events per sample, seed {p.seed}, same events in every sample | "
              f"model: {config['model']} | threshold {threshold:.3f}")

    def fill(out: Path) -> None:
        write_csv(table, out / "shifts.csv")
        P.save_figure(S.shifts_figure(table, nominal_metrics, footer=footer), out / "shifts.png")

    atomic_dir(args.plots, fill)
    write_json(info, args.info)
    write_json(metrics, args.metrics)
    print("systematics nominal: " + ", ".join(f"{q} {nominal_metrics[q]:.4f}" for q in S.QUANTITIES))
    for name, r in results.items():
        print(f"systematics {name}: {S.shift_summary(r)}")
    return 0


if __name__ == "__main__":
    run_stage("systematics", main)
