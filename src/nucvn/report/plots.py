"""Matplotlib figures of an evaluation, drawn from the tables of :mod:`nucvn.report.evaluation`.

Every figure has labelled axes with units and a footer naming the data it was made from (e.g.
"data: sim (nucvn fast simulation) | model: cvn2v | test split"). Rates are drawn as points with
Clopper-Pearson error bars at the bin centre and horizontal bars spanning the bin. Figures are
built with the Agg backend (no display needed) and saved atomically with :func:`save_figure`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine

from nucvn.core.atomic import atomic_write

__all__ = [
    "VARIABLE_LABELS",
    "CATEGORY_LABELS",
    "variable_label",
    "variable_title",
    "provenance",
    "add_footer",
    "save_figure",
    "roc_figure",
    "score_figure",
    "confusion_figure",
    "rate_vs_figure",
    "category_figure",
    "finalstate_figure",
    "misid_figure",
    "threshold_scan_figure",
    "evaluation_figures",
]

VARIABLE_LABELS: dict[str, str] = {
    "nuenergy": r"true neutrino energy $E_\nu$ (GeV)",
    "lepenergy": r"true lepton energy $E_\ell$ (GeV)",
    "lepton_fraction": r"lepton energy fraction $E_\ell / E_\nu$",
    "inelasticity": r"inelasticity $y$",
    "hadenergy": "visible hadronic energy (GeV)",
    "vtxx": "true vertex x (cm)",
    "vtxy": "true vertex y (cm)",
    "vtxz": "true vertex z (cm)",
    "nhits": "number of hit pixels (both views)",
    "visible_energy": r"visible energy $E_\mathrm{vis}$ (GeV, pixel sum calibrated on the train split)",
    "nproton": "number of final-state protons",
    "npion": r"number of final-state charged pions $\pi^\pm$",
    "npizero": r"number of final-state $\pi^0$",
}
"""Axis label, with unit, of each variable the evaluation bins in."""

CATEGORY_LABELS: dict[str, str] = {
    "numu_cc": r"$\nu_\mu$ CC (signal)",
    "nue_cc": r"$\nu_e$ CC",
    "nutau_cc": r"$\nu_\tau$ CC",
    "nc": "NC",
    "cosmic": "cosmic",
    "other": "other",
}

_COLOURS = {"numu_cc": "C0", "nue_cc": "C1", "nutau_cc": "C2", "nc": "C3", "cosmic": "C4", "other": "C7"}


def variable_label(name: str) -> str:
    """Axis label of a variable (its name if unknown)."""
    return VARIABLE_LABELS.get(name, name)


def variable_title(name: str) -> str:
    """A variable's name for a title: its axis label without the unit."""
    return variable_label(name).split(" (", 1)[0]


def provenance(origin: str, model: str, sample: str) -> str:
    """A figure's footer: where the events came from (led by "simulation" when they are
    simulated, so a plot of simulated events always says so), the model and the sample."""
    return f"{'simulation | ' if origin == 'sim' else ''}data: {origin} | model: {model} | {sample}"


def add_footer(fig: Figure, footer: str) -> None:
    """Write the data-source line at the bottom left of a figure."""
    if footer:
        fig.text(0.005, 0.003, footer, fontsize=7, color="0.35", ha="left", va="bottom")


def save_figure(fig: Figure, path: str | os.PathLike[str], *, dpi: int = 110) -> Path:
    """Save as PNG via a temporary name and close the figure."""
    try:
        return atomic_write(path, lambda p: fig.savefig(p, dpi=dpi))
    finally:
        plt.close(fig)


def _figure(footer: str, size: tuple[float, float] = (6.4, 4.6)) -> tuple[Figure, Axes]:
    fig, ax = plt.subplots(figsize=size, layout="constrained")
    engine = fig.get_layout_engine()
    assert isinstance(engine, ConstrainedLayoutEngine)  # layout="constrained" above
    engine.set(h_pad=0.12)
    add_footer(fig, footer)
    return fig, ax


