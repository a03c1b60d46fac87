"""The report to share: one self-contained HTML file with everything a colleague needs to judge a run.

:func:`build_report` reads what the pipeline wrote and assembles, in this order: the headline
numbers of every task; the data (source, files with checksums, splits and composition:
``data/raw/MANIFEST.json``, ``data/shards/index.json``); the model and its tasks
(``data/model/model.json``, ``info/train.json``); the training (the DVCLive history under
``dvclive/plots/metrics`` drawn with matplotlib, the kept epoch's numbers from
``dvclive/metrics.json``); per task its test-split metrics with their statistical errors
(``metrics/test.json``, ``info/test.json``), its working point (``metrics/threshold.json``) and its
key figures (the PNGs the threshold and evaluate stages wrote under ``plots/``); the detector
systematics (``metrics/systematics.json``); and the change of every metric against its version at
a git revision with the judgement against the combined error (:mod:`nucvn.report.document_diff`).

The file is self-contained (:mod:`nucvn.report.document_html`): images are inlined as ``data:``
URIs, the style is inline, and there is no script and no external reference, so it opens offline,
from a mail attachment. :func:`write_report` replaces the file atomically. The DVC stage
``report`` (``stages/report.py``) calls both; the git comparison is made when it runs (DVC cannot
depend on git's HEAD).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from nucvn.core.atomic import atomic_write
from nucvn.core.errors import NucvnError
from nucvn.report.document_curves import OVERALL, curve_figures, figure_png, group_history, read_history
from nucvn.report.document_diff import Comparison, compare_with_git
from nucvn.report.document_html import esc, figure, file_figure, page, section
from nucvn.report.document_sections import (
    data_section,
    glance_table,
    model_section,
    systematics_section,
    task_section,
    training_section,
)
from nucvn.report.document_tables import change_table, pretty

__all__ = ["ReportInputs", "read_json", "task_figures", "build_report", "write_report"]

METRICS_FILES = ("test.json", "threshold.json", "systematics.json")
"""The pipeline's metrics files in ``metrics/`` (``dvclive/metrics.json`` is compared too)."""


@dataclass(frozen=True)
class ReportInputs:
    """Where the pipeline's outputs are (the defaults are the paths of ``dvc.yaml``)."""

    metrics: Path = Path("metrics")
    info: Path = Path("info")
    plots: Path = Path("plots")
    raw: Path = Path("data/raw")
    shards: Path = Path("data/shards")
    model: Path = Path("data/model")
    dvclive: Path = Path("dvclive")


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None if there is no such file; a broken file is a NucvnError naming it."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NucvnError(f"{path}: not readable JSON ({exc.__class__.__name__}); "
                         "rerun the stage that writes it") from exc
    if not isinstance(data, dict):
        raise NucvnError(f"{path}: expected a JSON object; rerun the stage that writes it")
    return data


def task_figures(plots: Path, task: str, names: Sequence[str] | None) -> tuple[list[Path], list[str]]:
    """The figure files of ``task`` and the requested names that do not exist.

    The working point scan ``plots/threshold/<task>.png`` comes first when there is one. ``names``
    are file stems under ``plots/evaluate/<task>/png`` (``"roc"``); a name with a folder
    (``"preselected/roc"``) is looked up in ``plots/evaluate/<task>/preselected/png``. ``None``
    takes every figure of ``plots/evaluate/<task>/png``.
    """
    found = [p for p in [plots / "threshold" / f"{task}.png"] if p.is_file()]
    base = plots / "evaluate" / task
    if names is None:
        return found + sorted((base / "png").glob("*.png")), []
    missing: list[str] = []
    for name in names:
        folder, _, stem = name.rpartition("/")
        path = base / folder / "png" / f"{stem}.png" if folder else base / "png" / f"{stem}.png"
        if path.is_file():
            found.append(path)
        else:
            missing.append(name)
    return found, missing


def _curves(inputs: ReportInputs, tasks: Sequence[str], footer: str, best: Mapping[str, Any] | None) -> str:
    groups = group_history(read_history(inputs.dvclive), tasks)
    best_epoch = (best or {}).get("best_epoch")
    figures = curve_figures(groups, footer=footer, best_step=float(best_epoch) if isinstance(best_epoch, (int, float))
                            and not isinstance(best_epoch, bool) else None)
    return "<div class='figures'>\n" + "\n".join(
        figure(figure_png(fig), "image/png", f"training curves: {group}", half=group != OVERALL)
        for group, fig in figures.items()) + "\n</div>" if figures else ""


def _caption(path: Path) -> str:
    return "threshold scan" if path.parent.name == "threshold" else pretty(path.stem)


