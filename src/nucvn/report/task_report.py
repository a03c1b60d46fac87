"""Evaluate one task on a split: its summary numbers, tables and figures, chosen by the task's kind.

The evaluate stage and ``nucvn`` loop over the model's tasks and call :func:`evaluate_task` for
each; nothing here names a task. What a task says about itself (:class:`nucvn.tasks.base.Task`:
``kind``, ``classes``, ``unit``, ``resolution``, ``baseline``, ``targets``) picks the report:

- ``binary``: today's νμ CC study (:func:`nucvn.report.evaluation.evaluate`) at the threshold
  chosen on the validation split: ROC, score distributions, efficiency and purity with
  Clopper-Pearson intervals versus every true variable, mis-identification, and the gallery of the
  most confidently wrong events;
- ``multiclass`` and ``count``: the confusion matrix, per-class efficiency and purity, accuracy,
  per-class efficiency versus true neutrino energy (:mod:`nucvn.report.classification`);
- ``regression``: bias and resolution (RMS and central 68 %) versus true energy, per flavour and
  per mode, and the true-versus-reconstructed histogram (:mod:`nucvn.report.regression`), next to
  the calorimetric baseline when the task asks for one (fitted on the train split only,
  :mod:`nucvn.report.baseline`).

Every task is evaluated on the events where it is defined (its mask); the number of those is in
the task's info.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.figure import Figure

from nucvn.core import events as ev
from nucvn.core.errors import NucvnError
from nucvn.report import evaluation as E
from nucvn.report import plots as P
from nucvn.report.baseline import CalorimetricEnergy
from nucvn.report.classification import classification_figures, classification_report
from nucvn.report.gallery import gallery_figure, most_confidently_wrong
from nucvn.report.regression import regression_figures, regression_report
from nucvn.tasks.base import Task

__all__ = ["EvalContext", "TaskReport", "evaluate_task", "subset_context", "QUALITY_KEYS"]

QUALITY_KEYS: tuple[str, ...] = (
    "auc", "auc_err", "balanced_accuracy", "balanced_accuracy_err", "accuracy", "accuracy_lo", "accuracy_hi",
    "efficiency", "efficiency_lo", "efficiency_hi", "purity", "purity_lo", "purity_hi", "background_rejection",
    "background_rejection_lo", "background_rejection_hi", "fom", "fom_err",
)
"""Numbers of the binary report that belong in ``metrics/`` (the rest is bookkeeping in ``info/``)."""

FLAVOUR_NAMES = np.array((*E.CATEGORIES[:5], "other"), dtype=object)


@dataclass
class EvalContext:
    """Everything an evaluation needs besides the task's predictions.

    ``meta`` is the evaluated split's metadata; ``thresholds`` the working points chosen on the
    validation split by task name; ``charge`` the pixel charge (sum of pixel values) of each
    evaluated event and ``train_charge``/``train_meta`` the same on the train split, for baselines
    fitted there; ``images(positions)`` returns events' images for the gallery.
    """

    meta: pd.DataFrame
    bins: Mapping[str, Sequence[float]]
    thresholds: Mapping[str, float] = field(default_factory=dict)
    misid_variables: Sequence[str] = ("nuenergy",)
    nhits: npt.NDArray[np.int64] | None = None
    charge: npt.NDArray[np.float64] | None = None
    train_meta: pd.DataFrame | None = None
    train_charge: npt.NDArray[np.float64] | None = None
    images: Callable[[npt.NDArray[np.int64]], npt.NDArray[np.uint8]] | None = None
    score_bins: int = 50
    roc_points: int = 1000
    gallery_events: int = 4
    cl: float = 0.6827
    footer: str = ""


FIGURE_ONLY: tuple[str, ...] = ("confusion_matrix", "reco_vs_true")
"""Tables that are matrices (a 2-D histogram, the K x K confusion counts with fractions): drawn as
figures only; ``dvc plots show`` draws the ``confusion`` table (``actual``, ``predicted``,
``count``) with its own template."""


@dataclass
class TaskReport:
    """One task's results: ``metrics`` (quality numbers with their errors, for ``metrics/``),
    ``info`` (counts and bookkeeping), ``tables`` (CSV by file stem, each plotted by dvc.yaml) and
    ``figures`` (made lazily)."""

    metrics: dict[str, Any]
    info: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    figures: Callable[[], Iterator[tuple[str, Figure]]]


def flavour_names(meta: pd.DataFrame) -> npt.NDArray[np.object_]:
    """νμ CC, νe CC, ντ CC, NC, cosmic or other, per event (for per-flavour tables)."""
    return E.categories(meta)


def _energy(meta: pd.DataFrame) -> npt.NDArray[np.float64]:
    return meta["nuenergy"].to_numpy().astype(np.float64)


def _binary(task: Task, pred: np.ndarray, target: np.ndarray, defined: np.ndarray, ctx: EvalContext) -> TaskReport:
    if task.name not in ctx.thresholds:
        raise NucvnError(f"no threshold for task {task.name!r} in metrics/threshold.json; run dvc repro threshold")
    threshold = float(ctx.thresholds[task.name])
    meta = ctx.meta[defined].reset_index(drop=True)
    scores = np.asarray(pred, dtype=np.float64)[defined]
    is_signal = np.asarray(target)[defined].astype(bool)
    nhits = None if ctx.nhits is None else ctx.nhits[defined]
    result = E.evaluate(scores, meta, threshold=threshold, bins=ctx.bins, misid_variables=ctx.misid_variables,
                        nhits=nhits, score_bins=ctx.score_bins, roc_points=ctx.roc_points, cl=ctx.cl,
                        is_signal=is_signal)
    metrics = {k: result.metrics[k] for k in QUALITY_KEYS}
    info = {k: v for k, v in result.metrics.items() if k not in QUALITY_KEYS} | {
        "threshold": threshold, "skipped_variables": result.skipped_variables}
    positions = np.flatnonzero(defined)

    def figures() -> Iterator[tuple[str, Figure]]:
        met = result.metrics
        working_point = (1.0 - float(met["background_rejection"] or 0.0), float(met["efficiency"] or 0.0))
        yield from P.evaluation_figures(result.tables, auc=met["auc"], threshold=threshold, working_point=working_point,
                                        footer=ctx.footer, misid_categories=E.MISID_CATEGORIES)
        if ctx.images is not None:
            wrong = most_confidently_wrong(is_signal, scores, threshold=threshold, n=ctx.gallery_events)
            pos = np.array(wrong["position"], dtype=np.int64)
            cats, rows = E.categories(meta), meta.iloc[pos]
            captions = [f"{kind}: true {cats[p]}, E_nu {r.nuenergy:.2f} GeV, E_lep {r.lepenergy:.2f} GeV, score {s:.3f}"
                        for kind, p, s, r in zip(wrong["kind"], pos, wrong["score"], rows.itertuples(), strict=True)]
            images = ctx.images(positions[pos]) if len(pos) else np.zeros((0, *ev.IMAGE_SHAPE), np.uint8)
            yield "wrong_events", gallery_figure(images, captions,
                                                 title=f"Most confidently wrong test events ({task.name})",
                                                 footer=ctx.footer)

    return TaskReport(metrics, info, result.tables, figures)


def _classes(task: Task, pred: np.ndarray, target: np.ndarray, defined: np.ndarray, ctx: EvalContext) -> TaskReport:
    probs = np.asarray(pred, dtype=np.float64)[defined]
    true = np.asarray(target)[defined].astype(np.int64)
    predicted = probs.argmax(axis=1)
    report, tables = classification_report(true, predicted, task.classes, energy=_energy(ctx.meta)[defined],
                                            energy_bins=ctx.bins["nuenergy"], cl=ctx.cl)
    metrics, info = _split(report)
    info |= {"n": int(defined.sum()), "n_undefined": int((~defined).sum())}

    def figures() -> Iterator[tuple[str, Figure]]:
        yield from classification_figures(tables, classes=task.classes, title=task.name, footer=ctx.footer)

    return TaskReport(metrics, info, _curves(tables), figures)


def _curves(tables: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    return {k: v for k, v in tables.items() if not k.startswith(FIGURE_ONLY)}


def _regression(task: Task, pred: np.ndarray, target: np.ndarray, defined: np.ndarray, ctx: EvalContext) -> TaskReport:
    reco = np.asarray(pred, dtype=np.float64)[defined]
    true = np.asarray(target, dtype=np.float64)[defined]
    meta = ctx.meta[defined].reset_index(drop=True)
    baseline = None
    info: dict[str, Any] = {"n": int(defined.sum()), "n_undefined": int((~defined).sum())}
    if task.baseline == "calorimetric" and ctx.charge is not None and ctx.train_charge is not None \
            and ctx.train_meta is not None:
        train_target, train_defined = task.targets(ctx.train_meta)
        cal = CalorimetricEnergy(mode="per_flavour").fit(
            ctx.train_charge[train_defined], np.asarray(train_target, np.float64)[train_defined],
            flavour_names(ctx.train_meta)[train_defined])
        baseline = cal.predict(ctx.charge[defined], flavour_names(meta))
        info["baseline"] = {"name": "calorimetric", "fitted_on": "train split", **cal.to_dict()}
    report, tables = regression_report(
        reco, true, residual=task.resolution, energy=_energy(meta), energy_bins=ctx.bins["nuenergy"],
        groups={"flavour": flavour_names(meta), "mode": E.mode_names(meta)}, baseline=baseline,
        baseline_name="calorimetric", quantity=task.name, unit=task.unit)
    metrics, more = _split(report)
    info |= more

    def figures() -> Iterator[tuple[str, Figure]]:
        yield from regression_figures(tables, quantity=task.name, unit=task.unit, footer=ctx.footer,
                                      residual=task.resolution)

    return TaskReport(metrics, info, _curves(tables), figures)


_QUALITY_WORDS = ("accuracy", "efficiency", "purity", "bias", "resolution")


def _split(report: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Quality numbers and their errors (for ``metrics/``, what ``dvc metrics diff`` compares) apart
    from counts and settings (for ``info/``), recursively."""
    metrics: dict[str, Any] = {}
    info: dict[str, Any] = {}
    for key, value in report.items():
        if isinstance(value, Mapping):
            m, i = _split(value)
            if m:
                metrics[key] = m
            if i:
                info[key] = i
        elif isinstance(value, (float, type(None))) and any(w in key for w in _QUALITY_WORDS):
            metrics[key] = value
        else:
            info[key] = value
    return metrics, info


