"""``nucvn evaluate --model data/model --files 'path/*.h5' --out DIR``: the evaluate stage on any files.

A physicist with a trained model and another set of event files (the real files, a sample simulated
with another seed or another detector response) gets the same numbers, tables and figures as the
pipeline's ``evaluate`` stage gives on its test split: the same code (:mod:`nucvn.study`) runs on
events read straight from the files. Written under ``DIR``, each atomically:

- ``metrics.json`` (every task, with errors; binary tasks also on the preselected events; the
  preselection's efficiency), ``info.json`` (counts, threshold, cuts, files and model);
- ``predictions.csv``: identity, every task's prediction, hits, preselection flag, visible energy and
  the truth the files carry;
- ``plots/<task>/*.csv`` and ``plots/<task>/png/*.png`` (and ``preselected/``, ``preselection/``).

The threshold of each binary task comes from ``--threshold`` (a number, or a JSON file such as the
threshold stage's ``metrics/threshold.json``, the default). Options and cuts come from the
``evaluate`` section of ``--params`` and binnings from ``--bins`` (defaults: ``params.yaml`` and
``bins.yaml`` of the current directory when they exist, else the built-in defaults). The
calorimetric baseline of the energy task needs the train split and is left out here.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from nucvn.core.atomic import atomic_dir, write_csv, write_json
from nucvn.core.errors import NucvnError
from nucvn.core.params import parse_params, parse_value
from nucvn.data.h5io import open_events
from nucvn.stage_params import DEFAULT_BINS, EvaluateParams

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, type=Path,
                        help="trained model directory (model.json + model.safetensors)")
    parser.add_argument("--files", required=True, nargs="+",
                        help="event files, directories or glob patterns (quote globs)")
    parser.add_argument("--out", required=True, type=Path,
                        help="output directory (metrics.json, info.json, predictions.csv, plots/)")
    parser.add_argument("--threshold", default="metrics/threshold.json",
                        help="a number, or a JSON file with a threshold per binary task (default: "
                             "metrics/threshold.json)")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"),
                        help="params file whose 'evaluate' section is used (default: params.yaml if it exists)")
    parser.add_argument("--bins", type=Path, default=Path("bins.yaml"),
                        help="binnings (default: bins.yaml if it exists)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="events per forward pass (default: evaluate.batch_size)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None, help="default: evaluate.device")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise NucvnError(f"{path}: not readable as YAML ({exc}); fix it or point --params/--bins elsewhere") from exc


def _settings(args: argparse.Namespace) -> tuple[EvaluateParams, dict[str, list[float]]]:
    section = _yaml(args.params).get("evaluate") if args.params.is_file() else None
    try:
        params = parse_params(EvaluateParams, section, "evaluate")
    except NucvnError as exc:
        raise NucvnError(f"{args.params}: {exc}") from exc
    bins = (parse_value(dict(_yaml(args.bins)), dict[str, list[float]], args.bins.name) if args.bins.is_file()
            else dict(DEFAULT_BINS))
    if "nuenergy" not in bins:
        raise NucvnError(f"{args.bins}: needs a nuenergy binning (every task is reported versus true neutrino energy)")
    return params, bins


def run(args: argparse.Namespace) -> int:
    params, bins = _settings(args)
    batch_size = params.batch_size if args.batch_size is None else args.batch_size
    if batch_size <= 0:
        raise NucvnError(f"--batch-size must be positive, got {batch_size}")
    reader = open_events(args.files)
    from nucvn.cli.predict import (
        read_thresholds,  # torch loads only once the files are valid
    )
    from nucvn.inference import load_model, model_tasks
    from nucvn.report import evaluation as E
    from nucvn.report.preselection import Preselection
    from nucvn.study import file_source, run_study, score_events

    model, config = load_model(args.model)
    binary = [t.name for t in model_tasks(config) if t.kind == "binary"]
    thresholds = read_thresholds(args.threshold, binary) if binary else {}
    source = file_source(reader)
    E.check_variables(source.meta.columns, bins, params.misid_variables)
    cuts = Preselection(**asdict(params.preselection))
    scored = score_events(model, config, source, cuts=cuts, batch_size=batch_size, device=args.device or params.device,
                          progress=not args.no_progress)
    simulated = all(fi.simulated for fi in reader.files)
    footer = f"{'simulation | ' if simulated else ''}model: {config['model']} | {source.description}"
    result = run_study(config, scored, thresholds=thresholds, bins=bins, misid_variables=params.misid_variables,
                       cuts=cuts, images=source.images, score_bins=params.score_bins, roc_points=params.roc_points,
                       gallery_events=params.gallery_events, cl=params.confidence_level, footer=footer)
    out = args.out
    if out.exists() and not out.is_dir():
        raise NucvnError(f"--out {out}: exists and is not a directory; choose another")
    write_csv(result.predictions, out / "predictions.csv")
    atomic_dir(out / "plots", result.write_plots)
    info = result.info | {"files": [str(fi.path) for fi in reader.files], "n_events": reader.n_events,
                          "model": str(config["model"]), "model_dir": str(args.model), "thresholds": thresholds,
                          "simulated": simulated}
    write_json(info, out / "info.json")
    write_json(result.metrics, out / "metrics.json")
    for t in binary:
        m = {k: ("n/a" if v is None else f"{v:.4f}") for k, v in result.metrics[t].items() if not isinstance(v, dict)}
        print(f"evaluate {t}: AUC {m['auc']} ± {m['auc_err']}, balanced accuracy {m['balanced_accuracy']} ± "
              f"{m['balanced_accuracy_err']}, efficiency {m['efficiency']}, purity {m['purity']}")
    print(f"evaluate: {reader.n_events} events from {len(reader.files)} file(s), model {config['model']}; wrote {out}")
    return 0
