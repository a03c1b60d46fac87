"""Shared drawing helpers of the per-task figures (:mod:`nucvn.report.classification`,
:mod:`nucvn.report.regression`).

They follow the conventions of :mod:`nucvn.report.plots`: a footer naming the data source, labelled
axes with units, points with error bars, and in addition a "NOvA-like simulation" label in the
top-left corner of each panel (the HEP habit of marking simulated results on the figure itself).
A binning is drawn on a logarithmic axis when its positive edges span more than one decade, as the
energy binnings do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine

from nucvn.report.plots import add_footer

__all__ = [
    "SIMULATION_LABEL",
    "new_figure",
    "label_simulation",
    "headroom",
    "axis_scale",
    "scale_axis",
    "spacing_scale",
    "with_unit",
    "bin_positions",
    "errorbar_points",
]

SIMULATION_LABEL = "NOvA-like simulation"
"""Written in the corner of every task figure: the events (also NOvA's public files) are simulated."""


def new_figure(footer: str, size: tuple[float, float] = (6.4, 4.6), *, nrows: int = 1,
               sharex: bool = False) -> tuple[Figure, list[Axes]]:
    """A constrained-layout figure with ``nrows`` stacked panels and the footer line."""
    fig, axes = plt.subplots(nrows, 1, figsize=size, layout="constrained", sharex=sharex, squeeze=False)
    engine = fig.get_layout_engine()
    assert isinstance(engine, ConstrainedLayoutEngine)  # layout="constrained" above
    engine.set(h_pad=0.12)
    add_footer(fig, footer)
    return fig, list(axes[:, 0])


def label_simulation(ax: Axes, text: str = SIMULATION_LABEL) -> None:
    """Italic label in the top-left corner inside the axes, on a white box (readable over data)."""
    ax.text(0.02, 0.97, text, transform=ax.transAxes, ha="left", va="top", fontsize=8, style="italic", color="0.25",
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1.5})


def headroom(ax: Axes, fraction: float = 0.3) -> None:
    """Extend the y range upwards by ``fraction`` of its height, room for the legend and label."""
    low, high = ax.get_ylim()
    ax.set_ylim(low, high + fraction * (high - low))


def axis_scale(edges: npt.ArrayLike) -> Literal["linear", "log", "symlog"]:
    """``log`` when every edge is positive and they span more than a decade; ``symlog`` when the
    binning starts at 0 but its positive edges span more than a decade (a log axis cannot show 0);
    ``linear`` otherwise (including edges below 0 or that are not finite)."""
    e = np.asarray(edges, dtype=np.float64).reshape(-1)
    if e.size < 2 or not np.all(np.isfinite(e)) or np.any(e < 0):
        return "linear"
    positive = e[e > 0]
    if positive.size < 2 or positive.max() / positive.min() <= 10.0:
        return "linear"
    return "log" if positive.size == e.size else "symlog"


def scale_axis(ax: Axes, edges: npt.ArrayLike, which: Literal["x", "y"] = "x") -> str:
    """Set the x (or y) scale of ``ax`` by :func:`axis_scale`; ``symlog`` is linear below the first
    positive edge. Returns the scale set."""
    e = np.asarray(edges, dtype=np.float64).reshape(-1)
    scale = axis_scale(e)
    setter = ax.set_xscale if which == "x" else ax.set_yscale
    if scale == "symlog":
        setter("symlog", linthresh=float(e[e > 0].min()), linscale=0.5)
    else:
        setter(scale)
    return scale


def bin_positions(low: npt.ArrayLike, high: npt.ArrayLike, scale: str, *,
                  offset: float = 0.0) -> npt.NDArray[np.float64]:
    """Where to draw each bin's point: the middle of the bin as the axis shows it (geometric centre
    on a log or symlog axis for bins above 0, arithmetic otherwise). ``offset``, a fraction of the
    bin's drawn width, moves the point within the bin to keep several series apart."""
    lo = np.asarray(low, dtype=np.float64)
    hi = np.asarray(high, dtype=np.float64)
    linear = lo + (0.5 + offset) * (hi - lo)
    if scale == "linear":
        return linear
    geometric = lo > 0
    log_lo = np.log(np.where(geometric, lo, 1.0))
    log_hi = np.log(np.where(geometric, hi, 1.0))
    return np.where(geometric, np.exp(log_lo + (0.5 + offset) * (log_hi - log_lo)), linear)


def spacing_scale(edges: npt.ArrayLike) -> Literal["linear", "log"]:
    """``log`` for positive, log-spaced edges (a constant ratio) spanning more than a decade, such as
    :func:`numpy.geomspace` gives; ``linear`` otherwise. For grids whose spacing is known to be one or
    the other (2-D histograms), where :func:`axis_scale` would guess from the span alone."""
    e = np.asarray(edges, dtype=np.float64).reshape(-1)
    if e.size < 3 or not np.all(np.isfinite(e)) or np.any(e <= 0) or e[-1] / e[0] <= 10.0:
        return "linear"
    steps = np.diff(np.log(e))
    return "log" if np.allclose(steps, steps[0], rtol=1e-6) else "linear"


def with_unit(label: str, unit: str) -> str:
    """``"label (unit)"``, or the label alone for a dimensionless quantity (empty unit)."""
    return f"{label} ({unit})" if unit else label


def errorbar_points(
    ax: Axes,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    lo: npt.ArrayLike | None = None,
    hi: npt.ArrayLike | None = None,
    err: npt.ArrayLike | None = None,
    xerr: Sequence[npt.ArrayLike] | npt.ArrayLike | None = None,
    label: str,
    colour: str,
    marker: str = "o",
    filled: bool = True,
) -> None:
    """Points with vertical error bars, either asymmetric (``lo``/``hi`` interval bounds) or
    symmetric (``err``); points whose value is NaN (empty bins) are left out, NaN errors drawn as 0."""
    xv = np.asarray(x, dtype=np.float64)
    yv = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(yv) & np.isfinite(xv)
    if lo is not None and hi is not None:
        down = yv - np.asarray(lo, dtype=np.float64)
        up = np.asarray(hi, dtype=np.float64) - yv
    else:
        down = up = np.zeros_like(yv) if err is None else np.asarray(err, dtype=np.float64)
    yerr = np.nan_to_num(np.vstack([down[ok], up[ok]]), nan=0.0)
    xe = None
    if xerr is not None:
        xa = np.asarray(xerr, dtype=np.float64)
        xe = xa[..., ok]
    ax.errorbar(
        xv[ok], yv[ok], yerr=np.clip(yerr, 0.0, None), xerr=xe, fmt=marker, ms=4, capsize=2, lw=1, color=colour,
        label=label, mfc=colour if filled else "white",
    )
