"""A trained model directory -> ``model.onnx`` plus its JSON sidecar ``model.onnx.json``.

The graph takes the raw event, ``uint8`` ``(batch, 2, 100, 80)`` = ``[view][plane][cell]`` (the
event files' ``cvnmap[i].reshape(2, 100, 80)``), under the input name ``images``; the pixel scaling
recorded in ``model.json`` (:func:`nucvn.models.scale_pixels`) is inside the graph, so a C++ user
feeds the ADC bytes as they are and cannot scale them differently from training. It has one output
per task head, named after the task, in ``model.json``'s task order, holding the head's raw output
(a logit, logits over the classes, or the regression head's value) exactly as
:class:`nucvn.tasks.MultiTaskNet` returns it; the batch axis is dynamic. What turns each output
into the prediction columns (sigmoid, softmax, exp, ...) stays in :meth:`nucvn.tasks.base.Task.predict`
and is *described* in the sidecar: :func:`_postprocess` checks the description against
``Task.predict`` at export, so the text cannot drift from the code.

The sidecar (:func:`write_sidecar`, the one writer; :func:`read_sidecar`, the one reader) records
the format and version, the ``.onnx`` file's byte count and **sha256** (a file that differs is
refused in one line, as :mod:`nucvn.artifact` refuses changed weights), the input (name, shape,
dtype, layout, scaling), the tasks in output order (kind, classes, unit, prediction columns, the
output's shape and meaning), the source model (directory, backbone, the sha256 of its
``model.safetensors`` from ``model.json``), the opset, the quantisation (none here; see
:mod:`nucvn.deploy.quantize`) and the library versions. The ``.onnx`` is written first, then the
sidecar, each atomically: an interruption between the two leaves a sidecar whose hash refuses the
new graph.

The graph comes from PyTorch's TorchScript-based exporter (``torch.onnx.export(dynamo=False)``):
for this network (convolutions, pooling, linear layers) it gives a plain graph with the batch norms
folded into the convolutions in about a second, where the ``torch.export``-based exporter took 14 s
and warns from inside torch. Batch-norm statistics and dropout are in evaluation mode.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nucvn.core.atomic import atomic_write, write_json
from nucvn.core.errors import NucvnError
from nucvn.core.events import IMAGE_SHAPE
from nucvn.models import INPUT_LAYOUT, scale_pixels
from nucvn.tasks import MultiTaskNet, Task, create_tasks

__all__ = ["SIDECAR_FORMAT", "SIDECAR_VERSION", "INPUT_NAME", "DEFAULT_OPSET", "sidecar_path", "export_onnx",
           "describe_tasks", "write_sidecar", "read_sidecar", "sidecar_tasks", "library_versions"]

SIDECAR_FORMAT = "nucvn-onnx"
SIDECAR_VERSION = 1
INPUT_NAME = "images"
DEFAULT_OPSET = 17
_SCALINGS: dict[str, tuple[str, Any]] = {
    "div255": ("x / 255", lambda x: x / 255.0),
    "log1p": ("log(1 + x) / log(256)", lambda x: np.log1p(x) / math.log(256.0)),
}
"""Pixel scaling name -> (formula for the sidecar, the same in numpy, checked against scale_pixels)."""
_REEXPORT = "export it again (nucvn export --model DIR --format onnx --out FILE)"


def sidecar_path(onnx_path: str | Path) -> Path:
    """The sidecar of ``model.onnx``: ``model.onnx.json`` beside it."""
    p = Path(onnx_path)
    return p.with_name(p.name + ".json")


class _RawEventsNet(nn.Module):
    """``uint8`` events in, the tuple of task-head outputs out (the graph that is exported)."""

    def __init__(self, model: MultiTaskNet, scale: str) -> None:
        super().__init__()
        self.model = model
        self.scale = scale

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.model(scale_pixels(images, self.scale))  # type: ignore[arg-type]
        return tuple(outputs[name] for name in self.model.task_names)


def _scaling(scale: str) -> dict[str, Any]:
    if scale not in _SCALINGS:
        raise NucvnError(f"model.json: pixel scaling {scale!r} has no ONNX description; known: {', '.join(_SCALINGS)}")
    formula, numpy_version = _SCALINGS[scale]
    x = np.arange(256, dtype=np.float64)
    if not np.allclose(numpy_version(x), scale_pixels(torch.arange(256, dtype=torch.uint8), scale).numpy(), atol=1e-6):  # type: ignore[arg-type]
        raise NucvnError(f"the description {formula!r} of pixel scaling {scale!r} no longer matches "
                         "nucvn.models.scale_pixels; update nucvn.deploy.onnx_export")
    return {"name": scale, "in_graph": True, "formula": formula,
            "description": f"done inside the graph: feed raw uint8 pixels x; the network sees float32 {formula}"}


def _postprocess(task: Task) -> tuple[str, str]:
    """``(name, meaning)`` of what :meth:`Task.predict` does to the task's head output, found by
    trying the candidates on probe values (so the sidecar describes the code, never a copy of it)."""
    cols = task.prediction_columns()
    if task.n_outputs > 1:
        probe = torch.linspace(-4.0, 4.0, 3 * task.n_outputs).reshape(3, task.n_outputs)
        if torch.allclose(task.predict(probe), torch.softmax(probe, dim=1), atol=1e-6):
            return "softmax", (f"logits over the classes {', '.join(task.classes)} (in that order); probabilities = "
                               f"softmax over axis 1: columns {', '.join(cols)}")
    else:
        probe = torch.linspace(-4.0, 4.0, 9)
        unit = f" in {task.unit}" if task.unit else ""
        what = "logit" if task.kind == "binary" else "pre-activation"
        candidates = {
            "sigmoid": (torch.sigmoid, f"{what}; {cols[0]} = 1 / (1 + exp(-output))"),
            "exp": (torch.exp, f"natural log of the value; {cols[0]} = exp(output){unit}"),
            "identity": (lambda t: t, f"{cols[0]} = output{unit}"),
        }
        for name, (fn, meaning) in candidates.items():
            if torch.allclose(task.predict(probe), fn(probe), atol=1e-6):
                return name, meaning
    raise NucvnError(f"task {task.name}: its Task.predict is none of softmax, sigmoid, exp, identity, so the sidecar "
                     "cannot describe its output; add the description to nucvn.deploy.onnx_export._postprocess")


def describe_tasks(tasks: Sequence[Task]) -> list[dict[str, Any]]:
    """The sidecar's ``tasks``: one entry per graph output, in output order."""
    out = []
    for t in tasks:
        post, meaning = _postprocess(t)
        out.append({"name": t.name, "output": t.name, "kind": t.kind, "classes": list(t.classes), "unit": t.unit,
                    "definition": t.definition, "prediction_columns": t.prediction_columns(),
                    "shape": ["batch"] if t.n_outputs == 1 else ["batch", t.n_outputs],
                    "dtype": "float32", "postprocess": post, "meaning": meaning})
    return out