def subset_context(ctx: EvalContext, keep: npt.NDArray[np.bool_], footer: str) -> EvalContext:
    """The context of the events ``keep`` selects (e.g. the preselected ones): metadata, hit counts,
    charges and image positions follow; the train-split inputs and settings stay."""
    positions = np.flatnonzero(keep)
    images = ctx.images

    def subset_images(pos: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
        assert images is not None
        return images(positions[pos])

    return replace(ctx, meta=ctx.meta[keep].reset_index(drop=True), footer=footer,
                   nhits=None if ctx.nhits is None else ctx.nhits[keep],
                   charge=None if ctx.charge is None else ctx.charge[keep],
                   images=None if images is None else subset_images)


_BY_KIND = {"binary": _binary, "multiclass": _classes, "count": _classes, "regression": _regression}


def evaluate_task(task: Task, pred: np.ndarray, ctx: EvalContext) -> TaskReport:
    """The report of ``task`` from its predictions ``pred`` on the events of ``ctx.meta``."""
    target, defined = task.targets(ctx.meta)
    if not np.any(defined):
        raise NucvnError(f"task {task.name}: defined for none of the {len(ctx.meta)} events evaluated")
    return _BY_KIND[task.kind](task, pred, target, np.asarray(defined, dtype=bool), ctx)
