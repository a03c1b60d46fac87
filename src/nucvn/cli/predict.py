"""``nucvn predict --model data/model --files 'path/*.h5' --out predictions.csv``: predict on new event files.

Every file is validated up front by :mod:`nucvn.data.h5io` (the same checks as the pipeline), then events
are read chunk by chunk (memory bounded by ``--batch-size``), passed through the trained model once
(:func:`nucvn.inference.predict`) and written to one CSV: ``file``, ``index`` (event number in its
file), the event identity keys the files carry (``run``, ``subrun``, ``evt``, ``cycle``,
``subevt``), then one column group per task (``--tasks``, default all of the model's; names from
:meth:`nucvn.tasks.base.Task.prediction_columns`: ``numu_cc_score``, ``flavour_p_<class>``,
``nuenergy_gev``, ``lepton_fraction_pred``, ...), with ``<task>_selected`` after each binary task's score
when a threshold is given; then the truth the files carry, for studies of the predictions: the
true ``label`` (1 = νμ CC), ``interaction``, and every other metadata key of the files (energies,
final state, vertex, particle counts of simulated files, ...) with the derived labels of
:mod:`nucvn.data.labels` (``flavour``, ``mode``, ``n_tracks``, ``n_showers``, ``lepton_fraction``;
a simulated file's own ``mode`` key becomes ``raw_mode``). Only keys every file carries are written.
A model whose ``model.safetensors`` differs from the sha256 in its ``model.json`` is refused
(:func:`nucvn.artifact.read_model_dir`), so damaged weights never produce scores.

``--backend onnxruntime --model model.onnx`` scores with the graph written by ``nucvn export``
(:class:`nucvn.deploy.onnx_runtime.OnnxModel`, on the CPU with ``--threads`` intra-op threads; its
sidecar ``model.onnx.json`` beside it, whose sha256 must match): the same tasks' post-processing
and :func:`nucvn.inference.prediction_table` make the same columns; no PyTorch model is built.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from nucvn.core.atomic import write_csv
from nucvn.core.errors import NucvnError
from nucvn.core.events import numu_cc
from nucvn.core.progress import progress_bar
from nucvn.data.h5io import open_events
from nucvn.data.labels import labelled_metadata
from nucvn.report.evaluation import IDENTITY_COLUMNS

if TYPE_CHECKING:
    from nucvn.tasks import Task  # imports torch: at run time only inside the backends

__all__ = ["add_arguments", "run", "read_thresholds"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, type=Path, help="trained model directory (model.json + "
                        "model.safetensors); with --backend onnxruntime the .onnx file of nucvn export")
    parser.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch",
                        help="torch (default): the model directory; onnxruntime: an exported .onnx (CPU)")
    parser.add_argument("--threads", type=int, help="onnxruntime: intra-op threads (default: all cores)")
    parser.add_argument("--files", required=True, nargs="+",
                        help="event files, directories or glob patterns (quote globs)")
    parser.add_argument("--out", required=True, type=Path, help="CSV to write (written atomically)")
    parser.add_argument("--batch-size", type=int, default=256, help="events per forward pass (default 256)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="default: auto (CUDA if available)")
    parser.add_argument("--tasks", help="comma-separated tasks to predict (default: all of the model's)")
    parser.add_argument("--threshold", help="a number, or a JSON file such as metrics/threshold.json ({task: "
                        "{threshold: t}}, or the older {threshold: t}): adds '<task>_selected' (score >= threshold) "
                        "for each binary task")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def read_thresholds(value: str, binary: list[str]) -> dict[str, float]:
    """``--threshold`` for each of the ``binary`` tasks: a number (for all of them), or the path
    of a JSON file holding ``{task: {"threshold": t}}`` (the threshold stage's) or the older
    single-task ``{"threshold": t}`` (for all of them); each value in [0, 1]."""
    try:
        number: float | None = float(value)
    except ValueError:
        number = None
    if number is not None:
        found = dict.fromkeys(binary, number)
    else:
        try:
            data = json.loads(Path(value).read_text())
            if isinstance(data, dict) and "threshold" in data:
                found = {name: float(data["threshold"]) for name in binary}
            else:
                found = {name: float(data[name]["threshold"]) for name in binary if name in data}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise NucvnError(f"--threshold {value!r}: neither a number nor a JSON file with a threshold per task "
                             f"({{\"<task>\": {{\"threshold\": t}}}}) ({exc})") from exc
        lacking = [n for n in binary if n not in found]
        if lacking:
            raise NucvnError(f"--threshold {value}: no threshold for task {lacking[0]}; rerun the threshold stage "
                             f"(dvc repro threshold) or leave the task out with --tasks")
    for name, t in found.items():
        if not 0.0 <= t <= 1.0:
            raise NucvnError(f"--threshold must lie in [0, 1], got {t} for task {name}")
    return found


Scorer = Callable[[np.ndarray, Sequence[str]], dict[str, np.ndarray]]


def _torch_backend(args: argparse.Namespace) -> tuple[list[Task], Scorer, str]:
    """``(tasks, images -> predictions, description)`` of a model directory under PyTorch."""
    from nucvn.inference import load_model, predict  # torch loads only once the files are valid

    if args.model.suffix == ".onnx":
        raise NucvnError(f"--model {args.model}: an exported ONNX graph; score it with --backend onnxruntime")
    if args.threads is not None:
        raise NucvnError("--threads is an onnxruntime option; PyTorch takes its threads from OMP_NUM_THREADS")
    model, config = load_model(args.model)
    return (list(model.tasks),
            lambda images, names: predict(model, config, [images], tasks=names, batch_size=args.batch_size,
                                          device=args.device, progress=False),
            f"model {config['model']}")


def _onnx_backend(args: argparse.Namespace) -> tuple[list[Task], Scorer, str]:
    """The same for an exported ``.onnx`` under ONNX Runtime (CPU)."""
    from nucvn.deploy.onnx_runtime import OnnxModel

    if args.device == "cuda":
        raise NucvnError("--backend onnxruntime runs on the CPU; leave out --device cuda (or use --backend torch)")
    session = OnnxModel(args.model, threads=args.threads)
    quantized = (session.sidecar.get("quantization") or {}).get("type", "float32")
    return (list(session.tasks),
            lambda images, names: session.predict([images], tasks=names, batch_size=args.batch_size, progress=False),
            f"ONNX {session.sidecar['source']['model']} ({quantized}, onnxruntime)")


def run(args: argparse.Namespace) -> int:
    if args.batch_size <= 0:
        raise NucvnError(f"--batch-size must be positive, got {args.batch_size}")
    reader = open_events(args.files)
    from nucvn.inference import prediction_table

    all_tasks, predict, described = (_onnx_backend if args.backend == "onnxruntime" else _torch_backend)(args)
    task_names = [t.name for t in all_tasks]
    names = [n.strip() for n in args.tasks.split(",") if n.strip()] if args.tasks else task_names
    unknown = [n for n in names if n not in task_names]
    if unknown or not names:
        raise NucvnError(f"--tasks: the model in {args.model} has no task {unknown[0] if unknown else ''!r}; "
                         f"its tasks: {','.join(task_names)}")
    tasks = [t for n in names for t in all_tasks if t.name == n]
    binary = [t.name for t in tasks if t.kind == "binary"]
    thresholds = {} if args.threshold is None else read_thresholds(args.threshold, binary)
    keys = list(reader.common_keys())
    frames: list[pd.DataFrame] = []
    with progress_bar(total=reader.n_events, unit="event", unit_scale=True, desc="predict",
                      disable=args.no_progress) as bar:
        for chunk in reader.iter_chunks(args.batch_size, keys=keys):
            assert chunk.images is not None  # iter_chunks reads the images unless told not to
            preds = predict(chunk.images, names)
            ident = pd.DataFrame({"file": str(chunk.path), "index": np.arange(chunk.start, chunk.start + len(chunk))})
            for k in IDENTITY_COLUMNS[2:]:
                if k in chunk.meta.columns:
                    ident[k] = chunk.meta[k].to_numpy()
            frame = prediction_table(ident, preds, tasks)
            for t in tasks:
                if t.name in thresholds:
                    after = frame.columns.get_loc(t.prediction_columns()[-1]) + 1
                    frame.insert(after, f"{t.name}_selected", (preds[t.name] >= thresholds[t.name]).astype(np.int8))
            frame["label"] = numu_cc(chunk.meta["interaction"]).astype(np.int8)
            frame["interaction"] = chunk.meta["interaction"].to_numpy()
            truth = labelled_metadata(chunk.meta, file=str(chunk.path), start=chunk.start)
            truth = truth.drop(columns=[c for c in (*IDENTITY_COLUMNS, "numu_cc", "interaction") if c in truth.columns])
            frame = pd.concat([frame, truth], axis=1)
            frames.append(frame)
            bar.update(len(chunk))
    out = write_csv(pd.concat(frames, ignore_index=True), args.out)
    print(f"predict: {reader.n_events} events from {len(reader.files)} file(s), tasks {','.join(names)}, "
          f"{described}; wrote {out}")
    return 0
