"""DVC stage ``threshold``: choose the working point on the validation split.

Scores the ``val`` split with ``data/model``, scans ``threshold.points`` thresholds and picks one by
``threshold.criterion`` (:func:`nucvn.report.stats.choose_threshold`). Writes the figures at the chosen
point to ``metrics/threshold.json``, the bookkeeping (criterion, counts, data source, model) to
``info/threshold.json`` and the scan to ``plots/threshold_scan.csv`` (+ ``.png``). The test split
is never read here. Paths can be overridden on the command line (tests run the stage on tiny data).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from _stage import read_params, run_stage
from nucvn.core.atomic import write_csv, write_json
from nucvn.core.errors import NucvnError
from nucvn.report.evaluation import data_source
from nucvn.inference import load_model, predict_scores
from nucvn.report.stats import choose_threshold
from nucvn.report.plots import save_figure, threshold_scan_figure
from nucvn.data.shards import ShardDataset
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
    p.add_argument("--scan", type=Path, default=Path("plots/threshold_scan.csv"))
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = _args(argv)
    p = read_params(ThresholdParams, "threshold", args.params)
    val = ShardDataset(args.shards, "val")
    if len(val) == 0:
        raise NucvnError(f"{args.shards}: the val split is empty; give preprocess.split.val a positive fraction")
    model, config = load_model(args.model_dir)
    scores = predict_scores(model, config, val, batch_size=p.batch_size, device=p.device, progress=not args.no_progress)
    labels = val.labels("numu_cc").astype(bool)
    choice, scan = choose_threshold(labels, scores, criterion=p.criterion, target=p.target,
                                    thresholds=np.linspace(0.0, 1.0, p.points))
    source = data_source(args.raw)
    chosen = choice.to_dict()
    write_json({k: chosen[k] for k in QUALITY}, args.metrics)
    write_json({"criterion": choice.criterion, "target": choice.target, "split": "val", "n_val": int(len(val)),
                "n_signal": int(labels.sum()), "data_source": source, "model": str(config["model"])}, args.info)
    write_csv(scan[SCAN_COLUMNS], args.scan)
    footer = f"data: {source} | model: {config['model']} | validation split, {len(val)} events"
    fig = threshold_scan_figure(scan, chosen=choice.threshold, criterion=p.criterion, footer=footer)
    save_figure(fig, args.scan.with_suffix(".png"))
    print(f"threshold: {choice.threshold:.4f} by {p.criterion} on val: efficiency {choice.efficiency:.4f}, "
          f"purity {choice.purity:.4f}, balanced accuracy {choice.balanced_accuracy:.4f}")
    return 0


if __name__ == "__main__":
    run_stage("threshold", main)
