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
import json
from pathlib import Path

from _stage import read_params, run_stage
from nucvn.core.atomic import atomic_dir, write_csv, write_json
from nucvn.core.errors import NucvnError
from nucvn.inference import load_model, model_tasks
from nucvn.report import plots as P
from nucvn.report import systematics as S
from nucvn.report.preselection import Preselection
from nucvn.sim.detector_params import DetectorParams
from nucvn.stage_params import EvaluateParams, FetchParams, SystematicsParams
from nucvn.variations import TASK, SampleSpec, detector_variations, measure_systematics


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


def main(argv: list[str]) -> int:
    args = _args(argv)
    p = read_params(SystematicsParams, "systematics", args.params)
    fetch = read_params(FetchParams, "fetch", args.params)
    cuts = Preselection(**dataclasses.asdict(read_params(EvaluateParams, "evaluate", args.params).preselection))
    base = DetectorParams(**dataclasses.asdict(fetch.sim.detector))
    responses = detector_variations(base, p.variations,
                                    where=f"{args.params}: systematics.variations")  # before any work
    threshold = _threshold(args.threshold)
    model, config = load_model(args.model_dir)
    if TASK not in [t.name for t in model_tasks(config)]:
        raise NucvnError(f"{args.model_dir}: the model has no {TASK} head; train it with that task")
    spec = SampleSpec(files=p.files, events_per_file=-(-p.events // p.files), seed=p.seed, workers=p.workers,
                      composition=fetch.sim.composition, batch_size=p.batch_size, device=p.device)
    result = measure_systematics(base, p.variations, responses, spec, model=model, config=config, cuts=cuts,
                                 threshold=threshold,
                                 work=args.work, progress=not args.no_progress)
    result.info["nominal_detector"] = dataclasses.asdict(fetch.sim.detector)
    footer = (f"simulation | {result.info['events']} events per sample, seed {p.seed}, same events in every sample | "
              f"model: {config['model']} | threshold {threshold:.3f}")

    def fill(out: Path) -> None:
        write_csv(result.table, out / "shifts.csv")
        P.save_figure(S.shifts_figure(result.table, result.nominal, footer=footer), out / "shifts.png")

    atomic_dir(args.plots, fill)
    write_json(result.info, args.info)
    write_json(result.metrics, args.metrics)
    print("systematics nominal: " + ", ".join(f"{q} {result.nominal[q]:.4f}" for q in S.QUANTITIES))
    for name, r in result.results.items():
        print(f"systematics {name}: {S.shift_summary(r)}")
    return 0


if __name__ == "__main__":
    run_stage("systematics", main)
