"""The trained-model directory format: ``model.safetensors`` + ``model.json``, written and read here only.

:func:`write_model_dir` (the train stage) and :func:`read_model_dir` (:func:`nucvn.inference.load_model`,
hence ``nucvn predict`` and the threshold and evaluate stages) are the one writer and the one
reader of the format, so the two cannot drift apart.

* ``model.safetensors``: the weights (safetensors, so loading never unpickles anything).
* ``model.json``: ``format``/``version``, the registry name and the size arguments actually used
  (``model``, ``model_kwargs``: the backbone), the input layout and pixel scaling (``input``),
  ``output``, ``tasks`` (one entry per head, in output order: name, kind, classes, unit,
  definition, columns read, prediction columns, head; :meth:`nucvn.tasks.base.Task.describe`),
  ``loss`` (``weighting``: fixed or learned, the fixed ``weights`` and, when learned, the learned
  ``log_variances``), ``weights`` (file name, byte count and **sha256** of ``model.safetensors``)
  and whatever record the writer adds (train parameters, data hashes, library versions, result).

Version 3 is the multi-task format (a backbone plus task heads); version 2 held one νμ CC output
and is refused with the advice to retrain, as is version 1 (no weights hash).

The weights' sha256 is checked on every read: a same-size corruption of ``model.safetensors``
(flipped bytes inside a tensor still parse as a valid file) would otherwise change every score
without a word. Each file is written atomically (:func:`nucvn.core.atomic.atomic_write`), weights first:
an interruption between the two leaves a ``model.json`` whose hash refuses the new weights.
The bytes are hashed and parsed from one read, so what is checked is what is loaded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch
from safetensors.torch import load as tensors_from_safetensors_bytes

from nucvn.core.atomic import atomic_write, write_json
from nucvn.core.errors import NucvnError
from nucvn.core.events import IMAGE_SHAPE
from nucvn.models import INPUT_LAYOUT, SCALES, Scale

__all__ = ["MODEL_FORMAT", "FORMAT_VERSION", "MODEL_JSON", "WEIGHTS", "MODEL_FILES", "write_model_dir",
           "read_model_dir"]

MODEL_FORMAT = "nucvn-model"
FORMAT_VERSION = 3
"""3: a backbone plus task heads, ``tasks`` and ``loss`` recorded (2: one νμ CC output, refused;
1: no weights hash, refused)."""
MODEL_JSON = "model.json"
WEIGHTS = "model.safetensors"
MODEL_FILES = (MODEL_JSON, WEIGHTS)
_OWN_KEYS = ("format", "version", "model", "model_kwargs", "input", "output", "tasks", "loss", "weights")
_TASK_KEYS = ("name", "kind", "classes", "unit", "definition", "prediction_columns", "head")
_RETRAIN = "retrain it (dvc repro train) or restore it (dvc checkout data/model)"


def write_model_dir(model_dir: str | Path, state: Mapping[str, torch.Tensor], *, model: str,
                    model_kwargs: Mapping[str, Any], tasks: Sequence[Mapping[str, Any]], loss: Mapping[str, Any],
                    scale: Scale, record: Mapping[str, Any]) -> Path:
    """Write ``state`` to ``model_dir/model.safetensors`` and ``model_dir/model.json``.

    ``model``, ``model_kwargs`` and the task names in ``tasks`` (each a
    :meth:`nucvn.tasks.base.Task.describe` dict) must rebuild the network
    (:func:`nucvn.tasks.build_network`); ``loss`` describes the loss weighting;
    ``record`` adds further top-level entries to ``model.json`` (it may not redefine the format's
    own keys). A full disk becomes one :class:`NucvnError` naming the file. Returns ``model_dir``.
    """
    clash = sorted(set(record) & set(_OWN_KEYS))
    if clash:
        raise ValueError(f"write_model_dir: record may not set {', '.join(clash)}")
    for entry in tasks:
        lacking = [k for k in _TASK_KEYS if k not in entry]
        if lacking:
            raise ValueError(f"write_model_dir: task entry {entry.get('name')!r} lacks {', '.join(lacking)}")
    model_dir = Path(model_dir)
    data = safetensors.torch.save({k: v.detach().cpu().contiguous() for k, v in state.items()},
                                  metadata={"format": "pt"})
    atomic_write(model_dir / WEIGHTS, lambda p: p.write_bytes(data))
    config = {
        "format": MODEL_FORMAT, "version": FORMAT_VERSION,
        "model": model, "model_kwargs": dict(model_kwargs),
        "input": {"layout": INPUT_LAYOUT, "shape": list(IMAGE_SHAPE), "dtype": "uint8", "scale": scale,
                  "scales": list(SCALES)},
        "output": "one head per task (tasks, in order); Task.predict turns a head's output into its prediction columns",
        "tasks": [dict(t) for t in tasks],
        "loss": dict(loss),
        "weights": {"file": WEIGHTS, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()},
        **record,
    }
    write_json(config, model_dir / MODEL_JSON)
    return model_dir


def _read_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise NucvnError(f"{path}: not valid JSON ({exc}); rerun the train stage (dvc repro train)") from exc
    if not isinstance(config, dict) or config.get("format") != MODEL_FORMAT:
        raise NucvnError(f"{path}: not a nucvn model description (no \"format\": \"{MODEL_FORMAT}\"); "
                         "rerun the train stage (dvc repro train)")
    for key in ("model", "model_kwargs", "input"):
        if key not in config:
            raise NucvnError(f"{path}: no {key!r} entry; rerun the train stage (dvc repro train)")
    if config["input"].get("layout") != INPUT_LAYOUT:
        raise NucvnError(f"{path}: input layout {config['input'].get('layout')!r}, this version reads "
                         f"{INPUT_LAYOUT!r}; rerun the train stage (dvc repro train)")
    expected = (config.get("weights") or {}).get("sha256")
    if not isinstance(expected, str):
        raise NucvnError(f"{path}: records no sha256 of {WEIGHTS} (written by an older nucvn, format version "
                         f"{config.get('version')}), so the weights cannot be checked; retrain (dvc repro train)")
    if config.get("version") != FORMAT_VERSION or not isinstance(config.get("tasks"), list):
        raise NucvnError(f"{path}: format version {config.get('version')} (written by an older nucvn, one numu CC "
                         f"output without task heads); this version reads {FORMAT_VERSION}: retrain (dvc repro train)")
    if not isinstance(config.get("loss"), dict):
        raise NucvnError(f"{path}: no 'loss' entry; rerun the train stage (dvc repro train)")
    return config


def read_model_dir(model_dir: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(weights on the CPU, model.json as a dict)`` of a model directory, after checking that
    ``model.safetensors`` has the sha256 recorded in ``model.json``.

    Every problem (missing file, bad JSON, older format, hash mismatch, unreadable weights) is one
    :class:`NucvnError` line naming the file and what to do.
    """
    model_dir = Path(model_dir)
    missing = [str(model_dir / f) for f in MODEL_FILES if not (model_dir / f).is_file()]
    if missing:
        raise NucvnError(f"missing model file(s) {', '.join(missing)}; run the train stage (dvc repro train)")
    config = _read_config(model_dir / MODEL_JSON)
    weights = model_dir / WEIGHTS
    data = weights.read_bytes()
    actual, expected = hashlib.sha256(data).hexdigest(), config["weights"]["sha256"]
    if actual != expected:
        raise NucvnError(f"{weights}: sha256 {actual[:16]}... differs from {expected[:16]}... recorded in "
                         f"{MODEL_JSON} (the file was changed or damaged); {_RETRAIN}")
    try:
        state = tensors_from_safetensors_bytes(data)  # raw tensors and a JSON header: never pickle
    except (safetensors.SafetensorError, ValueError) as exc:
        raise NucvnError(f"{weights}: not a readable safetensors file ({exc}); {_RETRAIN}") from exc
    return state, config
