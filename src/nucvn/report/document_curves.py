"""The training curves of the report, read from DVCLive's files and drawn with matplotlib.

DVCLive writes one tab-separated file per logged metric under ``<dir>/plots/metrics/``, named by
the metric (``val_loss.tsv``; a metric logged as ``numu_cc/val_auc`` lands in
``numu_cc/val_auc.tsv``), with the columns ``step``, the metric's last name, and optionally
``timestamp``. :func:`read_history` walks that folder; :func:`group_history` groups the series
by task (a path component that names a task; the rest is "all tasks"); :func:`curve_figures` draws
one figure per group with the losses on the left and the other validation numbers on the right
(the train stage logs one step per epoch, counted from 1 like ``best_epoch`` of ``metrics.json``),
following the project's figure conventions (:mod:`nucvn.report.task_figures`: footer with the data
source, "NOvA-like simulation" label). The report inlines them as PNG (:func:`figure_png`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.ticker import MaxNLocator

from nucvn.core.errors import NucvnError
from nucvn.report.plots import add_footer
from nucvn.report.task_figures import headroom, label_simulation

__all__ = ["Series", "OVERALL", "read_history", "group_history", "curve_figures", "figure_png"]

OVERALL = "all tasks"
"""Group of the series that name no task (the summed loss, the headline numbers)."""


@dataclass(frozen=True)
class Series:
    """One logged metric: its DVCLive name (``numu_cc/val_auc``) and values per step."""

    name: str
    step: npt.NDArray[np.float64]
    value: npt.NDArray[np.float64]


def _read_tsv(path: Path, name: str) -> Series:
    try:
        table = pd.read_csv(path, sep="\t")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise NucvnError(f"{path}: cannot read this DVCLive metric file ({exc.__class__.__name__}); "
                         "rerun the train stage (dvc repro train)") from exc
    columns = [c for c in table.columns if c not in ("step", "timestamp")]
    if "step" not in table.columns or len(columns) != 1:
        raise NucvnError(f"{path}: expected DVCLive's columns step and one metric, got {list(table.columns)}; "
                         "rerun the train stage (dvc repro train)")
    step = pd.to_numeric(table["step"], errors="coerce").to_numpy(dtype=np.float64)
    value = pd.to_numeric(table[columns[0]], errors="coerce").to_numpy(dtype=np.float64)
    return Series(name, step, value)


def read_history(dvclive_dir: str | Path) -> list[Series]:
    """Every ``*.tsv`` under ``dvclive_dir/plots/metrics``, sorted by name; [] when there is none."""
    root = Path(dvclive_dir) / "plots" / "metrics"
    if not root.is_dir():
        return []
    return [_read_tsv(p, p.relative_to(root).with_suffix("").as_posix()) for p in sorted(root.rglob("*.tsv"))]


def group_history(series: Sequence[Series], tasks: Sequence[str]) -> dict[str, list[tuple[str, Series]]]:
    """Series by task: ``{task or OVERALL: [(label, series)]}``, the label being the name without the
    task component (``numu_cc/val_auc`` -> ``val_auc`` under ``numu_cc``). Overall comes first,
    then the tasks in the order given."""
    groups: dict[str, list[tuple[str, Series]]] = {}
    for s in series:
        parts = s.name.split("/")
        task = next((p for p in parts if p in tasks), None)
        label = "/".join(p for p in parts if p != task) if task else s.name
        groups.setdefault(task or OVERALL, []).append((label or s.name, s))
    order = [OVERALL, *tasks]
    return {g: groups[g] for g in order if g in groups}


def _is_loss(label: str) -> bool:
    return "loss" in label.lower() and "per_s" not in label


def curve_figures(groups: dict[str, list[tuple[str, Series]]], *, footer: str = "",
                  best_step: float | None = None) -> dict[str, Figure]:
    """One figure per group: losses (left panel), the other numbers (middle) and rates in events/s
    (right, if any), against the step (the epoch in the train stage's history); a dotted line marks
    ``best_step`` (the epoch whose weights were kept) when given."""
    figures: dict[str, Figure] = {}
    for group, members in groups.items():
        rates = [m for m in members if "per_s" in m[0]]
        panels = [("loss", [m for m in members if _is_loss(m[0])]),
                  ("value on the validation split", [m for m in members if not _is_loss(m[0]) and m not in rates]),
                  ("events per second", rates)]
        panels = [p for p in panels if p[1]]
        width = 4.2 if group == OVERALL else 3.0  # the tasks' figures go two to a row
        fig, grid = plt.subplots(1, len(panels), figsize=(width * len(panels) + 0.6, 3.9), squeeze=False,
                                 layout=ConstrainedLayoutEngine(h_pad=0.12))  # h_pad: room for the footer
        add_footer(fig, footer)
        axes = grid[0]
        for ax, (ylabel, lines) in zip(axes, panels, strict=True):
            for i, (label, s) in enumerate(lines):
                ok = np.isfinite(s.step) & np.isfinite(s.value)
                ax.plot(s.step[ok], s.value[ok], marker="o", ms=3, lw=1.2, color=f"C{i % 10}", label=label)
            if best_step is not None:
                ax.axvline(best_step, ls=":", color="0.4", lw=1, label="best epoch (weights kept)")
            ax.set_xlabel("epoch (DVCLive step)")
            ax.set_ylabel(ylabel)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)  # off the data
            headroom(ax, 0.15)  # room for the label above the curves
            label_simulation(ax)
        fig.suptitle(f"training: {group}", fontsize=10)
        figures[group] = fig
    return figures


def figure_png(fig: Figure, *, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (in memory); the figure is closed."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return buffer.getvalue()
