"""Load a trained model and predict: the one path from ``data/model`` to one column group per task.

:func:`load_model` rebuilds the network from ``model.json`` (backbone name, size arguments and the
task heads) and loads ``model.safetensors`` (no unpickling) through
:func:`nucvn.artifact.read_model_dir`, which refuses weights whose sha256 differs from the one
recorded at training time. :func:`predict` applies the pixel scaling recorded at training time
and returns each task's prediction (:meth:`nucvn.tasks.base.Task.predict`: a binary score,
class probabilities, or a value in the task's unit), for a :class:`~nucvn.data.shards.ShardDataset`
or any iterable of ``uint8`` image batches ``(n, 2, 100, 80)``; :func:`prediction_table` lays
them out under the tasks' column names. :func:`predict_scores` is the one-binary-task shortcut.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import torch

from nucvn.artifact import MODEL_FILES, WEIGHTS, read_model_dir
from nucvn.core.errors import NucvnError
from nucvn.core.events import IMAGE_SHAPE
from nucvn.core.progress import progress_bar
from nucvn.data.shards import ShardDataset
from nucvn.data.sparse import SparseBatch, dense_on
from nucvn.models import scale_pixels
from nucvn.report.evaluation import IDENTITY_COLUMNS
from nucvn.tasks import MultiTaskNet, Task, build_network, create_tasks
from nucvn.train.distributed import DeviceName, autocast, resolve_device

__all__ = ["MODEL_FILES", "load_model", "model_tasks", "predict", "predict_scores", "prediction_table"]


def model_tasks(config: Mapping[str, Any]) -> list[Task]:
    """The tasks of a model, in head order, from its ``model.json`` (``config["tasks"]``)."""
    try:
        return create_tasks([t["name"] for t in config["tasks"]])
    except (NucvnError, KeyError, TypeError) as exc:
        raise NucvnError(f"{MODEL_FILES[0]}: its tasks cannot be rebuilt ({exc}); rerun the train stage "
                         "(dvc repro train)") from exc


def load_model(model_dir: str | Path) -> tuple[MultiTaskNet, dict[str, Any]]:
    """``(multi-task model in eval mode on the CPU, config dict from model.json)`` for a trained
    model directory; ``model.tasks`` are its tasks, in ``config["tasks"]`` order.

    The weights are read by :func:`nucvn.artifact.read_model_dir`, which refuses a
    ``model.safetensors`` whose sha256 differs from the one recorded in ``model.json``.
    """
    state, config = read_model_dir(model_dir)
    model = build_network(config["model"], config["model_kwargs"], model_tasks(config))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        reason = " ".join(str(exc).split())
        raise NucvnError(f"{Path(model_dir) / WEIGHTS}: does not fit model {config['model']!r} (tasks "
                         f"{', '.join(model.task_names)}) with "
                         f"{config['model_kwargs']} ({reason[:300]}); rerun the train stage (dvc repro train)") from exc
    return model.eval(), config


def _batches(source: ShardDataset | Iterable[Any], batch_size: int,
             sparse: bool) -> Iterator[torch.Tensor | SparseBatch]:
    if isinstance(source, ShardDataset):
        for start in range(0, len(source), batch_size):
            idx = np.arange(start, min(start + batch_size, len(source)))
            yield source.sparse_batch(idx) if sparse else source.batch(idx)[0]
        return
    for batch in source:
        images = batch[0] if isinstance(batch, tuple | list) else batch
        t = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images
        if t.dtype != torch.uint8 or tuple(t.shape[1:]) != IMAGE_SHAPE:
            raise NucvnError(f"predict: image batches must be uint8 (n, {', '.join(map(str, IMAGE_SHAPE))}) "
                             f"[view][plane][cell], got {t.dtype} {tuple(t.shape)}")
        yield t


def _chosen(model: MultiTaskNet, tasks: Sequence[str] | None) -> list[Task]:
    by_name = {t.name: t for t in model.tasks}
    if tasks is None:
        return list(model.tasks)
    unknown = [n for n in tasks if n not in by_name]
    if unknown:
        raise NucvnError(f"predict: the model has no task {unknown[0]!r}; its tasks: {', '.join(by_name)}")
    return [by_name[n] for n in tasks]


def predict(model: MultiTaskNet, config: Mapping[str, Any], source: ShardDataset | Iterable[Any], *,
            tasks: Sequence[str] | None = None, batch_size: int = 512, device: DeviceName = "auto",
            progress: bool = True) -> dict[str, npt.NDArray[np.float32]]:
    """``{task name: prediction}`` for every event of ``source``, in order; ``tasks`` selects
    (default: all of the model's). A binary task gives scores ``(n,)`` in [0, 1], a multiclass or
    count task class probabilities ``(n, k)``, a regression task values ``(n,)`` in its unit.

    ``source``: a ShardDataset, or an iterable of uint8 batches ``(n, 2, 100, 80)`` (numpy or
    torch; a ``(images, labels)`` tuple is accepted, its images used). The pixel scaling is the
    one in ``config["input"]["scale"]``. Inputs are channels-last (as in training); on CUDA a
    ShardDataset's events are decoded on the device and the forward pass runs in bf16 autocast
    where the GPU has bf16 (:func:`nucvn.train.distributed.bf16_autocast`).
    One forward pass serves every task.
    """
    if batch_size <= 0:
        raise NucvnError(f"predict: batch_size must be positive, got {batch_size}")
    chosen = _chosen(model, tasks)
    dev = resolve_device(device, 0)
    # Module.to takes memory_format (documented), but torch's overloads of it omit that keyword.
    model = model.to(dev, memory_format=torch.channels_last).eval()  # type: ignore[call-overload]
    scale = config["input"]["scale"]
    total = len(source) if isinstance(source, ShardDataset) else None
    out: dict[str, list[np.ndarray]] = {t.name: [] for t in chosen}
    with torch.inference_mode(), progress_bar(total=total, unit="event", unit_scale=True, desc="predict",
                                              disable=not progress) as bar:
        for batch in _batches(source, batch_size, sparse=dev.type == "cuda"):
            images = dense_on(batch, dev)
            x = scale_pixels(images, scale).contiguous(memory_format=torch.channels_last)
            with autocast(dev):
                outputs = model(x)
            for t in chosen:
                out[t.name].append(t.predict(outputs[t.name]).cpu().numpy())
            bar.update(len(images))
    return {t.name: (np.concatenate(out[t.name]) if out[t.name] else np.zeros((0, *_width(t)))).astype(np.float32)
            for t in chosen}


def _width(task: Task) -> tuple[int, ...]:
    return (len(task.classes),) if task.kind in ("multiclass", "count") else ()


def predict_scores(model: MultiTaskNet, config: Mapping[str, Any], source: ShardDataset | Iterable[Any], *,
                   task: str = "numu_cc", batch_size: int = 512, device: DeviceName = "auto",
                   progress: bool = True) -> npt.NDArray[np.float32]:
    """Scores in [0, 1] of binary ``task`` (``sigmoid`` of its logit), one per event in ``source``
    order: :func:`predict` of that one task."""
    kind = next((t.kind for t in model.tasks if t.name == task), None)
    if kind is not None and kind != "binary":
        raise NucvnError(f"predict_scores: task {task!r} is {kind}, not binary; use predict(..., tasks=[{task!r}])")
    return predict(model, config, source, tasks=[task], batch_size=batch_size, device=device, progress=progress)[task]


def prediction_table(meta: pd.DataFrame, predictions: Mapping[str, np.ndarray], tasks: Sequence[Task]) -> pd.DataFrame:
    """``meta``'s identity columns (:data:`nucvn.report.evaluation.IDENTITY_COLUMNS`), then one
    column group per task of ``tasks`` found in ``predictions`` (named by
    :meth:`nucvn.tasks.base.Task.prediction_columns`), then ``meta``'s other columns."""
    ident = [c for c in IDENTITY_COLUMNS if c in meta.columns]
    out = meta[ident].reset_index(drop=True)
    for t in tasks:
        if t.name not in predictions:
            continue
        values = np.asarray(predictions[t.name])
        if len(values) != len(meta):
            raise NucvnError(f"prediction_table: {len(values)} predictions of task {t.name} for {len(meta)} events")
        values = values.reshape(len(values), -1)
        for j, name in enumerate(t.prediction_columns()):
            if name in meta.columns:
                raise NucvnError(f"prediction_table: task {t.name}'s column {name!r} is also a metadata column")
            out[name] = values[:, j]
    rest = [c for c in meta.columns if c not in ident]
    return pd.concat([out, meta[rest].reset_index(drop=True)], axis=1)
