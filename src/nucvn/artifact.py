"""The trained-model directory format: ``model.safetensors`` + ``model.json``, written and read here only.

:func:`write_model_dir` (the train stage) and :func:`read_model_dir` (:func:`nucvn.inference.load_model`,
hence ``nucvn predict`` and the threshold and evaluate stages) are the one writer and the one
reader of the format, so the two cannot drift apart.

* ``model.safetensors``: the weights (safetensors, so loading never unpickles anything).
* ``model.json``: ``format``/``version``, the registry name and the size arguments actually used
  (``model``, ``model_kwargs``), the input layout and pixel scaling (``input``), ``output``,
  ``weights`` (file name, byte count and **sha256** of ``model.safetensors``) and whatever record
  the writer adds (label, train parameters, data hashes, library versions, result).

The weights' sha256 is checked on every read: a same-size corruption of ``model.safetensors``
(flipped bytes inside a tensor still parse as a valid file) would otherwise change every score
without a word. Each file is written atomically (:func:`nucvn.core.atomic.atomic_write`), weights first:
an interruption between the two leaves a ``model.json`` whose hash refuses the new weights.
The bytes are hashed and parsed from one read, so what is checked is what is loaded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch

from nucvn.core.atomic import atomic_write, write_json
from nucvn.core.errors import NucvnError
from nucvn.core.events import IMAGE_SHAPE
from nucvn.models import INPUT_LAYOUT, SCALES, Scale

__all__ = ["MODEL_FORMAT", "FORMAT_VERSION", "MODEL_JSON", "WEIGHTS", "MODEL_FILES", "write_model_dir", "read_model_dir"]

MODEL_FORMAT = "nucvn-model"
FORMAT_VERSION = 2
"""2: ``weights.sha256`` recorded and checked (version 1 had no hash and is refused)."""
MODEL_JSON = "model.json"
WEIGHTS = "model.safetensors"
MODEL_FILES = (MODEL_JSON, WEIGHTS)
_OWN_KEYS = ("format", "version", "model", "model_kwargs", "input", "output", "weights")
_RETRAIN = "retrain it (dvc repro train) or restore it (dvc checkout data/model)"


def write_model_dir(model_dir: str | Path, state: Mapping[str, torch.Tensor], *, model: str,
                    model_kwargs: Mapping[str, Any], scale: Scale, record: Mapping[str, Any]) -> Path:
    """Write ``state`` to ``model_dir/model.safetensors`` and ``model_dir/model.json``.

    ``model`` and ``model_kwargs`` must rebuild the network (:func:`nucvn.models.create_model`);
    ``record`` adds further top-level entries to ``model.json`` (it may not redefine the format's
    own keys). A full disk becomes one :class:`NucvnError` naming the file. Returns ``model_dir``.
    """
    clash = sorted(set(record) & set(_OWN_KEYS))
    if clash:
        raise ValueError(f"write_model_dir: record may not set {', '.join(clash)}")
    model_dir = Path(model_dir)
    data = safetensors.torch.save({k: v.detach().cpu().contiguous() for k, v in state.items()}, metadata={"format": "pt"})
    atomic_write(model_dir / WEIGHTS, lambda p: p.write_bytes(data))
    config = {
        "format": MODEL_FORMAT, "version": FORMAT_VERSION,
        "model": model, "model_kwargs": dict(model_kwargs),
        "input": {"layout": INPUT_LAYOUT, "shape": list(IMAGE_SHAPE), "dtype": "uint8", "scale": scale,
                  "scales": list(SCALES)},
        "output": "one logit per event; sigmoid(logit) = score for numu CC",
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
        state = safetensors.torch.load(data)
    except (safetensors.SafetensorError, ValueError) as exc:
        raise NucvnError(f"{weights}: not a readable safetensors file ({exc}); {_RETRAIN}") from exc
    return state, config
