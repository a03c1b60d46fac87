"""DVC stage ``evaluate``: report the classifier on the test split at the validation threshold.

Scores the ``test`` split with ``data/model``, takes the threshold from ``metrics/threshold.json``
(chosen on ``val``; nothing here chooses anything), and writes

- ``metrics/test.json``: the quality numbers (auc, accuracy, balanced accuracy, efficiency and
  purity with their intervals, background rejection, fom); ``info/test.json``: the bookkeeping
  (threshold and criterion, counts per category, data source, model);
- ``data/predictions/test.csv``: identity, score, label and all metadata of every test event;
- ``plots/evaluate/*.csv``: the curves for ``dvc plots show`` (dvc.yaml ``plots:``), and
  ``plots/evaluate/png/*.png``: the same figures drawn with matplotlib, plus a gallery of the most
  confidently wrong events.

Options come from ``params.yaml: evaluate``, binnings from ``bins.yaml``; both are checked (and
unknown variables refused) before anything is scored. All logic is in :mod:`nucvn.report.evaluation`,
:mod:`nucvn.report.plots` and :mod:`nucvn.report.gallery`.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from _stage import read_params, read_yaml, run_stage
from nucvn.report import evaluation as E
from nucvn.report import plots as P
from nucvn.core.atomic import write_csv, write_json
from nucvn.core.errors import NucvnError
from nucvn.report.gallery import gallery_figure
from nucvn.inference import load_model, predict_scores
from nucvn.core.params import parse_value
from nucvn.data.shards import ShardDataset
from nucvn.stage_params import EvaluateParams

QUALITY = ["auc", "accuracy", "balanced_accuracy", "efficiency", "efficiency_lo", "efficiency_hi", "purity",
           "purity_lo", "purity_hi", "background_rejection", "fom"]


def _args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.add_argument("--bins", type=Path, default=None, help="default: bins.yaml beside --params")
    p.add_argument("--shards", type=Path, default=Path("data/shards"))
    p.add_argument("--model-dir", type=Path, default=Path("data/model"))
    p.add_argument("--raw", type=Path, default=Path("data/raw"))
    p.add_argument("--threshold", type=Path, default=Path("metrics/threshold.json"))
    p.add_argument("--threshold-info", type=Path, default=Path("info/threshold.json"))
    p.add_argument("--metrics", type=Path, default=Path("metrics/test.json"))
    p.add_argument("--info", type=Path, default=Path("info/test.json"))
    p.add_argument("--predictions", type=Path, default=Path("data/predictions/test.csv"))
    p.add_argument("--plots", type=Path, default=Path("plots/evaluate"))
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def _read_json(path: Path, need: str) -> dict[str, Any]:
    try:
        info = json.loads(path.read_text())
        if need:
            float(info[need])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NucvnError(f"{path}: not readable ({exc}); run the threshold stage (dvc repro threshold)") from exc
    return dict(info)


def _write_plots(ev: E.Evaluation, test: ShardDataset, meta: Any, scores: np.ndarray, out: Path, *, threshold: float,
                 n_gallery: int, misid_variable: str, footer: str) -> None:
    """The CSV tables, their PNG figures and the gallery of the most confidently wrong events."""
    for name, table in ev.tables.items():
        write_csv(table, out / f"{name}.csv")
    met = ev.metrics
    working_point = (1.0 - float(met["background_rejection"] or 0.0), float(met["efficiency"] or 0.0))
    figs = P.evaluation_figures(ev.tables, auc=met["auc"], threshold=threshold, working_point=working_point, footer=footer,
                                misid_variable=misid_variable, misid_categories=E.MISID_CATEGORIES)
    for name, fig in figs:
        P.save_figure(fig, out / "png" / f"{name}.png")
    wrong = E.most_confidently_wrong(E.signal_labels(meta), scores, threshold=threshold, n=n_gallery)
    pos = np.array(wrong["position"], dtype=np.int64)
    cats, rows = E.categories(meta), meta.iloc[pos]
    captions = [f"{kind}: true {cats[p]}, E_nu {r.nuenergy:.2f} GeV, E_lep {r.lepenergy:.2f} GeV, score {s:.3f}"
                for kind, p, s, r in zip(wrong["kind"], pos, wrong["score"], rows.itertuples())]
    images = test.batch(pos)[0].numpy() if len(pos) else np.zeros((0, 2, 100, 80), np.uint8)
    fig = gallery_figure(images, captions, title="Most confidently wrong test events", footer=footer)
    P.save_figure(fig, out / "png" / "wrong_events.png")


def main(argv: list[str]) -> int:
    args = _args(argv)
    p = read_params(EvaluateParams, "evaluate", args.params)
    bins_path = args.bins or args.params.parent / "bins.yaml"
    bins = parse_value(dict(read_yaml(bins_path)), dict[str, list[float]], bins_path.name)
    threshold = float(_read_json(args.threshold, "threshold")["threshold"])
    criterion = _read_json(args.threshold_info, "").get("criterion", "?") if args.threshold_info.exists() else "?"
    test = ShardDataset(args.shards, "test")
    if len(test) == 0:
        raise NucvnError(f"{args.shards}: the test split is empty; give preprocess.split.test a positive fraction")
    meta = test.metadata
    E.check_variables(meta.columns, bins, p.misid_variable)
    model, config = load_model(args.model_dir)
    scores = predict_scores(model, config, test, batch_size=p.batch_size, device=p.device, progress=not args.no_progress)
    nhits = E.count_hits(shard[i : i + 4096] for shard in test.images for i in range(0, len(shard), 4096))
    ev = E.evaluate(scores, meta, threshold=threshold, bins=bins, misid_variable=p.misid_variable, nhits=nhits,
                    score_bins=p.score_bins, roc_points=p.roc_points, cl=p.confidence_level)
    source = E.data_source(args.raw)
    if ev.skipped_variables:
        print(f"evaluate: no {', '.join(ev.skipped_variables)} in the metadata; those plots are left out")

    pred = E.predictions_table(meta, scores, threshold=threshold)
    pred.insert(pred.columns.get_loc("score") + 1, "nhits", nhits)
    write_csv(pred, args.predictions)

    # Rebuild the plots directory from scratch so files of variables no longer binned disappear.
    tmp_dir = args.plots.with_name(f".{args.plots.name}.tmp")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    try:
        _write_plots(ev, test, meta, scores, tmp_dir, threshold=threshold, n_gallery=p.gallery_events,
                     misid_variable=p.misid_variable,
                     footer=(f"data: {source} | model: {config['model']} | test split, {len(test)} events | "
                             f"threshold {threshold:.3f} ({criterion}, chosen on val)"))
        shutil.rmtree(args.plots, ignore_errors=True)
        tmp_dir.rename(args.plots)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    metrics = {k: ev.metrics[k] for k in QUALITY}
    info = {k: v for k, v in ev.metrics.items() if k not in QUALITY}
    write_json(info | {"criterion": criterion, "data_source": source, "model": str(config["model"]),
                       "skipped_variables": ev.skipped_variables}, args.info)
    write_json(metrics, args.metrics)
    shown = ", ".join(f"{k} {metrics[k]:.4f}" if isinstance(metrics[k], float) else f"{k} n/a"
                      for k in ("auc", "efficiency", "purity", "balanced_accuracy"))
    print(f"evaluate: test {shown} at threshold {threshold:.4f} ({len(test)} events, data {source})")
    return 0


if __name__ == "__main__":
    run_stage("evaluate", main)
