"""The efficiency study of a trained model on one set of events: the evaluate stage and ``nucvn evaluate``.

One code path turns a model and a set of events into every number, table and figure of the
evaluation, whether the events are a shard split (the ``evaluate`` stage, on ``test``) or any
event files (``nucvn evaluate --files``, e.g. the real files with a model trained on simulation):

1. :func:`score_events` reads the images once, in batches, and from that one pass takes every
   task's prediction (:func:`nucvn.inference.predict`) and the image features
   (:func:`nucvn.report.preselection.image_features`: hits, charge, last hit plane); adds the
   visible energy from the calibration the model records (:mod:`nucvn.report.visible_energy`) and
   applies the preselection (:mod:`nucvn.report.preselection`).
2. :func:`run_study` reports each task (:func:`nucvn.report.task_report.evaluate_task`) on all
   events and, for binary tasks, again on the preselected ones, plus the preselection itself
   (the fraction of each true category it keeps, overall and against true and visible energy).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.figure import Figure

from nucvn.core.atomic import write_csv
from nucvn.core.events import IMAGE_SHAPE
from nucvn.data.h5io import EventReader
from nucvn.data.labels import labelled_metadata
from nucvn.data.shards import ShardDataset
from nucvn.inference import model_tasks, predict, prediction_table
from nucvn.report import evaluation as E
from nucvn.report import plots as P
from nucvn.report.preselection import (
    CUTS,
    IMAGE_FEATURES,
    Preselection,
    image_features,
    preselected,
    preselection_cuts,
    preselection_table,
)
from nucvn.report.task_report import (
    EvalContext,
    TaskReport,
    evaluate_task,
    subset_context,
)
from nucvn.report.visible_energy import (
    VISIBLE_ENERGY,
    apply_visible_energy,
    calibration_of,
)
from nucvn.train.distributed import DeviceName

__all__ = ["EventSource", "shard_source", "file_source", "Scored", "score_events", "StudyResult", "run_study"]

PRESELECTION_CATEGORIES: tuple[str, ...] = ("numu_cc", "nc", "nue_cc", "nutau_cc")
"""Categories drawn in the preselection-efficiency figures (cosmics and "other" are in the table)."""


@dataclass
class EventSource:
    """A set of events: metadata in the shard layout, image batches in event order, and the images
    of chosen events (for the gallery)."""

    meta: pd.DataFrame
    batches: Callable[[], Iterator[npt.NDArray[np.uint8]]]
    images: Callable[[npt.NDArray[np.int64]], npt.NDArray[np.uint8]]
    description: str


def shard_source(data: ShardDataset, *, block: int = 4096) -> EventSource:
    """The events of a shard split (decoded in blocks of ``block`` events)."""
    return EventSource(meta=data.metadata, batches=lambda: data.dense_blocks(block),
                       images=lambda pos: data.batch(pos)[0].numpy(),
                       description=f"{data.split} split, {len(data)} events")


def file_source(reader: EventReader, *, chunk_size: int = 1024) -> EventSource:
    """The events of validated event files (:func:`nucvn.data.h5io.open_events`), chunk by chunk."""
    keys = list(reader.common_keys())
    frames = [labelled_metadata(c.meta, file=c.path.name, start=c.start)
              for c in reader.iter_chunks(1 << 62, keys=keys, images=False)]

    def batches() -> Iterator[npt.NDArray[np.uint8]]:
        for chunk in reader.iter_chunks(chunk_size, keys=[], images=True):
            assert chunk.images is not None
            yield chunk.images

    def images(pos: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
        out = []
        for i in pos:
            image = reader.event(int(i)).images
            assert image is not None  # EventReader.event always reads the images
            out.append(image)
        return np.concatenate(out) if out else np.zeros((0, *IMAGE_SHAPE), np.uint8)

    return EventSource(meta=pd.concat(frames, ignore_index=True), batches=batches, images=images,
                       description=f"{len(reader.files)} file(s), {reader.n_events} events")


@dataclass
class Scored:
    """A source's events after one pass of the model: metadata (with ``visible_energy`` when the
    model records its calibration), predictions by task, image features and the preselection."""

    meta: pd.DataFrame
    predictions: dict[str, npt.NDArray[np.float32]]
    features: dict[str, np.ndarray]
    passes: dict[str, npt.NDArray[np.bool_]]
    preselected: npt.NDArray[np.bool_]
    has_visible_energy: bool


def score_events(model: Any, config: Mapping[str, Any], source: EventSource, *, cuts: Preselection,
                 batch_size: int = 256, device: DeviceName = "auto", progress: bool = True) -> Scored:
    """Predictions, image features, visible energy and preselection of every event of ``source``,
    reading each image once."""
    feats: list[dict[str, np.ndarray]] = []

    def tapped() -> Iterator[npt.NDArray[np.uint8]]:
        for batch in source.batches():
            feats.append(image_features([batch], downstream_planes=cuts.downstream_planes))
            yield batch

    preds = predict(model, config, tapped(), batch_size=batch_size, device=device, progress=progress)
    features = {k: np.concatenate([f[k] for f in feats]) if feats else np.zeros(0) for k in IMAGE_FEATURES}
    meta = source.meta.copy()
    cal = calibration_of(config)
    if cal is not None:
        meta[VISIBLE_ENERGY] = apply_visible_energy(features["charge"], cal)
    passes = preselection_cuts(meta, features, cuts)
    return Scored(meta=meta, predictions=preds, features=features, passes=passes, preselected=preselected(passes),
                  has_visible_energy=cal is not None)


@dataclass
class StudyResult:
    """Everything a study writes: ``metrics`` (quality numbers with errors), ``info`` (counts and
    settings), ``predictions`` (one row per event) and the tables/figures by output folder."""

    metrics: dict[str, Any]
    info: dict[str, Any]
    predictions: pd.DataFrame
    reports: dict[str, TaskReport] = field(default_factory=dict)
    extra_tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    extra_figures: Callable[[], Iterator[tuple[str, Figure]]] = lambda: iter(())

    def write_plots(self, out: Path) -> None:
        """CSV tables under ``out/<folder>/`` and PNG figures under ``out/<folder>/png/``."""
        for folder, rep in self.reports.items():
            for table_name, table in rep.tables.items():
                write_csv(table, out / folder / f"{table_name}.csv")
            for fig_name, fig in rep.figures():
                P.save_figure(fig, out / folder / "png" / f"{fig_name}.png")
        for rel, table in self.extra_tables.items():
            write_csv(table, out / f"{rel}.csv")
        for rel, fig in self.extra_figures():
            P.save_figure(fig, out / f"{rel}.png")


def _preselection_report(scored: Scored, bins: Mapping[str, Sequence[float]], cl: float, footer: str,
                         cuts: Preselection) -> tuple[dict[str, Any], dict[str, Any], dict[str, pd.DataFrame],
                                                      Callable[[], Iterator[tuple[str, Figure]]]]:
    cats = E.categories(scored.meta)
    table = preselection_table(cats, scored.passes, E.CATEGORIES, cl=cl)
    metrics: dict[str, Any] = {}
    for row in table.itertuples(index=False):
        name = "efficiency" if row.category == "numu_cc" else f"{row.category}_pass"
        if row.after_min_hits_n:
            metrics |= {name: row.after_min_hits, f"{name}_lo": row.after_min_hits_lo,
                        f"{name}_hi": row.after_min_hits_hi}
    info = {"cuts": cuts.describe("vtxx" in scored.meta.columns), "n_preselected": int(scored.preselected.sum()),
            "n_events": len(scored.meta), "failing_each_cut": {c: int((~scored.passes[c]).sum()) for c in CUTS}}
    tables = {"preselection/by_category": table}
    for var in ("nuenergy", VISIBLE_ENERGY):
        if var in bins and var in scored.meta.columns:
            tables[f"preselection/vs_{var}"] = E.misid_table(scored.meta[var].to_numpy(), cats, scored.preselected,
                                                             bins[var],
                                                              variable=var, which=PRESELECTION_CATEGORIES, cl=cl)

    def figures() -> Iterator[tuple[str, Figure]]:
        for rel, t in tables.items():
            if rel.endswith("by_category"):
                yield "preselection/png/by_category", P.category_figure(
                    t.rename(columns=lambda c: c.replace("after_min_hits", "efficiency")).assign(
                        category=[P.CATEGORY_LABELS.get(c, c) for c in t["category"]]), "category",
                    xlabel="true category", title="Preselection efficiency by true category", footer=footer,
                    ylabel="fraction passing the preselection")
            else:
                var = rel.split("/vs_", 1)[1]
                yield f"preselection/png/vs_{var}", P.misid_figure(
                    t, var, which=PRESELECTION_CATEGORIES, footer=footer, ylabel="fraction passing the preselection",
                    title=f"Preselection efficiency vs {P.variable_title(var)}")

    return metrics, info, tables, figures


def run_study(config: Mapping[str, Any], scored: Scored, *, thresholds: Mapping[str, float],
              bins: Mapping[str, Sequence[float]], misid_variables: Sequence[str], cuts: Preselection,
              images: Callable[[npt.NDArray[np.int64]], npt.NDArray[np.uint8]] | None,
              train_meta: pd.DataFrame | None = None, train_charge: npt.NDArray[np.float64] | None = None,
              score_bins: int = 50, roc_points: int = 1000, gallery_events: int = 4, cl: float = 0.6827,
              footer: str = "") -> StudyResult:
    """Every task's report on all events (and, for binary tasks, on the preselected ones), the
    preselection's own report, and the per-event predictions table. A task whose truth the events
    lack (the particle counts in the real files) is predicted but not evaluated; ``info`` says why."""
    tasks = model_tasks(config)
    misid = [v for v in misid_variables if v != VISIBLE_ENERGY or scored.has_visible_energy]
    ctx = EvalContext(meta=scored.meta, bins=bins, thresholds=thresholds, misid_variables=misid,
                      nhits=scored.features["nhits"].astype(np.int64), charge=scored.features["charge"],
                      train_meta=train_meta, train_charge=train_charge, images=images, score_bins=score_bins,
                      roc_points=roc_points, gallery_events=gallery_events, cl=cl, footer=footer)
    keep = scored.preselected
    pre_ctx = subset_context(ctx, keep, footer=f"{footer} | preselected ({int(keep.sum())} events)")
    reports: dict[str, TaskReport] = {}
    metrics: dict[str, Any] = {}
    info: dict[str, Any] = {}
    for t in tasks:
        lacking = [c for c in t.columns if c not in scored.meta.columns]
        if lacking:  # e.g. particle counts in the real files: predicted, but nothing to compare with
            info.setdefault("not_evaluated", {})[t.name] = f"the events carry no {lacking[0]!r} (truth of this task)"
            continue
        rep = evaluate_task(t, scored.predictions[t.name], ctx)
        reports[t.name] = rep
        metrics[t.name], info[t.name] = dict(rep.metrics), dict(rep.info)
        if t.kind == "binary" and keep.any():
            pre = evaluate_task(t, scored.predictions[t.name][keep], pre_ctx)
            reports[f"{t.name}/preselected"] = pre
            metrics[t.name]["preselected"], info[t.name]["preselected"] = pre.metrics, pre.info
    pm, pi, tables, figures = _preselection_report(scored, bins, cl, footer, cuts)
    metrics["preselection"], info["preselection"] = pm, pi
    if not scored.has_visible_energy:
        info["visible_energy"] = "not reported: the model records no visible-energy calibration (retrain it)"
    pred = prediction_table(scored.meta, scored.predictions, tasks)
    at = pred.columns.get_loc("index") + 1 if "index" in pred.columns else 0
    for offset, (name,
                 values) in enumerate([("nhits", scored.features["nhits"]),
                                             ("last_plane", scored.features["last_plane"]),
                                              ("preselected", scored.preselected.astype(np.int8))]):
        pred.insert(at + offset, name, values)
    return StudyResult(metrics=metrics, info=info, predictions=pred, reports=reports, extra_tables=tables,
                       extra_figures=figures)
