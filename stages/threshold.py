"""DVC stage ``threshold``: choose the working point of every binary task on the validation split.

Scores the ``val`` split with ``data/model`` and, for each of the model's binary tasks, scans
``threshold.points`` thresholds and picks one by ``threshold.criterion``
(:func:`nucvn.report.stats.choose_threshold`). Writes, per task, the figures at the chosen point to
``metrics/threshold.json`` and the bookkeeping (criterion, counts, data source, model) to
``info/threshold.json``, and the scan to ``plots/threshold/<task>.csv`` (+ ``.png``). The test
split is never read here. Paths can be overridden on the command line (tests run the stage on
tiny data).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from _stage import read_params, run_stage
from nucvn.core.atomic import atomic_dir, write_csv, write_json
from nucvn.core.errors import NucvnError
from nucvn.data.shards import ShardDataset
from nucvn.inference import load_model, model_tasks, predict
from nucvn.report.evaluation import data_source
from nucvn.report.plots import provenance, save_figure, threshold_scan_figure
from nucvn.report.stats import choose_threshold
from nucvn.stage_params import ThresholdParams

SCAN_COLUMNS = ["threshold", "efficiency", "purity", "balanced_accuracy", "fom", "background_rejection"]
QUALITY = ["threshold", "efficiency", "purity", "balanced_accuracy", "fom", "background_rejection"]


def _args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.add_argument("--shards", type=Path, default=Path("data/shards"))
    p.add_argument("--model-dir", type=Path, default=Path("data/model"))
    p.add_argument("--raw", type=Path, default=Path("data/raw"))
    p.add_argument("--metrics", type=Path, default=Path("metrics/threshold.json"))
    p.add_argument("--info", type=Path, default=Path("info/threshold.json"))
    p.add_argument("--scans", type=Path, default=Path("plots/threshold"))
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = _args(argv)
    p = read_params(ThresholdParams, "threshold", args.params)
    val = ShardDataset(args.shards, "val")
    if len(val) == 0:
        raise NucvnError(f"{args.shards}: the val split is empty; give preprocess.split.val a positive fraction")
    model, config = load_model(args.model_dir)
    tasks = [t for t in model_tasks(config) if t.kind == "binary"]
    scores = predict(model, config, val, tasks=[t.name for t in tasks], batch_size=p.batch_size, device=p.device,
                     progress=not args.no_progress)
    source, meta = data_source(args.raw), val.metadata
    metrics, info, scans = {}, {}, {}
    chosen_at: dict[str, float] = {}
    for task in tasks:
        target, defined = task.targets(meta)
        labels = np.asarray(target)[defined].astype(bool)
        choice, scans[task.name] = choose_threshold(labels, np.asarray(scores[task.name])[defined],
                                                    criterion=p.criterion,
                                                    target=p.target, thresholds=np.linspace(0.0, 1.0, p.points))
        chosen = choice.to_dict()
        chosen_at[task.name] = choice.threshold
        metrics[task.name] = {k: chosen[k] for k in QUALITY}
        info[task.name] = {"criterion": choice.criterion, "target": choice.target, "split": "val",
                           "n_val": int(defined.sum()), "n_signal": int(labels.sum())}
        print(f"threshold {task.name}: {choice.threshold:.4f} by {p.criterion} on val: efficiency "
              f"{choice.efficiency:.4f}, "
              f"purity {choice.purity:.4f}, balanced accuracy {choice.balanced_accuracy:.4f}")
    footer = provenance(source, str(config["model"]), f"validation split, {len(val)} events")

    def fill(out: Path) -> None:
        for name, scan in scans.items():
            write_csv(scan[SCAN_COLUMNS], out / f"{name}.csv")
            fig = threshold_scan_figure(scan, chosen=chosen_at[name], criterion=p.criterion,
                                        footer=f"{footer} | task {name}")
            save_figure(fig, out / f"{name}.png")

    atomic_dir(args.scans, fill)
    write_json(info | {"data_source": source, "model": str(config["model"])}, args.info)
    write_json(metrics, args.metrics)
    return 0


if __name__ == "__main__":
    run_stage("threshold", main)