def _scale_x(ax: Axes, table: pd.DataFrame) -> bool:
    """Symmetric-log x axis (linear below 1) when the positive bin edges span a factor of 30 or
    more, as the energy binnings do (0.5-40 GeV, 0.25-80 GeV); returns whether it did."""
    edges = np.concatenate([table["bin_low"].to_numpy(), table["bin_high"].to_numpy()[-1:]]).astype(np.float64)
    positive = edges[edges > 0]
    if positive.size and np.all(edges >= 0) and positive.max() / positive.min() >= 30:
        ax.set_xscale("symlog", linthresh=1.0, linscale=0.5)
        return True
    return False


def _errorbar(ax: Axes, x: np.ndarray, table: pd.DataFrame, col: str, *, xerr: np.ndarray | None, label: str,
              colour: str, marker: str = "o") -> None:
    y = table[col].to_numpy(dtype=np.float64)
    lo = table[f"{col}_lo"].to_numpy(dtype=np.float64)
    hi = table[f"{col}_hi"].to_numpy(dtype=np.float64)
    ok = np.isfinite(y)
    ax.errorbar(
        x[ok], y[ok], yerr=[y[ok] - lo[ok], hi[ok] - y[ok]], xerr=None if xerr is None else xerr[ok],
        fmt=marker, ms=4, capsize=2, color=colour, label=label, lw=1,
    )


def roc_figure(roc: pd.DataFrame, *, auc: float | None, footer: str = "",
               working_point: tuple[float, float] | None = None) -> Figure:
    """ROC curve (efficiency vs background mis-identification rate) with the AUC in the legend."""
    fig, ax = _figure(footer, (5.6, 5.0))
    label = "classifier" + (f" (AUC = {auc:.4f})" if auc is not None else "")
    ax.plot(roc["fpr"], roc["tpr"], color="C0", lw=1.5, label=label)
    ax.plot([0, 1], [0, 1], ls=":", color="0.5", label="random (AUC = 0.5)")
    if working_point is not None:
        ax.plot(*working_point, "o", color="C3", label="chosen threshold")
    ax.set_xlabel("background efficiency (false-positive rate)")
    ax.set_ylabel(r"signal efficiency ($\nu_\mu$ CC true-positive rate)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_title("ROC curve")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return fig


def score_figure(hist: pd.DataFrame, *, threshold: float | None, footer: str = "") -> Figure:
    """Score distribution of the signal and of each background category (unit area, log scale)."""
    fig, ax = _figure(footer)
    edges = np.concatenate([hist["bin_low"].to_numpy(), hist["bin_high"].to_numpy()[-1:]])
    for cat, label in CATEGORY_LABELS.items():
        n = int(hist[f"{cat}_count"].sum()) if f"{cat}_count" in hist.columns else None
        if cat not in hist.columns or n == 0:
            continue
        ax.stairs(hist[cat].to_numpy(), edges, color=_COLOURS[cat], lw=1.6 if cat == "numu_cc" else 1.1,
                  label=label + (f" ({n} events)" if n is not None else ""))
    if threshold is not None:
        ax.axvline(threshold, color="k", ls="--", lw=1, label=f"threshold = {threshold:.3f}")
    ax.set_yscale("log")
    low, high = ax.get_ylim()
    ax.set_ylim(low, high * 30)  # room for the legend above the histograms
    ax.set_xlabel(r"classifier score ($\nu_\mu$ CC probability)")
    ax.set_ylabel("fraction of events per bin")
    ax.set_xlim(0, 1)
    ax.set_title("Score distributions by true category")
    ax.legend(fontsize=7, loc="upper center", ncol=2)
    return fig


def confusion_figure(confusion: pd.DataFrame, *, footer: str = "") -> Figure:
    """Confusion matrix: true category (rows) vs predicted class (columns), with counts and the
    fraction of each true category, from :func:`nucvn.report.evaluation.confusion_table` (a
    ``count`` per pair)."""
    table = confusion.pivot_table(index="actual", columns="predicted", values="count", aggfunc="sum", fill_value=0)
    for col in ("numu_cc", "not_numu_cc"):
        if col not in table.columns:
            table[col] = 0
    rows = [c for c in CATEGORY_LABELS if c in table.index]
    table = table.loc[rows, ["numu_cc", "not_numu_cc"]]
    frac = table.to_numpy() / np.maximum(table.to_numpy().sum(axis=1, keepdims=True), 1)
    fig, ax = _figure(footer, (5.6, 1.2 + 0.6 * len(rows)))
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i in range(frac.shape[0]):
        for j in range(frac.shape[1]):
            ax.text(j, i, f"{table.iat[i, j]}\n({frac[i, j]:.1%})", ha="center", va="center", fontsize=8,
                    color="white" if frac[i, j] > 0.6 else "black")
    ax.set_xticks([0, 1], [r"selected as $\nu_\mu$ CC", "rejected"])
    ax.set_yticks(range(len(rows)), [CATEGORY_LABELS[r] for r in rows])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true category")
    ax.set_title("Confusion matrix (fraction of each true category)")
    fig.colorbar(im, ax=ax, label="fraction of true category")
    return fig


def rate_vs_figure(table: pd.DataFrame, variable: str, *, footer: str = "",
                   rates: Sequence[str] = ("efficiency", "purity")) -> Figure:
    """Efficiency and purity vs a variable, points with Clopper-Pearson error bars; the event
    count per bin is drawn as a grey histogram on a second axis for context."""
    fig, ax = _figure(footer)
    x = table[variable].to_numpy(dtype=np.float64)
    half = 0.5 * (table["bin_high"].to_numpy() - table["bin_low"].to_numpy())
    names = {"efficiency": r"$\nu_\mu$ CC efficiency", "purity": "purity"}
    for i, r in enumerate(rates):
        _errorbar(ax, x, table, r, xerr=half, label=names.get(r, r), colour=f"C{i}", marker="os"[i % 2])
    if "efficiency_n" in table.columns:
        ax2 = ax.twinx()
        edges = np.concatenate([table["bin_low"].to_numpy(), table["bin_high"].to_numpy()[-1:]])
        ax2.stairs(table["efficiency_n"].to_numpy(), edges, color="0.75", fill=True, alpha=0.35, zorder=0)
        ax2.set_ylabel("signal events per bin", color="0.45")
        ax.set_zorder(ax2.get_zorder() + 1)
        ax.patch.set_visible(False)
    _scale_x(ax, table)
    ax.set_xlabel(variable_label(variable))
    ax.set_ylabel("efficiency / purity")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"Efficiency and purity vs {variable_title(variable)}")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return fig