def _change(comparison: Comparison | None) -> str:
    if comparison is None:
        return "<p>The comparison is switched off (report.compare_to is empty).</p>"
    intro = (f"<p>Each metrics file of the workspace against its version at <code>{esc(comparison.revision)}</code>"
             + (f", commit <code>{esc(comparison.commit)}</code>" if comparison.commit else "")
             + ", as <code>dvc metrics diff</code> shows it, with the change judged against the combined statistical "
               "error √(err₁² + err₂²) of the two values "
               "(README: \"Reading dvc metrics diff against the errors\"); "
               "rows outside it are highlighted. The revision is read when the report is built: DVC does not rebuild "
               "the report when git's HEAD moves, only when the pipeline's outputs change.</p>")
    if comparison.note:
        return intro + f"\n<p><strong>{esc(comparison.note)}</strong></p>"
    return intro + "\n" + change_table(comparison)


def build_report(inputs: ReportInputs = ReportInputs(), *, title: str = "nucvn: results of the pipeline",
                 tasks: Literal["all"] | Sequence[str] = "all", figures: Mapping[str, Sequence[str]] | None = None,
                 compare_to: str = "HEAD") -> str:
    """The report's HTML (see the module docstring).

    ``tasks``: ``"all"`` (every block of ``metrics/test.json``) or the blocks to show; ``figures``:
    task -> figure names (:func:`task_figures`; a task not in it shows all its figures);
    ``compare_to``: the git revision whose metrics files are compared ("" for none).
    """
    test_path = inputs.metrics / "test.json"
    test = read_json(test_path)
    if test is None:
        raise NucvnError(f"{test_path}: missing; run the evaluate stage first (dvc repro evaluate)")
    shown = list(test) if tasks == "all" else list(tasks)
    unknown = [t for t in shown if t not in test]
    if unknown:
        raise NucvnError(f"report.tasks: {', '.join(unknown)} not in {test_path}; known: {', '.join(test)}")
    model = read_json(inputs.model / "model.json")
    meta = {str(t.get("name")): t for t in (model or {}).get("tasks", []) if isinstance(t, Mapping)}
    manifest, index = read_json(inputs.raw / "MANIFEST.json"), read_json(inputs.shards / "index.json")
    info_train, info_test = read_json(inputs.info / "train.json"), read_json(inputs.info / "test.json") or {}
    threshold = read_json(inputs.metrics / "threshold.json") or {}
    source = str((manifest or {}).get("source", "unknown"))
    model_name = str((model or {}).get("model", "unknown"))
    footer = f"data: {source} | model: {model_name} | training history (DVCLive)"

    toc: list[tuple[str, str]] = []
    body: list[str] = []

    def add(anchor: str, heading: str, html: str) -> None:
        toc.append((anchor, heading))
        body.append(section(anchor, heading, html))

    kinds = {name: str(m.get("kind", "")) for name, m in meta.items()}
    add("summary", "At a glance", glance_table(test, kinds, shown))
    add("data", "Data: source and composition", data_section(manifest, index))
    add("model", "Model and tasks", model_section(model, info_train))
    live_best = read_json(inputs.dvclive / "metrics.json")
    curves = _curves(inputs, list(meta) or shown, footer, live_best)
    add("training", "Training", training_section(info_train, live_best, curves, list(meta)))
    for name in shown:
        paths, missing = task_figures(inputs.plots, name, (figures or {}).get(name))
        figs = "\n".join(file_figure(p, f"{name}: {_caption(p)} ({p.relative_to(inputs.plots).as_posix()})")
                         for p in paths)
        block = test[name] if isinstance(test[name], Mapping) else {}
        add(f"task-{name}", f"Task {name}" if name in meta else name,
            task_section(name, meta.get(name), block, info_test.get(name), threshold.get(name), figs, missing))
    systematics = read_json(inputs.metrics / "systematics.json")
    if systematics is not None:
        shifts = inputs.plots / "systematics" / "shifts.png"
        fig = file_figure(shifts, "detector systematics (plots/systematics/shifts.png)", half=False) \
            if shifts.is_file() else ""
        add("systematics", "Detector systematics",
            systematics_section(systematics, read_json(inputs.info / "systematics.json"), fig))
    compared = [inputs.metrics / f for f in METRICS_FILES] + [inputs.dvclive / "metrics.json"]
    comparison = compare_with_git(compared, revision=compare_to) if compare_to else None
    add("change", f"Change against the last committed metrics ({compare_to or 'off'})", _change(comparison))

    against = (f"compared against {compare_to} = {comparison.commit}" if comparison and comparison.commit
               else "no committed metrics to compare against" if comparison else "no comparison")
    head = (f"<h1>{esc(title)}</h1>\n<p class='lead'>Data: {esc(source)} · model: {esc(model_name)} · tasks: "
            f"{esc(', '.join(shown))} · {esc(against)}.</p>\n"
            "<p class='note'>Built by the nucvn report stage (<code>dvc repro report</code>) from the pipeline's "
            "outputs. Self-contained: every figure is inlined; it needs no network and no other file.</p>\n"
            "<nav><ul>" + "".join(f"<li><a href='#{esc(a)}'>{esc(h)}</a></li>" for a, h in toc) + "</ul></nav>")
    return page(title, head + "\n" + "\n".join(body))


def write_report(html: str, path: str | Path) -> Path:
    """Write the report atomically (a reader never sees half a file)."""
    return atomic_write(path, lambda p: p.write_text(html, encoding="utf-8"))
