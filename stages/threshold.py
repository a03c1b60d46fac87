"""DVC stage ``threshold``: choose the working point on the validation split.

Scores the ``val`` split with ``data/model``, scans thresholds and picks one by
``threshold.criterion`` (``balanced_accuracy``, ``fom``, ``efficiency`` or ``purity``, the last two
reaching ``threshold.target``) via :func:`nucvn.metrics.choose_threshold`. Writes
``metrics/threshold.json`` and ``plots/threshold_scan.csv`` (+ ``.png``). The test split is never
read here. Paths can be overridden on the command line (tests run the stage on tiny data).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from nucvn.errors import NucvnError
from nucvn.atomic import write_csv, write_json
from nucvn.evaluation import data_source
from nucvn.inference import load_model, predict_scores
from nucvn.metrics import choose_threshold
from nucvn.plots import save_figure, threshold_scan_figure
from nucvn.shards import ShardDataset

SCAN_COLUMNS = ["threshold", "efficiency", "purity", "balanced_accuracy", "fom", "background_rejection"]


def _args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.add_argument("--shards", type=Path, default=Path("data/shards"))
    p.add_argument("--model-dir", type=Path, default=Path("data/model"))
    p.add_argument("--raw", type=Path, default=Path("data/raw"))
    p.add_argument("--metrics", type=Path, default=Path("metrics/threshold.json"))
    p.add_argument("--scan", type=Path, default=Path("plots/threshold_scan.csv"))
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = _args(argv)
    params: dict[str, Any] = (yaml.safe_load(args.params.read_text()) or {}).get("threshold") or {}
    try:
        criterion, target = str(params["criterion"]), params.get("target")
        n_points, batch_size, device = int(params["points"]), int(params["batch_size"]), params["device"]
    except KeyError as exc:
        raise NucvnError(f"{args.params}: threshold.{exc.args[0]} is missing") from exc
    if n_points < 2:
        raise NucvnError(f"{args.params}: threshold.points must be >= 2, got {n_points}")
    val = ShardDataset(args.shards, "val")
    if len(val) == 0:
        raise NucvnError(f"{args.shards}: the val split is empty; give preprocess.split.val a positive fraction")
    model, config = load_model(args.model_dir)
    scores = predict_scores(model, config, val, batch_size=batch_size, device=device, progress=not args.no_progress)
    labels = val.labels("numu_cc").astype(bool)
    choice, scan = choose_threshold(
        labels, scores, criterion=criterion, target=None if target is None else float(target),  # type: ignore[arg-type]
        thresholds=np.linspace(0.0, 1.0, n_points),
    )
    source = data_source(args.raw)
    result = choice.to_dict() | {
        "split": "val",
        "n_val": int(len(val)),
        "n_signal": int(labels.sum()),
        "data_source": source,
        "model": str(config["model"]),
    }
    write_json(result, args.metrics)
    write_csv(scan[SCAN_COLUMNS], args.scan)
    footer = f"data: {source} | model: {config['model']} | validation split, {len(val)} events"
    fig = threshold_scan_figure(scan, chosen=choice.threshold, criterion=criterion, footer=footer)
    save_figure(fig, args.scan.with_suffix(".png"))
    print(f"threshold: {choice.threshold:.4f} by {criterion} on val: efficiency {choice.efficiency:.4f}, "
          f"purity {choice.purity:.4f}, balanced accuracy {choice.balanced_accuracy:.4f}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except NucvnError as exc:
        print(f"stage threshold: error: {exc}", file=sys.stderr)
        sys.exit(2)