def library_versions() -> dict[str, str]:
    """Versions of the libraries that wrote (or quantised) a graph."""
    import onnx
    import onnxruntime

    from nucvn import __version__

    return {"nucvn": __version__, "torch": torch.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__}


def _to_onnx_bytes(net: _RawEventsNet, names: Sequence[str], opset: int) -> bytes:
    example = torch.zeros((2, *IMAGE_SHAPE), dtype=torch.uint8)
    with warnings.catch_warnings(), tempfile.TemporaryDirectory(prefix="nucvn-onnx-") as tmp:
        # torch 2.9+ flags the TorchScript-based exporter as legacy (DeprecationWarning at the call and
        # inside torch.onnx); it is still supported in 2.13 and chosen on purpose (module docstring).
        warnings.filterwarnings("ignore", "You are using the legacy TorchScript-based ONNX export",
                                DeprecationWarning)
        warnings.filterwarnings("ignore", "The feature will be removed", DeprecationWarning, r"torch\.onnx\.")
        path = Path(tmp) / "model.onnx"
        torch.onnx.export(net, (example,), str(path), dynamo=False, input_names=[INPUT_NAME], output_names=list(names),
                          dynamic_axes={INPUT_NAME: {0: "batch"}, **{n: {0: "batch"} for n in names}},
                          opset_version=opset, do_constant_folding=True)
        return path.read_bytes()


