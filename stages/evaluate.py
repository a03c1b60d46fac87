"""DVC stage ``evaluate``: report every task of the model on the test split.

Scores the ``test`` split with ``data/model`` through :mod:`nucvn.study` (the code ``nucvn evaluate``
runs on any files) and, for each of the model's tasks (binary tasks at the threshold chosen on
``val`` in ``metrics/threshold.json``; nothing here chooses anything), writes

- ``metrics/test.json``: one block per task with its quality numbers and their errors (so
  ``dvc metrics diff`` shows every task; binary tasks also on the preselected events, under
  ``preselected``) and the ``preselection`` block (the fraction of each true category it keeps);
  ``info/test.json``: the bookkeeping (counts, thresholds, cuts, data source, model);
- ``data/predictions/test.csv``: identity, every task's predictions, hits, last hit plane, the
  preselection flag, visible energy and all truth metadata of each event;
- ``plots/evaluate/<task>/*.csv`` (and ``<task>/preselected/``, ``preselection/``): the tables for
  ``dvc plots show`` (dvc.yaml ``plots:``), and ``png/`` beside each: the same figures drawn with
  matplotlib.

Options come from ``params.yaml: evaluate``, binnings from ``bins.yaml``; both are checked (and
unknown variables refused) before anything is scored.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from _stage import read_params, read_yaml, run_stage
from nucvn.core.atomic import atomic_dir, write_csv, write_json
from nucvn.core.errors import NucvnError
from nucvn.core.params import parse_value
from nucvn.data.shards import ShardDataset
from nucvn.inference import load_model, model_tasks
from nucvn.report import evaluation as E
from nucvn.report.baseline import pixel_charge
from nucvn.report.plots import provenance
from nucvn.report.preselection import Preselection
from nucvn.stage_params import EvaluateParams
from nucvn.study import run_study, score_events, shard_source


def _args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.add_argument("--bins", type=Path, default=None, help="default: bins.yaml beside --params")
    p.add_argument("--shards", type=Path, default=Path("data/shards"))
    p.add_argument("--model-dir", type=Path, default=Path("data/model"))
    p.add_argument("--raw", type=Path, default=Path("data/raw"))
    p.add_argument("--threshold", type=Path, default=Path("metrics/threshold.json"))
    p.add_argument("--metrics", type=Path, default=Path("metrics/test.json"))
    p.add_argument("--info", type=Path, default=Path("info/test.json"))
    p.add_argument("--predictions", type=Path, default=Path("data/predictions/test.csv"))
    p.add_argument("--plots", type=Path, default=Path("plots/evaluate"))
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def _thresholds(path: Path) -> dict[str, float]:
    """Threshold of each binary task, as chosen on val by the threshold stage."""
    try:
        data = json.loads(path.read_text())
        return {str(name): float(block["threshold"]) for name, block in data.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise NucvnError(f"{path}: not readable ({exc}); run the threshold stage (dvc repro threshold)") from exc


def main(argv: list[str]) -> int:
    args = _args(argv)
    p = read_params(EvaluateParams, "evaluate", args.params)
    bins_path = args.bins or args.params.parent / "bins.yaml"
    bins = parse_value(dict(read_yaml(bins_path)), dict[str, list[float]], bins_path.name)
    if "nuenergy" not in bins:
        raise NucvnError(f"{bins_path}: needs a nuenergy binning (every task is reported versus true neutrino energy)")
    cuts = Preselection(**asdict(p.preselection))
    test = ShardDataset(args.shards, "test")
    if len(test) == 0:
        raise NucvnError(f"{args.shards}: the test split is empty; give preprocess.split.test a positive fraction")
    E.check_variables(test.metadata.columns, bins, p.misid_variables)
    model, config = load_model(args.model_dir)
    thresholds = _thresholds(args.threshold) if any(t.kind == "binary" for t in model_tasks(config)) else {}
    source = shard_source(test)
    scored = score_events(model, config, source, cuts=cuts, batch_size=p.batch_size, device=p.device,
                          progress=not args.no_progress)
    train = ShardDataset(args.shards, "train")
    origin = E.data_source(args.raw)
    result = run_study(config, scored, thresholds=thresholds, bins=bins, misid_variables=p.misid_variables, cuts=cuts,
                       images=source.images, train_meta=train.metadata,
                       train_charge=np.concatenate([pixel_charge(b) for b in train.dense_blocks()] or [np.zeros(0)]),
                       score_bins=p.score_bins, roc_points=p.roc_points, gallery_events=p.gallery_events,
                       cl=p.confidence_level,
                       footer=provenance(origin, str(config["model"]), source.description))
    write_csv(result.predictions, args.predictions)
    atomic_dir(args.plots, result.write_plots)
    write_json(result.info | {"data_source": origin, "model": str(config["model"]), "n_test": len(test)}, args.info)
    write_json(result.metrics, args.metrics)
    for name, block in result.metrics.items():
        shown = ", ".join(f"{k} {v:.4f}" for k, v in block.items() if isinstance(v, float))
        print(f"evaluate {name}: {shown[:200]}")
    return 0


if __name__ == "__main__":
    run_stage("evaluate", main)
