"""The report's number tables: a metrics block with its errors, and the change against git.

A block of ``metrics/*.json`` is shown as the file gives it: ``x`` with ``x_err`` as
``value ± error``, ``x`` with ``x_lo``/``x_hi`` as ``value [lo, hi]`` (both rounded to the error's
precision, :mod:`nucvn.report.document_numbers`), plain numbers with four significant digits. A
nested block of blocks (``per_class``: class -> efficiency, purity) becomes one table with a row
per entry; any other nested block (``preselected``) its own table under a heading.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nucvn.report.document_diff import Comparison
from nucvn.report.document_html import esc, table
from nucvn.report.document_numbers import (
    MISSING,
    format_change,
    format_error,
    format_interval,
    format_number,
    format_with_error,
)

__all__ = ["pretty", "format_metric", "metric_names", "matrix_table", "metrics_tables", "count_table", "change_table"]

_COMPANIONS = ("_err", "_lo", "_hi", "_nsigma")


def pretty(name: str) -> str:
    """A key as words: ``balanced_accuracy`` -> ``balanced accuracy``."""
    return name.replace("_", " ")


def _scalar(v: object) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def _signed(name: str) -> bool:
    return any(w in name for w in ("bias", "shift", "change"))


def format_metric(block: Mapping[str, Any], name: str) -> str:
    """``block[name]`` with its error from ``name_err`` or ``name_lo``/``name_hi``."""
    value = block.get(name)
    if f"{name}_err" in block:
        return format_with_error(value, block[f"{name}_err"], signed=_signed(name))
    if f"{name}_lo" in block and f"{name}_hi" in block:
        return format_interval(value, block[f"{name}_lo"], block[f"{name}_hi"])
    return format_number(value, signed=_signed(name) and value != 0)


def metric_names(block: Mapping[str, Any]) -> list[str]:
    """The scalar keys of ``block`` that are metrics, not the error companions of one."""
    return [k for k, v in block.items() if _scalar(v)
            and not any(k.endswith(s) and k[: -len(s)] in block for s in _COMPANIONS)]


def _is_matrix(block: Mapping[str, Any]) -> bool:
    return bool(block) and all(isinstance(v, Mapping) and v and all(_scalar(x) for x in v.values())
                               for v in block.values())


def matrix_table(block: Mapping[str, Mapping[str, Any]], row_title: str) -> str:
    """One table of a block of blocks: a row per entry, a column per metric any of them has."""
    columns: list[str] = []
    for sub in block.values():
        columns += [c for c in metric_names(sub) if c not in columns]
    rows = [[name, *(format_metric(sub, c) if c in sub else "" for c in columns)] for name, sub in block.items()]
    return table([row_title, *(pretty(c) for c in columns)], rows)


def metrics_tables(block: Mapping[str, Any], *, title: str = "") -> str:
    """HTML tables of one metrics block (a task's entry of ``metrics/test.json``), recursively."""
    parts = []
    if title:
        parts.append(f"<h4>{esc(title)}</h4>")
    names = metric_names(block)
    if names:
        parts.append(table(["quantity", "value"], [[pretty(n), format_metric(block, n)] for n in names]))
    for key, sub in block.items():
        if not isinstance(sub, Mapping):
            continue
        if _is_matrix(sub):
            parts.append(f"<h4>{esc(pretty(key))}</h4>" + matrix_table(sub, "class" if key == "per_class" else key))
        else:
            parts.append(metrics_tables(sub, title=f"{title} / {pretty(key)}" if title else pretty(key)))
    return "\n".join(parts)


def count_table(info: Mapping[str, Any]) -> str:
    """The top-level counts (``n``, ``n_*``) of a task's ``info/test.json`` entry, one row; '' if none."""
    counts = {k: v for k, v in info.items() if (k == "n" or k.startswith("n_")) and isinstance(v, int)
              and not isinstance(v, bool)}
    if not counts:
        return ""
    return table(["events" if k == "n" else pretty(k.removeprefix("n_")) for k in counts],
                 [[format_number(v) for v in counts.values()]], caption="events")



def _verdict(row_nsigma: float | None, sigma: float | None) -> str:
    if sigma is None:
        return "no error given"
    if row_nsigma is None:
        return MISSING
    if row_nsigma <= 1.0:
        return f"yes ({row_nsigma:.1f}σ)"
    return f"no ({row_nsigma:.1f}σ)"


def change_table(comparison: Comparison, *, max_rows: int = 400) -> str:
    """The changed numbers: file, metric, old, new, change, combined error and whether the change is
    inside it; rows outside their error are highlighted. Followed by the per-file status."""
    parts = []
    rows, flags = [], []
    for r in comparison.rows[:max_rows]:
        change = r.change
        rows.append([r.file, r.metric, format_change(r.old, r.sigma, signed=False),
                     format_change(r.new, r.sigma, signed=False),
                     format_change(change, r.sigma) if change is not None else "added" if r.old is None else "removed",
                     format_error(r.sigma) if r.sigma is not None else MISSING, _verdict(r.nsigma, r.sigma)])
        flags.append(r.inside_error is False)
    if rows:
        parts.append(table(["file", "metric", f"at {comparison.revision}", "workspace", "change", "combined error",
                            "inside the error?"], rows, flags=flags))
        if len(comparison.rows) > max_rows:
            parts.append(f"<p class='note'>… and {len(comparison.rows) - max_rows} more changed numbers.</p>")
    elif comparison.files:
        parts.append(f"<p>No metric differs from {esc(comparison.revision)} "
                     f"({comparison.unchanged} numbers compared).</p>")
    if comparison.files:
        parts.append(table(["metrics file", "compared"], [[k, v] for k, v in comparison.files.items()]))
    return "\n".join(parts)