def category_figure(table: pd.DataFrame, column: str, *, xlabel: str, title: str, footer: str = "",
                    rate: str = "efficiency",
                    ylabel: str | None = None) -> Figure:
    """A rate per category (e.g. efficiency per interaction mode) with error bars and the number
    of events in each category."""
    fig, ax = _figure(footer)
    x = np.arange(len(table))
    _errorbar(ax, x.astype(np.float64), table, rate, xerr=None, label=rate, colour="C0")
    ax.set_xticks(x, [f"{c}\n(n={n})" for c, n in zip(table[column], table[f"{rate}_n"], strict=True)])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel or (r"$\nu_\mu$ CC efficiency" if rate == "efficiency" else rate))
    ax.set_ylim(0, 1.05)
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")
    return fig


def finalstate_figure(table: pd.DataFrame, *, footer: str = "") -> Figure:
    """Signal efficiency vs number of tracks, one series per number of showers."""
    fig, ax = _figure(footer)
    for s in range(4):
        sub = table[table["n_showers"] == s].reset_index(drop=True)
        if sub["efficiency_n"].sum() == 0:
            continue
        x = sub["n_tracks"].to_numpy(dtype=np.float64) + (s - 1.5) * 0.08
        _errorbar(ax, x, sub, "efficiency", xerr=None,
                  label=f"{s}{'+' if s == 3 else ''} shower{'s' if s != 1 else ''}", colour=f"C{s}")
    ax.set_xticks(range(4), ["0", "1", "2", "3+"])
    ax.set_xlabel("number of true final-state tracks")
    ax.set_ylabel(r"$\nu_\mu$ CC efficiency")
    ax.set_ylim(0, 1.05)
    ax.set_title("Efficiency by final-state track and shower count")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="lower right")
    else:
        ax.text(0.5, 0.5, "the files carry no final state", transform=ax.transAxes, ha="center", color="0.4")
    ax.grid(alpha=0.3)
    return fig


