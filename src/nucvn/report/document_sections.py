"""The report's sections, each from the pipeline's own files: data, model, training, tasks, systematics.

Every function takes the parsed JSON of the files it describes (``None`` when the file is absent,
which gives a sentence instead of the section's numbers) and returns HTML built with
:mod:`nucvn.report.document_html`. Nothing is computed here that the stages did not write: the
report shows the pipeline's numbers, it does not re-derive them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nucvn.report.document_html import details, esc, table
from nucvn.report.document_numbers import format_number, format_with_error
from nucvn.report.document_tables import count_table, format_metric, matrix_table, metrics_tables, pretty

__all__ = ["glance_table", "data_section", "model_section", "training_section", "task_section", "systematics_section"]

_HEADLINE = ("auc", "balanced_accuracy", "accuracy", "efficiency", "purity", "resolution_68", "bias")
_SOURCES = {"sim": "the nucvn fast simulation (NOvA-like events in the format of the UCL/NOvA files)",
            "url": "the UCL/NOvA files, downloaded", "dir": "event files read in place from a directory"}


def _p(text: str, cls: str = "") -> str:
    return f"<p class='{cls}'>{esc(text)}</p>" if cls else f"<p>{esc(text)}</p>"


def _mb(n: object) -> str:
    return f"{n / 1e6:,.1f} MB" if isinstance(n, (int, float)) else "—"


def _text(value: object) -> str:
    return value if isinstance(value, str) else format_number(value)


def _leaves(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Every leaf of nested ``data`` as text, by dotted key (numbers, flags, names and lists alike)."""
    out: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = ", ".join(map(str, value)) if isinstance(value, list) else _text(value)
    return out


def glance_table(test: Mapping[str, Any], kinds: Mapping[str, str], tasks: Sequence[str]) -> str:
    """One row per task: its kind and up to three headline numbers with their errors."""
    rows = []
    for name in tasks:
        block = test.get(name)
        if not isinstance(block, Mapping):
            continue
        keys = [k for k in _HEADLINE if k in block][:3]
        rows.append([name, kinds.get(name, ""), "; ".join(f"{pretty(k)} {format_metric(block, k)}" for k in keys)])
    return table(["task", "kind", "headline numbers (test split)"], rows)


def data_section(manifest: Mapping[str, Any] | None, index: Mapping[str, Any] | None) -> str:
    """Where the events came from (``data/raw/MANIFEST.json``) and how they were split (``index.json``)."""
    parts = []
    if manifest is None:
        parts.append(_p("No data/raw/MANIFEST.json was found: the data source is unknown.", "note"))
    else:
        source, params = str(manifest.get("source", "unknown")), manifest.get("parameters") or {}
        files = [f for f in manifest.get("files", []) if isinstance(f, Mapping)]
        n_events = sum(int(f.get("n_events", 0)) for f in files)
        parts.append(_p(f"Source: {source}, {_SOURCES.get(source, 'unknown source')}. {len(files)} files, "
                        f"{n_events:,} events, {_mb(sum(int(f.get('size', 0)) for f in files))}."))
        if source == "sim":
            parts.append(_p(f"Simulated with {params.get('files')} files × {params.get('events')} events, "
                            f"seed {params.get('seed')}; simulation code fingerprint "
                            f"{str(params.get('code', '?'))[:16]}…"))
            comp = params.get("composition") or {}
            parts.append(table(["category", "fraction generated"], [[k, format_number(v)] for k, v in comp.items()]))
            detector = params.get("detector") or {}
            if detector:
                rows = [[k, format_number(v)] for k, v in detector.items()]
                parts.append(details("detector response of the simulation (every parameter)",
                                     table(["parameter", "value"], rows)))
        elif source == "url":
            parts.append(_p(f"Downloaded from {params.get('base', '?')}, files {params.get('files', '?')}."))
        elif source == "dir":
            parts.append(_p(f"Read in place from {params.get('path', '?')}, files {params.get('files', '?')}."))
        where = "url" if source == "url" else "path" if source == "dir" else None
        header = ["file", "events", "bytes", "sha256", *([where] if where else [])]
        rows = [[f.get("name", "?"), format_number(f.get("n_events")), format_number(f.get("size")),
                 f.get("sha256", "?"), *([f.get(where, "")] if where else [])] for f in files]
        parts.append(details(f"the {len(files)} files with their checksums (data/raw/MANIFEST.json)",
                             table(header, rows)))
    if index is None:
        parts.append(_p("No data/shards/index.json was found: split sizes unknown.", "note"))
        return "\n".join(parts)
    splits = index.get("counts") or {}
    classes: list[str] = []
    for c in splits.values():
        classes += [k for k in (c.get("flavour") or {}) if k not in classes]
    used = (index.get("params") or {}).get("split_used") or {}
    rows = [[name, format_number(c.get("events")), format_number(used.get(name)),
             *(format_number((c.get("flavour") or {}).get(k, 0)) for k in classes)] for name, c in splits.items()]
    parts.append("<h3>Splits and composition</h3>")
    parts.append(table(["split", "events", "fraction", *classes], rows,
                       caption="events per split and true category (data/shards/index.json)"))
    sel = index.get("selection") or {}
    dropped = ", ".join(f"{k} {v:,}" for k, v in (sel.get("dropped") or {}).items())
    skipped, dup = index.get("skipped") or [], (index.get("duplicates") or {}).get("files") or []
    parts.append(_p(f"Preprocess selection: {sel.get('events_in', 0):,} events in, {sel.get('events_out', 0):,} kept "
                    f"(dropped: {dropped or 'none'}); skipped files: {len(skipped)}; "
                    f"duplicate files dropped: {len(dup)}. "
                    f"Shards: {index.get('format', '?')} version {index.get('version', '?')}, "
                    f"split seed {(index.get('params') or {}).get('seed', '?')}."))
    return "\n".join(parts)


