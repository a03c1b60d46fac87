"""DVC stage ``evaluate``: report every task of the model on the test split.

Scores the ``test`` split with ``data/model`` and, for each of the model's tasks
(:func:`nucvn.report.task_report.evaluate_task`; binary tasks at the threshold chosen on ``val``
in ``metrics/threshold.json``; nothing here chooses anything), writes

- ``metrics/test.json``: one block per task with its quality numbers and their errors (so
  ``dvc metrics diff`` shows every task); ``info/test.json``: the bookkeeping (counts, thresholds,
  data source, model);
- ``data/predictions/test.csv``: identity, every task's predictions, and all metadata of each event;
- ``plots/evaluate/<task>/*.csv``: the tables for ``dvc plots show`` (dvc.yaml ``plots:``), and
  ``plots/evaluate/<task>/png/*.png``: the same figures drawn with matplotlib.

Options come from ``params.yaml: evaluate``, binnings from ``bins.yaml``; both are checked (and
unknown variables refused) before anything is scored.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from _stage import read_params, read_yaml, run_stage
from nucvn.core.atomic import atomic_dir, write_csv, write_json
from nucvn.core.errors import NucvnError
from nucvn.core.params import parse_value
from nucvn.data.shards import ShardDataset
from nucvn.inference import load_model, model_tasks, predict, prediction_table
from nucvn.report import evaluation as E
from nucvn.report.baseline import pixel_charge
from nucvn.report.plots import save_figure
from nucvn.report.task_report import EvalContext, TaskReport, evaluate_task
from nucvn.stage_params import EvaluateParams


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


def _per_event(data: ShardDataset, fn: Any) -> np.ndarray:
    """``fn`` of the images, shard by shard in blocks (bounded memory)."""
    parts = [fn(np.asarray(shard[i : i + 4096])) for shard in data.images for i in range(0, len(shard), 4096)]
    return np.concatenate(parts) if parts else np.zeros(0)


def main(argv: list[str]) -> int:
    args = _args(argv)
    p = read_params(EvaluateParams, "evaluate", args.params)
    bins_path = args.bins or args.params.parent / "bins.yaml"
    bins = parse_value(dict(read_yaml(bins_path)), dict[str, list[float]], bins_path.name)
    if "nuenergy" not in bins:
        raise NucvnError(f"{bins_path}: needs a nuenergy binning (every task is reported versus true neutrino energy)")
    test = ShardDataset(args.shards, "test")
    if len(test) == 0:
        raise NucvnError(f"{args.shards}: the test split is empty; give preprocess.split.test a positive fraction")
    meta = test.metadata
    E.check_variables(meta.columns, bins, p.misid_variable)
    model, config = load_model(args.model_dir)
    tasks = model_tasks(config)
    thresholds = _thresholds(args.threshold) if any(t.kind == "binary" for t in tasks) else {}
    preds = predict(model, config, test, batch_size=p.batch_size, device=p.device, progress=not args.no_progress)
    train = ShardDataset(args.shards, "train")
    source = E.data_source(args.raw)
    ctx = EvalContext(
        meta=meta, bins=bins, thresholds=thresholds, misid_variable=p.misid_variable,
        nhits=_per_event(test, lambda b: E.count_hits([b])).astype(np.int64), charge=_per_event(test, pixel_charge),
        train_meta=train.metadata, train_charge=_per_event(train, pixel_charge),
        images=lambda pos: test.batch(pos)[0].numpy(), score_bins=p.score_bins, roc_points=p.roc_points,
        gallery_events=p.gallery_events, cl=p.confidence_level,
        footer=f"data: {source} | model: {config['model']} | test split, {len(test)} events")
    reports: dict[str, TaskReport] = {t.name: evaluate_task(t, preds[t.name], ctx) for t in tasks}

    pred = prediction_table(meta, preds, tasks)
    pred.insert(pred.columns.get_loc("file") + 2 if "file" in pred.columns else 0, "nhits", ctx.nhits)
    write_csv(pred, args.predictions)

    def fill(out: Path) -> None:
        for name, rep in reports.items():
            for table_name, table in rep.tables.items():
                write_csv(table, out / name / f"{table_name}.csv")
            for fig_name, fig in rep.figures():
                save_figure(fig, out / name / "png" / f"{fig_name}.png")

    atomic_dir(args.plots, fill)
    write_json({name: rep.info for name, rep in reports.items()} | {"data_source": source, "model": str(config["model"]),
                                                                    "n_test": len(test)}, args.info)
    write_json({name: rep.metrics for name, rep in reports.items()}, args.metrics)
    for name, rep in reports.items():
        shown = ", ".join(f"{k} {v:.4f}" for k, v in rep.metrics.items() if isinstance(v, float))
        print(f"evaluate {name}: {shown[:200]}")
    return 0


if __name__ == "__main__":
    run_stage("evaluate", main)
