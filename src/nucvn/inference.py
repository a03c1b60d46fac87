"""Load a trained model and score events: the one path from ``data/model`` to probabilities.

:func:`load_model` rebuilds the network from ``model.json`` (registry name and size arguments)
and loads ``model.safetensors`` (no unpickling) through :func:`nucvn.artifact.read_model_dir`,
which refuses weights whose sha256 differs from the one recorded at training time.
:func:`predict_scores` applies the pixel scaling recorded at training time and returns
``sigmoid(logit)`` per event, for a :class:`~nucvn.data.shards.ShardDataset` or any iterable of
``uint8`` image batches ``(n, 2, 100, 80)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from nucvn.artifact import MODEL_FILES, WEIGHTS, read_model_dir
from nucvn.train.distributed import DeviceName, resolve_device
from nucvn.core.errors import NucvnError
from nucvn.core.events import IMAGE_SHAPE
from nucvn.models import create_model, scale_pixels
from nucvn.core.progress import progress_bar
from nucvn.data.shards import ShardDataset

__all__ = ["MODEL_FILES", "load_model", "predict_scores"]


def load_model(model_dir: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """``(model in eval mode on the CPU, config dict from model.json)`` for a trained model directory.

    The weights are read by :func:`nucvn.artifact.read_model_dir`, which refuses a
    ``model.safetensors`` whose sha256 differs from the one recorded in ``model.json``.
    """
    state, config = read_model_dir(model_dir)
    model = create_model(config["model"], **config["model_kwargs"])
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        reason = " ".join(str(exc).split())
        raise NucvnError(f"{Path(model_dir) / WEIGHTS}: does not fit model {config['model']!r} with "
                         f"{config['model_kwargs']} ({reason[:300]}); rerun the train stage (dvc repro train)") from exc
    return model.eval(), config


def _batches(source: ShardDataset | Iterable[Any], batch_size: int) -> Iterator[torch.Tensor]:
    if isinstance(source, ShardDataset):
        for start in range(0, len(source), batch_size):
            yield source.batch(np.arange(start, min(start + batch_size, len(source))))[0]
        return
    for batch in source:
        images = batch[0] if isinstance(batch, tuple | list) else batch
        t = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images
        if t.dtype != torch.uint8 or tuple(t.shape[1:]) != IMAGE_SHAPE:
            raise NucvnError(f"predict: image batches must be uint8 (n, {', '.join(map(str, IMAGE_SHAPE))}) "
                             f"[view][plane][cell], got {t.dtype} {tuple(t.shape)}")
        yield t


def predict_scores(model: nn.Module, config: dict[str, Any], source: ShardDataset | Iterable[Any], *,
                   batch_size: int = 512, device: DeviceName = "auto", progress: bool = True) -> npt.NDArray[np.float32]:
    """Scores in [0, 1] (``sigmoid`` of the logits), one per event in ``source`` order.

    ``source``: a ShardDataset, or an iterable of uint8 batches ``(n, 2, 100, 80)`` (numpy or
    torch; a ``(images, labels)`` tuple is accepted, its images used). The pixel scaling is the
    one in ``config["input"]["scale"]``. Inputs are channels-last (as in training); on CUDA the
    forward pass runs in bf16 autocast.
    """
    if batch_size <= 0:
        raise NucvnError(f"predict: batch_size must be positive, got {batch_size}")
    dev = resolve_device(device, 0)
    model = model.to(dev, memory_format=torch.channels_last).eval()
    scale = config["input"]["scale"]
    total = len(source) if isinstance(source, ShardDataset) else None
    out: list[np.ndarray] = []
    with torch.inference_mode(), progress_bar(total=total, unit="event", unit_scale=True, desc="predict",
                                              disable=not progress) as bar:
        for images in _batches(source, batch_size):
            x = scale_pixels(images.to(dev, non_blocking=True), scale).contiguous(memory_format=torch.channels_last)
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                logits = model(x)
            out.append(torch.sigmoid(logits.float()).cpu().numpy())
            bar.update(len(images))
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)
