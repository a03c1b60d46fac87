"""Multiclass evaluation: accuracy, per-class efficiency and purity with Clopper-Pearson intervals,
confusion matrices and efficiency vs true neutrino energy, as tables and figures.

Pure functions of integer class indices (``0..K-1``, naming ``classes[i]``); they know nothing of
tasks or models. For class ``c``: **efficiency** = events of true class ``c`` predicted ``c`` / events
of true class ``c`` (recall); **purity** = events predicted ``c`` that are truly ``c`` / events
predicted ``c`` (precision). Every rate comes from counts (the confusion matrix, which adds across
batches and DDP ranks) and carries a Clopper-Pearson interval (:func:`nucvn.report.stats.clopper_pearson`);
a rate with no events is NaN in tables and ``None`` in metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.figure import Figure

from nucvn.core.errors import NucvnError
from nucvn.report import stats as m
from nucvn.report.task_figures import (
    SIMULATION_LABEL,
    bin_positions,
    errorbar_points,
    label_simulation,
    new_figure,
    scale_axis,
)

__all__ = [
    "ENERGY_LABEL",
    "confusion_matrix_counts",
    "classification_report",
    "classification_figures",
]

ENERGY_LABEL = r"true neutrino energy $E_\nu$ (GeV)"


def _classes(classes: Sequence[str]) -> list[str]:
    names = [str(c) for c in classes]
    if not names or len(set(names)) != len(names):
        raise NucvnError(f"classes must be a non-empty list of distinct names, got {names}")
    return names


def _indices(values: npt.ArrayLike, n_classes: int, what: str) -> npt.NDArray[np.int64]:
    arr = np.asarray(values).reshape(-1)
    if arr.size and (not np.issubdtype(arr.dtype, np.integer) and not np.all(np.mod(arr, 1) == 0)):
        raise NucvnError(f"{what} class indices must be integers, got dtype {arr.dtype}")
    idx = arr.astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n_classes):
        raise NucvnError(f"{what} class indices must lie in [0, {n_classes - 1}] (one per class name), got "
                         f"{idx.min()}..{idx.max()}")
    return idx


def confusion_matrix_counts(true: npt.ArrayLike, pred: npt.ArrayLike, n_classes: int) -> npt.NDArray[np.int64]:
    """``(K, K)`` counts, rows the true class and columns the predicted class; additive across
    batches and ranks (sum, then divide once)."""
    t = _indices(true, n_classes, "true")
    p = _indices(pred, n_classes, "predicted")
    if t.shape != p.shape:
        raise NucvnError(f"got {p.size} predictions for {t.size} true classes; they must match one to one")
    counts = np.bincount(t * n_classes + p, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes).astype(np.int64)


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def classification_report(
    true: npt.ArrayLike,
    pred: npt.ArrayLike,
    classes: Sequence[str],
    *,
    energy: npt.ArrayLike,
    energy_bins: Sequence[float],
    cl: float = m.ONE_SIGMA,
) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """Metrics and tables of a multiclass prediction.

    ``true`` and ``pred`` are class indices into ``classes``; ``energy`` is the true neutrino energy
    (GeV) of each event, binned by ``energy_bins`` (``[e_i, e_{i+1})``, last closed; energies
    outside or NaN are not counted in that table only).

    Metrics: ``n``, ``accuracy`` with ``accuracy_lo``/``accuracy_hi``, ``confidence_level`` and
    ``per_class[name]`` = ``efficiency``, ``purity`` (each with ``_lo``/``_hi``), ``n_true``,
    ``n_predicted``, ``n_correct``.

    Tables: ``confusion`` (``actual``, ``predicted`` names and ``count`` for every pair of classes,
    the input of the ``nucvn_confusion`` plot template), ``confusion_matrix`` (``true_class``,
    ``predicted_class``, ``count``, ``fraction`` of the true class; every pair of classes),
    ``per_class`` (``class``, ``efficiency``/``purity`` with ``_lo``/``_hi``, ``n_true``,
    ``n_predicted``, ``n_correct``), ``efficiency_vs_nuenergy`` (``bin_low``, ``bin_high``,
    ``bin_centre``, ``n``, and per class ``{name}_efficiency`` with ``_lo``, ``_hi``, ``_k``, ``_n``).
    """
    names = _classes(classes)
    k = len(names)
    counts = confusion_matrix_counts(true, pred, k)
    t = _indices(true, k, "true")
    p = _indices(pred, k, "predicted")
    e = np.asarray(energy, dtype=np.float64).reshape(-1)
    if e.shape != t.shape:
        raise NucvnError(f"got {e.size} energies for {t.size} events; they must match one to one")

    n = int(counts.sum())
    correct = np.diag(counts)
    n_true = counts.sum(axis=1)
    n_pred = counts.sum(axis=0)
    acc_lo, acc_hi = m.clopper_pearson(int(correct.sum()), n, cl)
    eff = m.rate_table(correct, n_true, name="efficiency", cl=cl)
    pur = m.rate_table(correct, n_pred, name="purity", cl=cl)

    metrics: dict[str, Any] = {
        "n": n,
        "accuracy": _finite_or_none(float(m.ratio(int(correct.sum()), n))),
        "accuracy_lo": float(acc_lo),
        "accuracy_hi": float(acc_hi),
        "confidence_level": float(cl),
        "per_class": {
            name: {
                **{c: _finite_or_none(eff.at[i, c]) for c in ("efficiency", "efficiency_lo", "efficiency_hi")},
                **{c: _finite_or_none(pur.at[i, c]) for c in ("purity", "purity_lo", "purity_hi")},
                "n_true": int(n_true[i]),
                "n_predicted": int(n_pred[i]),
                "n_correct": int(correct[i]),
            }
            for i, name in enumerate(names)
        },
    }

    label = np.array(names, dtype=object)
    tables: dict[str, pd.DataFrame] = {}
    tables["confusion"] = pd.DataFrame({"actual": np.repeat(label, k), "predicted": np.tile(label, k),
                                        "count": counts.reshape(-1)})
    tables["confusion_matrix"] = pd.DataFrame(
        {
            "true_class": np.repeat(names, k),
            "predicted_class": np.tile(names, k),
            "count": counts.reshape(-1),
            "fraction": m.ratio(counts, n_true[:, None]).reshape(-1),
        }
    )
    per_class = pd.concat([pd.DataFrame({"class": names}), eff[["efficiency", "efficiency_lo", "efficiency_hi"]],
                           pur[["purity", "purity_lo", "purity_hi"]]], axis=1)
    per_class["n_true"], per_class["n_predicted"], per_class["n_correct"] = n_true, n_pred, correct
    tables["per_class"] = per_class

    edges = np.asarray(energy_bins, dtype=np.float64)
    parts = []
    for i, name in enumerate(names):
        kk, nn = m.binned_counts(e[t == i], p[t == i] == i, edges)
        parts.append(m.rate_table(kk, nn, name=f"{name}_efficiency", cl=cl))
    _, n_bin = m.binned_counts(e, np.ones(e.shape, bool), edges)
    head = pd.DataFrame({"bin_low": edges[:-1], "bin_high": edges[1:], "bin_centre": 0.5 * (edges[:-1] + edges[1:]),
                         "n": n_bin})
    tables["efficiency_vs_nuenergy"] = pd.concat([head, *parts], axis=1)
    return metrics, tables


def _confusion_figure(table: pd.DataFrame, names: list[str], *, title: str, footer: str) -> Figure:
    k = len(names)
    counts = table.pivot(index="true_class", columns="predicted_class", values="count").loc[names, names].to_numpy()
    pivot = table.pivot(index="true_class", columns="predicted_class", values="fraction")
    frac = pivot.loc[names, names].to_numpy(dtype=np.float64)
    fig, (ax,) = new_figure(footer, (1.8 + 1.05 * k, 1.4 + 0.75 * k))
    im = ax.imshow(np.nan_to_num(frac, nan=0.0), cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i in range(k):
        for j in range(k):
            text = f"{counts[i, j]}\n({frac[i, j]:.1%})" if np.isfinite(frac[i, j]) else f"{counts[i, j]}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if frac[i, j] > 0.6 else "black")
    ax.set_xticks(range(k), names, rotation=30 if k > 4 else 0)
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"{title}: confusion matrix (fraction of each true class)", fontsize=10)
    fig.colorbar(im, ax=ax, label="fraction of true class")
    fig.text(0.995, 0.003, SIMULATION_LABEL, fontsize=7, style="italic", color="0.35", ha="right", va="bottom")
    return fig


def _per_class_figure(table: pd.DataFrame, *, title: str, footer: str) -> Figure:
    fig, (ax,) = new_figure(footer)
    x = np.arange(len(table), dtype=np.float64)
    for shift, rate, colour, marker in ((-0.1, "efficiency", "C0", "o"), (0.1, "purity", "C1", "s")):
        errorbar_points(ax, x + shift, table[rate], lo=table[f"{rate}_lo"], hi=table[f"{rate}_hi"], label=rate,
                        colour=colour, marker=marker)
    ax.set_xticks(x, [f"{c}\n(n={n})" for c, n in zip(table["class"], table["n_true"], strict=True)])
    ax.set_xlim(-0.6, len(table) - 0.4)
    ax.set_xlabel("true class (events)")
    ax.set_ylabel("efficiency / purity")
    ax.set_ylim(0, 1.12)
    ax.set_title(f"{title}: efficiency and purity per class", fontsize=10)
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3, axis="y")
    label_simulation(ax)
    return fig


def _efficiency_vs_energy_figure(table: pd.DataFrame, names: list[str], *, title: str, footer: str) -> Figure:
    fig, (ax,) = new_figure(footer)
    edges = np.concatenate([table["bin_low"].to_numpy(), table["bin_high"].to_numpy()[-1:]]).astype(np.float64)
    scale = scale_axis(ax, edges) if edges.size >= 2 else "linear"
    k = len(names)
    for i, name in enumerate(names):
        col = f"{name}_efficiency"
        x = bin_positions(table["bin_low"], table["bin_high"], scale, offset=0.25 * (i - (k - 1) / 2) / k)
        xerr = np.vstack([x - table["bin_low"].to_numpy(), table["bin_high"].to_numpy() - x])
        errorbar_points(ax, x, table[col], lo=table[f"{col}_lo"], hi=table[f"{col}_hi"], xerr=xerr,
                        label=f"{name} ({int(table[f'{col}_n'].sum())} events)", colour=f"C{i % 10}",
                        marker="osd^v<>"[i % 7])
    ax.set_xlabel(ENERGY_LABEL)
    ax.set_ylabel("efficiency of the true class")
    ax.set_ylim(0, 1.12)
    ax.set_title(f"{title}: efficiency vs true neutrino energy", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    label_simulation(ax)
    return fig


def classification_figures(
    tables: Mapping[str, pd.DataFrame], *, classes: Sequence[str], title: str, footer: str
) -> list[tuple[str, Figure]]:
    """``(table name, figure)`` for the tables of :func:`classification_report`: the row-normalised
    ``confusion_matrix`` with counts and fractions in the cells, ``per_class`` efficiency and purity
    with Clopper-Pearson error bars, and ``efficiency_vs_nuenergy`` per class (log energy axis when
    the bins span more than a decade, :func:`nucvn.report.task_figures.axis_scale`). Every figure
    carries the footer and the "NOvA-like simulation" label."""
    names = _classes(classes)
    return [
        ("confusion_matrix", _confusion_figure(tables["confusion_matrix"], names, title=title, footer=footer)),
        ("per_class", _per_class_figure(tables["per_class"], title=title, footer=footer)),
        ("efficiency_vs_nuenergy", _efficiency_vs_energy_figure(tables["efficiency_vs_nuenergy"], names, title=title,
                                                                footer=footer)),
    ]

