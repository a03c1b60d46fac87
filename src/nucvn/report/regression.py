"""Regression evaluation: bias and resolution of a reconstructed quantity (e.g. the neutrino energy)
overall, vs true neutrino energy and per group (flavour, interaction mode), next to a classical
baseline, as tables and figures.

Pure functions of numpy arrays; they know nothing of tasks or models. The statistics and their
errors (bias ± s/√n, RMS with the large-n fourth-moment error, 68 % half-width with a bootstrap
error of fixed seed) are those of :mod:`nucvn.report.resolution`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine

from nucvn.core.errors import NucvnError
from nucvn.report import resolution as res
from nucvn.report.plots import add_footer
from nucvn.report.task_figures import (
    bin_positions,
    errorbar_points,
    headroom,
    label_simulation,
    new_figure,
    scale_axis,
    spacing_scale,
    with_unit,
)

__all__ = ["default_bins", "reco_vs_true_table", "regression_report", "regression_figures"]

Residual = Literal["relative", "absolute"]
_METRIC_NAMES = {"bias": "bias", "bias_err": "bias_err", "rms": "resolution_rms", "rms_err": "resolution_rms_err",
                 "w68": "resolution_68", "w68_err": "resolution_68_err"}
ENERGY_LABEL = r"true neutrino energy $E_\nu$ (GeV)"


def default_bins(
    true: npt.ArrayLike, reco: npt.ArrayLike | None = None, *, n_bins: int = 40,
    scale: Literal["auto", "log", "linear"] = "auto"
) -> npt.NDArray[np.float64]:
    """``n_bins`` bins over the range of the ``true`` values, widened to hold the central 99.8 % of
    the ``reco`` values (so a few wild estimates do not stretch the grid).

    Log-spaced with ``scale="log"`` (when the range is positive), linear with ``"linear"``; ``"auto"``
    takes log-spaced bins when the true values are positive, span more than a decade and crowd at
    the low end (median in the lower three quarters of the log range), as a falling neutrino energy
    spectrum does, and linear bins otherwise (e.g. a fraction spread evenly over (0, 1]). A single
    value gets a unit-wide range around it. With log bins, estimates <= 0 fall outside the grid.
    """
    t = np.asarray(true, dtype=np.float64).reshape(-1)
    t = t[np.isfinite(t)]
    v = t
    if reco is not None:
        r = np.asarray(reco, dtype=np.float64).reshape(-1)
        r = r[np.isfinite(r)]
        if r.size:
            v = np.concatenate([v, np.quantile(r, [0.001, 0.999])])
    if v.size == 0:
        return np.linspace(0.0, 1.0, n_bins + 1)
    lo, hi = float(v.min()), float(v.max())
    positive = t.size > 0 and t.min() > 0 and hi > t.min()
    if scale == "auto":
        crowded = False
        if positive and hi / t.min() > 10.0:
            span = np.log(hi / t.min())
            crowded = np.log(np.median(t) / t.min()) < 0.75 * span
        scale = "log" if crowded else "linear"
    if scale == "log" and positive:
        return np.geomspace(max(lo, float(t.min())), hi, n_bins + 1)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, n_bins + 1)


def reco_vs_true_table(reco: npt.ArrayLike, true: npt.ArrayLike, edges: npt.ArrayLike) -> tuple[pd.DataFrame, int]:
    """2-D histogram of (true, reco) in long form, one row per cell of the grid ``edges`` x
    ``edges`` (``true_lo``, ``true_hi``, ``reco_lo``, ``reco_hi``, ``count``, zeros included), and
    the number of events outside the grid (not counted)."""
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or e.size < 2 or not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0):
        raise NucvnError(f"reco_bins must be a strictly increasing list of at least 2 numbers, got {e.tolist()}")
    r = np.asarray(reco, dtype=np.float64).reshape(-1)
    t = np.asarray(true, dtype=np.float64).reshape(-1)
    h, _, _ = np.histogram2d(t, r, bins=[e, e])
    k = e.size - 1
    table = pd.DataFrame({"true_lo": np.repeat(e[:-1], k), "true_hi": np.repeat(e[1:], k),
                          "reco_lo": np.tile(e[:-1], k), "reco_hi": np.tile(e[1:], k),
                          "count": h.reshape(-1).astype(np.int64)})
    return table, int(t.size - h.sum())


def _none_if_nan(value: Any) -> Any:
    return None if isinstance(value, float) and not np.isfinite(value) else value


def regression_report(
    reco: npt.ArrayLike,
    true: npt.ArrayLike,
    *,
    residual: Residual,
    energy: npt.ArrayLike,
    energy_bins: Sequence[float],
    groups: Mapping[str, npt.ArrayLike],
    baseline: npt.ArrayLike | None = None,
    baseline_name: str = "calorimetric",
    quantity: str,
    unit: str,
    reco_bins: Sequence[float] | None = None,
    reco_scale: Literal["auto", "log", "linear"] = "auto",
    n_boot: int = 200,
    seed: int = 0,
) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """Metrics and tables of a regression of ``quantity`` (in ``unit``; "" if dimensionless).

    Residual ``r = (reco - true) / true`` (``relative``; needs ``true > 0``) or ``reco - true``
    (``absolute``). ``energy`` is the true neutrino energy (GeV) binned by ``energy_bins``;
    ``groups`` maps a name to one label per event (e.g. ``{"flavour": ..., "mode": ...}``);
    ``baseline`` is another estimate of the same quantity for the same events (e.g. the calorimetric
    energy), evaluated the same way. ``n_boot`` and ``seed`` set the bootstrap of the 68 % width.

    Metrics: ``n``, ``bias``, ``bias_err``, ``resolution_rms``, ``resolution_rms_err``,
    ``resolution_68``, ``resolution_68_err`` (NaN -> None), the same prefixed ``{baseline_name}_``
    when a baseline is given, and ``quantity``, ``unit``, ``residual``, ``n_bootstrap``,
    ``bootstrap_seed``, ``n_outside_reco_vs_true``.

    Tables: ``resolution_vs_nuenergy`` (:func:`nucvn.report.resolution.binned_resolution`),
    ``resolution_by_{group}`` per group (:func:`nucvn.report.resolution.grouped_resolution`),
    ``reco_vs_true`` (:func:`reco_vs_true_table` on ``reco_bins``, by default 40 bins from
    :func:`default_bins` of the true and reconstructed values with ``scale=reco_scale``: log-spaced
    for energy spectra) and, with a baseline, ``reco_vs_true_{baseline_name}`` on the same bins.
    """
    r = res.residuals(reco, true, kind=residual)
    t = np.asarray(true, dtype=np.float64).reshape(-1)
    base = None
    if baseline is not None:
        base = res.residuals(baseline, true, kind=residual)
    if not baseline_name.isidentifier():
        raise NucvnError(f"baseline_name must be a plain name (letters, digits, _), got {baseline_name!r}")
    stats = res.resolution_stats(r, n_boot=n_boot, seed=seed)
    metrics: dict[str, Any] = {"n": int(stats["n"])}
    metrics.update({name: stats[k] for k, name in _METRIC_NAMES.items()})
    if base is not None:
        base_stats = res.resolution_stats(base, n_boot=n_boot, seed=seed)
        metrics.update({f"{baseline_name}_{name}": base_stats[k] for k, name in _METRIC_NAMES.items()})

    kw: dict[str, Any] = {"baseline": base, "baseline_name": baseline_name, "n_boot": n_boot, "seed": seed}
    tables: dict[str, pd.DataFrame] = {"resolution_vs_nuenergy": res.binned_resolution(r, energy, energy_bins, **kw)}
    for name, labels in groups.items():
        tables[f"resolution_by_{name}"] = res.grouped_resolution(r, labels, column=name, **kw)
    edges = default_bins(t, reco, scale=reco_scale) if reco_bins is None else np.asarray(reco_bins, dtype=np.float64)
    tables["reco_vs_true"], outside = reco_vs_true_table(reco, t, edges)
    if baseline is not None:
        tables[f"reco_vs_true_{baseline_name}"], _ = reco_vs_true_table(baseline, t, edges)
    metrics.update({"quantity": quantity, "unit": unit, "residual": residual, "n_bootstrap": int(n_boot),
                    "bootstrap_seed": int(seed), "n_outside_reco_vs_true": outside})
    return {k: _none_if_nan(v) for k, v in metrics.items()}, tables


def _baselines(table: pd.DataFrame) -> list[str]:
    """Baseline names present in a resolution table (columns ``{name}_bias``)."""
    return [c.removesuffix("_bias") for c in table.columns if c.endswith("_bias") and c != "bias"]


def _residual_label(what: str, residual: Residual, unit: str) -> str:
    if residual == "relative":
        return f"{what} of (reco − true) / true"
    return with_unit(f"{what} of reco − true", unit)


def _series(table: pd.DataFrame, names: list[str]) -> list[tuple[str, str, str]]:
    """(column prefix, legend label, colour) of the network and each baseline."""
    return [("", "CNN", "C0")] + [(f"{b}_", b, f"C{i + 1}") for i, b in enumerate(names)]


def _vs_energy_figure(table: pd.DataFrame, *, quantity: str, unit: str, residual: Residual, footer: str) -> Figure:
    fig, (ax_b, ax_r) = new_figure(footer, (6.4, 6.6), nrows=2, sharex=True)
    edges = np.concatenate([table["bin_low"].to_numpy(), table["bin_high"].to_numpy()[-1:]]).astype(np.float64)
    scale = scale_axis(ax_b, edges)
    series = _series(table, _baselines(table))
    for i, (prefix, label, colour) in enumerate(series):
        x = bin_positions(table["bin_low"], table["bin_high"], scale,
                          offset=0.2 * (i - (len(series) - 1) / 2) / len(series))
        xerr = np.vstack([x - table["bin_low"].to_numpy(), table["bin_high"].to_numpy() - x])
        errorbar_points(ax_b, x, table[f"{prefix}bias"], err=table[f"{prefix}bias_err"], xerr=xerr, label=label,
                        colour=colour)
        errorbar_points(ax_r, x, table[f"{prefix}w68"], err=table[f"{prefix}w68_err"], xerr=xerr,
                        label=f"{label}: 68 % half-width", colour=colour)
        errorbar_points(ax_r, x, table[f"{prefix}rms"], err=table[f"{prefix}rms_err"], label=f"{label}: RMS",
                        colour=colour, marker="s", filled=False)
    ax_b.axhline(0.0, color="0.5", lw=0.8, ls=":")
    ax_b.set_ylabel(_residual_label("bias", residual, unit))
    ax_r.set_ylabel(_residual_label("resolution", residual, unit))
    ax_r.set_xlabel(ENERGY_LABEL)
    ax_r.set_ylim(bottom=0)
    ax_b.set_title(f"{quantity}: bias and resolution vs true neutrino energy", fontsize=10)
    for ax in (ax_b, ax_r):
        headroom(ax, 0.45)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right", ncol=2)
        label_simulation(ax)
    return fig


def _group_figure(table: pd.DataFrame, group: str, *, quantity: str, unit: str, residual: Residual,
                  footer: str) -> Figure:
    fig, (ax_b, ax_r) = new_figure(footer, (6.4, 6.6), nrows=2, sharex=True)
    series = _series(table, _baselines(table))
    x = np.arange(len(table), dtype=np.float64)
    width = 0.8 / len(series)
    for i, (prefix, label, colour) in enumerate(series):
        pos = x + (i - (len(series) - 1) / 2) * width
        for ax, stat in ((ax_b, "bias"), (ax_r, "w68")):
            y = table[f"{prefix}{stat}"].to_numpy(dtype=np.float64)
            err = table[f"{prefix}{stat}_err"].to_numpy(dtype=np.float64)
            ok = np.isfinite(y)
            ax.bar(pos[ok], y[ok], width=width, yerr=np.nan_to_num(err[ok]), capsize=2, color=colour, alpha=0.8,
                   label=label if stat == "bias" else f"{label}: 68 % half-width")
    ax_r.set_xticks(x, [f"{g}\n(n={n})" for g, n in zip(table[group], table["n"], strict=True)])
    ax_r.set_xlabel(group)
    ax_b.axhline(0.0, color="0.3", lw=0.8)
    ax_b.set_ylabel(_residual_label("bias", residual, unit))
    ax_r.set_ylabel(_residual_label("resolution", residual, unit))
    ax_b.set_title(f"{quantity}: bias and resolution by {group}", fontsize=10)
    for ax in (ax_b, ax_r):
        headroom(ax, 0.35)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=7, loc="upper right")
        label_simulation(ax)
    return fig


def _reco_vs_true_figure(tables: Sequence[tuple[str, pd.DataFrame]], *, quantity: str, unit: str,
                         footer: str) -> Figure:
    fig, axes = plt.subplots(1, len(tables), figsize=(5.6 * len(tables), 4.8), layout="constrained", squeeze=False)
    engine = fig.get_layout_engine()
    assert isinstance(engine, ConstrainedLayoutEngine)  # layout="constrained" above
    engine.set(h_pad=0.12)
    add_footer(fig, footer)
    for ax, (label, table) in zip(axes[0], tables, strict=True):
        edges = np.concatenate([np.unique(table["true_lo"].to_numpy()), [float(table["true_hi"].max())]])
        k = edges.size - 1
        counts = table.sort_values(["true_lo", "reco_lo"])["count"].to_numpy(dtype=np.float64).reshape(k, k)
        grid = np.ma.masked_less_equal(counts.T, 0)  # rows: reco, columns: true
        norm = LogNorm(vmin=1.0, vmax=max(float(counts.max()), 1.0) * (1.0 if counts.max() > 1 else 10.0))
        mesh = ax.pcolormesh(edges, edges, grid, norm=norm, cmap="viridis")
        fig.colorbar(mesh, ax=ax, label="events per cell")
        scale = spacing_scale(edges)
        ax.set_xscale(scale)
        ax.set_yscale(scale)
        ax.plot([edges[0], edges[-1]], [edges[0], edges[-1]], color="r", lw=1, ls="--", label="reco = true")
        ax.set_xlim(edges[0], edges[-1])
        ax.set_ylim(edges[0], edges[-1])
        ax.set_xlabel(with_unit(f"true {quantity}", unit))
        ax.set_ylabel(with_unit(f"reconstructed {quantity} ({label})", unit))
        ax.set_title(f"{quantity}: {label} vs true", fontsize=10)
        ax.legend(fontsize=7, loc="lower right")
        label_simulation(ax)
    return fig


def regression_figures(
    tables: Mapping[str, pd.DataFrame], *, quantity: str, unit: str, footer: str, residual: Residual = "relative"
) -> list[tuple[str, Figure]]:
    """``(table name, figure)`` for the tables of :func:`regression_report`:
    ``resolution_vs_nuenergy`` (bias and resolution, 68 % half-width filled and RMS open, of the CNN
    and of each baseline side by side, log energy axis when the bins span more than a decade),
    ``resolution_by_{group}`` (bars with errors) and ``reco_vs_true`` (2-D histogram, log colour
    scale, log-log when the bins are log-spaced, the diagonal drawn; the baseline's
    beside it when present). ``residual`` names the residual the tables were made with, for the
    axis labels. Every figure carries the footer and the "NOvA-like simulation" label."""
    out: list[tuple[str, Figure]] = []
    kw: dict[str, Any] = {"quantity": quantity, "unit": unit, "residual": residual, "footer": footer}
    if "resolution_vs_nuenergy" in tables:
        out.append(("resolution_vs_nuenergy", _vs_energy_figure(tables["resolution_vs_nuenergy"], **kw)))
    for name, table in tables.items():
        if name.startswith("resolution_by_"):
            out.append((name, _group_figure(table, name.removeprefix("resolution_by_"), **kw)))
    if "reco_vs_true" in tables:
        hists = [("CNN", tables["reco_vs_true"])] + [
            (n.removeprefix("reco_vs_true_"), t) for n, t in tables.items() if n.startswith("reco_vs_true_")
        ]
        out.append(("reco_vs_true", _reco_vs_true_figure(hists, quantity=quantity, unit=unit, footer=footer)))
    return out