def model_section(model: Mapping[str, Any] | None, info_train: Mapping[str, Any] | None) -> str:
    """The network, its tasks and how it was trained (``data/model/model.json``, ``info/train.json``)."""
    if model is None:
        return _p("No data/model/model.json was found: the model is unknown.", "note")
    info = info_train or {}
    inp, weights = model.get("input") or {}, model.get("weights") or {}
    shape = "×".join(str(s) for s in inp.get("shape", []))
    n_par = f"{info['n_parameters']:,} parameters, " if isinstance(info.get("n_parameters"), int) else ""
    parts = [_p(f"Model {model.get('model', '?')} ({n_par}one head per task): input {shape} {inp.get('dtype', '')} "
                f"images in the layout {inp.get('layout', '?')}, pixels scaled by {inp.get('scale', '?')}. Weights "
                f"{weights.get('file', '?')}, {format_number(weights.get('bytes'))} bytes, "
                f"sha256 {weights.get('sha256', '?')}.")]
    kwargs = model.get("model_kwargs") or {}
    if kwargs:
        parts.append(table(["size argument", "value"], [[k, format_number(v) if not isinstance(v, str) else v]
                                                         for k, v in kwargs.items()]))
    loss = model.get("loss") or {}
    weights_by_task = loss.get("weights") or {}
    rows = [[t.get("name", "?"), t.get("kind", "?"), ", ".join(str(c) for c in t.get("classes") or []) or "—",
             t.get("unit") or "—", t.get("head", ""), format_number(weights_by_task.get(t.get("name"))),
             t.get("definition", "")] for t in model.get("tasks") or [] if isinstance(t, Mapping)]
    parts.append("<h3>Tasks</h3>")
    parts.append(table(["task", "kind", "classes", "unit", "head", "loss weight", "defined as"], rows))
    parts.append(_p(f"Loss weighting: {loss.get('weighting', '?')}.", "note"))
    train = dict(model.get("train_params") or {})
    chosen = (train.pop("model_kwargs", None) or {}).get(str(model.get("model")), {})
    train_rows = [[k, v] for k, v in _leaves(train).items()]
    if chosen:
        train_rows.append([f"model_kwargs.{model.get('model')}", ", ".join(f"{k}={v}" for k, v in chosen.items())])
    parts.append(details("every training parameter (model.json train_params)",
                         table(["parameter", "value"], train_rows)))
    versions = model.get("versions") or {}
    parts.append(_p("Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".", "note"))
    return "\n".join(parts)


def training_section(info_train: Mapping[str, Any] | None, best: Mapping[str, Any] | None, curves_html: str,
                     tasks: Sequence[str]) -> str:
    """Bookkeeping of the run, the metrics of the kept epoch (``dvclive/metrics.json``) and the curves."""
    parts = []
    if info_train:
        keys = [k for k, v in info_train.items() if not isinstance(v, (list, Mapping))]
        parts.append(table([pretty(k) for k in keys], [[_text(info_train[k]) for k in keys]],
                           caption="the training run (info/train.json)"))
    if best:
        top = {k: v for k, v in best.items() if not isinstance(v, Mapping) and k != "step"}  # step: DVCLive's own
        per_task = {k: v for k, v in best.items() if isinstance(v, Mapping)}
        parts.append("<h3>Validation numbers of the kept weights (dvclive/metrics.json)</h3>")
        if top:
            parts.append(table(["quantity", "value"], [[pretty(k), format_number(v)] for k, v in top.items()]))
        if per_task:
            ordered = {t: per_task[t] for t in [*tasks, *per_task] if t in per_task}
            parts.append(matrix_table(ordered, "task"))
    else:
        parts.append(_p("No dvclive/metrics.json was found: the validation numbers of the kept weights are not shown.",
                        "note"))
    parts.append("<h3>Training curves (DVCLive history)</h3>")
    parts.append(curves_html or _p("No training history was found under dvclive/plots/metrics.", "note"))
    return "\n".join(parts)


def task_section(name: str, meta: Mapping[str, Any] | None, test: Mapping[str, Any], info: Mapping[str, Any] | None,
                 threshold: Mapping[str, Any] | None, figures_html: str, missing: Sequence[str]) -> str:
    """One task: what it predicts, its test-split numbers with errors, its working point, its figures."""
    parts = []
    if meta:
        parts.append(_p(f"{meta.get('kind', '')} task: {meta.get('definition', '')}", "lead"))
    elif name == "preselection":
        parts.append(_p("The preselection cuts (evaluate.preselection: fiducial vertex, containment, minimum hits): "
                        "the fraction of each true category they keep.", "lead"))
    if info:
        parts.append(count_table(info))
    parts.append(_p("Test split. value ± error: the statistical error (1σ); value [lo, hi]: the 68.27 % "
                    "Clopper-Pearson interval.", "note"))
    parts.append(metrics_tables(test))
    if threshold:
        parts.append("<h4>working point (chosen on the validation split, metrics/threshold.json)</h4>")
        parts.append(table(["quantity", "value"], [[pretty(k), format_number(v)] for k, v in threshold.items()
                                                   if not isinstance(v, Mapping)]))
    if figures_html:
        parts.append(f"<div class='figures'>\n{figures_html}\n</div>")
    if missing:
        parts.append(_p("Not drawn for this run (no such figure): " + ", ".join(missing) + ".", "note"))
    return "\n".join(parts)


_SHIFTS = (("efficiency", "νμ CC efficiency"), ("purity", "purity"), ("nc_misid", "NC mis-identification"))


def _points(block: Mapping[str, Any], key: str) -> str:
    shift, err = block.get(f"{key}_shift"), block.get(f"{key}_shift_err")
    if not isinstance(shift, (int, float)):
        return "—"
    return format_with_error(100 * shift, 100 * err if isinstance(err, (int, float)) else None, signed=True)


def systematics_section(metrics: Mapping[str, Any], info: Mapping[str, Any] | None, figure_html: str) -> str:
    """The detector variations: shift of each quantity, varied − nominal, in percentage points."""
    variations = (info or {}).get("variations") or {}
    nominal = metrics.get("nominal") or {}
    parts = [_p(f"Nominal sample ({format_number((info or {}).get('events'))} events, seed "
                f"{(info or {}).get('seed', '?')}, preselection and the chosen threshold applied): "
                + "; ".join(f"{label} {format_metric(nominal, key)}" for key, label in _SHIFTS if key in nominal)
                + ".")]
    rows = []
    for name, block in metrics.items():
        if name == "nominal" or not isinstance(block, Mapping):
            continue
        label = (variations.get(name) or {}).get("label", name)
        rows.append([label, *(_points(block, k) for k, _ in _SHIFTS)])
    parts.append(table(["variation", *(f"Δ {label} (points)" for _, label in _SHIFTS)], rows,
                       caption="varied − nominal on the same events, ± the paired statistical error"))
    if figure_html:
        parts.append(f"<div class='figures'>\n{figure_html}\n</div>")
    return "\n".join(parts)