def export_onnx(model_dir: str | Path, out: str | Path, *, opset: int = DEFAULT_OPSET) -> Path:
    """Export the model in ``model_dir`` to ``out`` (``.onnx``) and its sidecar; returns ``out``.

    The weights are read through :func:`nucvn.inference.load_model` (sha256 checked); the graph
    is checked by ``onnx.checker`` before anything is written.
    """
    import onnx

    from nucvn.inference import load_model

    model, config = load_model(model_dir)
    scale = config["input"]["scale"]
    scaling = _scaling(scale)
    tasks = describe_tasks(model.tasks)
    data = _to_onnx_bytes(_RawEventsNet(model, scale).eval(), model.task_names, opset)
    onnx.checker.check_model(onnx.load_from_string(data))
    out = Path(out)
    atomic_write(out, lambda p: p.write_bytes(data))
    write_sidecar(out, data, {
        "input": {"name": INPUT_NAME, "shape": ["batch", *IMAGE_SHAPE], "dtype": "uint8", "layout": INPUT_LAYOUT,
                  "description": "raw 8-bit pixel values: images[i, view, plane, cell], view 0 = X-Z, 1 = Y-Z "
                                 "(an event file's cvnmap[i].reshape(2, 100, 80))",
                  "scaling": scaling},
        "tasks": tasks,
        "source": {"model_dir": str(model_dir), "model": config["model"], "model_kwargs": config["model_kwargs"],
                   "weights_sha256": config["weights"]["sha256"]},
        "opset": opset,
        "quantization": None,
    })
    return out


def write_sidecar(onnx_path: str | Path, data: bytes, content: Mapping[str, Any]) -> Path:
    """Write ``onnx_path``'s sidecar: ``content`` (input, tasks, source, opset, quantization) plus
    the format, the graph file's name, byte count and sha256 (of ``data``, its bytes) and the
    library versions. Returns the sidecar's path."""
    onnx_path = Path(onnx_path)
    outputs = [t["output"] for t in content["tasks"]]
    record = {"format": SIDECAR_FORMAT, "version": SIDECAR_VERSION,
              "onnx": {"file": onnx_path.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()},
              **dict(content), "outputs": outputs, "versions": library_versions()}
    return write_json(record, sidecar_path(onnx_path))


def read_sidecar(onnx_path: str | Path) -> tuple[bytes, dict[str, Any]]:
    """``(the .onnx file's bytes, its sidecar)`` after checking the sidecar's format and that the
    bytes have the sha256 it records; every problem is one :class:`NucvnError` line."""
    onnx_path = Path(onnx_path)
    side = sidecar_path(onnx_path)
    if onnx_path.is_dir():
        raise NucvnError(f"{onnx_path}: a directory, not an .onnx file; with --backend onnxruntime give the exported "
                         f"file ({_REEXPORT})")
    for p in (onnx_path, side):
        if not p.is_file():
            raise NucvnError(f"{p}: no such file; {_REEXPORT}")
    try:
        sidecar = json.loads(side.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise NucvnError(f"{side}: not valid JSON ({exc}); {_REEXPORT}") from exc
    if not isinstance(sidecar, dict) or sidecar.get("format") != SIDECAR_FORMAT:
        raise NucvnError(f"{side}: not a nucvn ONNX sidecar (no \"format\": \"{SIDECAR_FORMAT}\"); {_REEXPORT}")
    if sidecar.get("version") != SIDECAR_VERSION:
        raise NucvnError(f"{side}: sidecar version {sidecar.get('version')}, this nucvn reads {SIDECAR_VERSION}; "
                         f"{_REEXPORT}")
    for key in ("onnx", "input", "tasks"):
        if key not in sidecar:
            raise NucvnError(f"{side}: no {key!r} entry; {_REEXPORT}")
    data = onnx_path.read_bytes()
    actual, expected = hashlib.sha256(data).hexdigest(), str(sidecar["onnx"].get("sha256"))
    if actual != expected:
        raise NucvnError(f"{onnx_path}: sha256 {actual[:16]}... differs from {expected[:16]}... recorded in "
                         f"{side.name} (the file was changed or damaged, or belongs to another export); {_REEXPORT}")
    return data, sidecar


def sidecar_tasks(sidecar: Mapping[str, Any], where: str | Path) -> list[Task]:
    """The tasks of an exported graph, in output order, rebuilt by name; refused when this nucvn's
    task differs from the one exported (other prediction columns or post-processing)."""
    try:
        tasks = create_tasks([t["name"] for t in sidecar["tasks"]])
    except (NucvnError, KeyError, TypeError) as exc:
        raise NucvnError(f"{where}: its tasks cannot be rebuilt ({exc}); {_REEXPORT}") from exc
    for entry, now in zip(sidecar["tasks"], describe_tasks(tasks), strict=True):
        for key in ("kind", "prediction_columns", "postprocess"):
            if entry.get(key) != now[key]:
                raise NucvnError(f"{where}: task {now['name']} was exported with {key} {entry.get(key)!r}, this nucvn "
                                 f"has {now[key]!r}; {_REEXPORT}")
    return tasks