def misid_figure(table: pd.DataFrame, variable: str, *, which: Sequence[str], footer: str = "",
                 ylabel: str | None = None,
                 title: str | None = None) -> Figure:
    """Fraction of each background category selected as νμ CC vs a variable (or, with ``ylabel``
    and ``title``, any per-category pass fraction), with the bin boundaries drawn (symmetric-log x
    axis for wide energy binnings)."""
    fig, ax = _figure(footer)
    x = table[variable].to_numpy(dtype=np.float64)
    log = _scale_x(ax, table)
    for i, cat in enumerate(which):
        if cat in table.columns and table[f"{cat}_n"].sum() > 0:
            shift = x * (1 + 0.04 * (i - 1)) if log else x + (i - 1) * 0.01 * (x.max() - x.min())  # keep points apart
            _errorbar(ax, shift, table, cat, xerr=None, label=CATEGORY_LABELS.get(cat, cat),
                      colour=_COLOURS.get(cat, f"C{i}"), marker="osd"[i % 3])
    ax.set_xlabel(variable_label(variable))
    edges = np.concatenate([table["bin_low"].to_numpy(), table["bin_high"].to_numpy()[-1:]])
    for e in edges:
        ax.axvline(e, color="0.85", lw=0.6, zorder=0)  # bin boundaries
    ax.set_ylabel(ylabel or r"mis-identification rate (selected as $\nu_\mu$ CC)")
    ax.set_ylim(0, 1.05)
    ax.set_title(title or f"Background mis-identification vs {variable_title(variable)}")
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
    return fig


def threshold_scan_figure(scan: pd.DataFrame, *, chosen: float | None, criterion: str = "", footer: str = "",
                          columns: Mapping[str, str] | None = None) -> Figure:
    """Efficiency, purity, balanced accuracy and fom vs threshold, with the chosen threshold."""
    fig, ax = _figure(footer)
    cols = columns or {"efficiency": "efficiency", "purity": "purity", "balanced_accuracy": "balanced accuracy",
                       "fom": "efficiency x purity"}
    for col, label in cols.items():
        ax.plot(scan["threshold"], scan[col], label=label, lw=1.3)
    if chosen is not None:
        ax.axvline(chosen, color="k", ls="--", lw=1, label=f"chosen ({criterion}) = {chosen:.3f}")
    ax.set_xlabel(r"threshold on the $\nu_\mu$ CC score")
    ax.set_ylabel("value on the validation split")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.set_title("Threshold scan")
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(alpha=0.3)
    return fig


def evaluation_figures(
    tables: Mapping[str, pd.DataFrame],
    *,
    auc: float | None,
    threshold: float,
    working_point: tuple[float, float] | None,
    footer: str,
    misid_categories: Sequence[str],
) -> Iterator[tuple[str, Figure]]:
    """Every figure of an evaluation (:func:`nucvn.report.evaluation.evaluate` tables) as ``(table name,
    figure)``, built one at a time so the caller can save and close each before the next."""
    t = tables
    yield "roc", roc_figure(t["roc"], auc=auc, footer=footer, working_point=working_point)
    yield "scores", score_figure(t["scores"], threshold=threshold, footer=footer)
    yield "confusion", confusion_figure(t["confusion"], footer=footer)
    yield "eff_by_mode", category_figure(t["eff_by_mode"], "mode", xlabel=r"true interaction mode ($\nu_\mu$ CC)",
                                         title="Efficiency by true interaction mode", footer=footer)
    yield "eff_by_finalstate", finalstate_figure(t["eff_by_finalstate"], footer=footer)
    for name, table in t.items():
        if name.startswith("misid_vs_"):
            yield name, misid_figure(table, name.removeprefix("misid_vs_"), which=misid_categories, footer=footer)
    for name, table in t.items():
        if name.startswith("eff_vs_"):
            yield name, rate_vs_figure(table, name.removeprefix("eff_vs_"), footer=footer)
