"""An exported model (``model.onnx`` + sidecar) under ONNX Runtime, giving what the PyTorch model gives.

:class:`OnnxModel` reads the graph through :func:`nucvn.deploy.onnx_export.read_sidecar` (the sha256
recorded in the sidecar is checked, and the checked bytes are what the session loads), rebuilds
the tasks from the sidecar and, called on ``uint8`` events ``(n, 2, 100, 80)``, returns
``{task name: head output}`` as torch tensors, the form :class:`nucvn.tasks.MultiTaskNet` returns.
:meth:`OnnxModel.predict` therefore turns them into predictions with the tasks' own
:meth:`~nucvn.tasks.base.Task.predict`, and :func:`nucvn.inference.prediction_table` lays them out:
the two backends share every line of post-processing and every column name.

The session runs on the CPU (``CPUExecutionProvider``) with ``threads`` intra-op threads (default:
``os.cpu_count()``), one inter-op thread, and ONNX Runtime's graph optimisations at the chosen level
(default ``all``: it fuses the quantise/dequantise pairs of an int8 graph into integer kernels).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch

from nucvn.core.errors import NucvnError
from nucvn.core.events import IMAGE_SHAPE
from nucvn.core.progress import progress_bar
from nucvn.data.shards import ShardDataset
from nucvn.deploy.onnx_export import read_sidecar, sidecar_tasks
from nucvn.tasks import Task

__all__ = ["Optimization", "OnnxModel"]

Optimization = Literal["disabled", "basic", "extended", "all"]


def _session_options(threads: int | None, optimization: Optimization) -> Any:
    import onnxruntime as ort

    level = {"disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
             "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
             "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
             "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[optimization]
    n = (os.cpu_count() or 1) if threads is None else threads
    if n < 1:
        raise NucvnError(f"--threads must be at least 1, got {n}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = n
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = level
    opts.log_severity_level = 3  # errors only: ORT's warnings (e.g. unused initialisers) go to stderr, not to the user
    return opts


class OnnxModel:
    """An exported model: ``model(images) -> {task: head output}``; :attr:`tasks` in output order.

    Attributes:
        path: the ``.onnx`` file.
        sidecar: its sidecar (:func:`nucvn.deploy.onnx_export.read_sidecar`).
        tasks, task_names: the tasks, in output order.
    """

    def __init__(self, path: str | Path, *, threads: int | None = None, optimization: Optimization = "all") -> None:
        import onnxruntime as ort

        self.path = Path(path)
        data, self.sidecar = read_sidecar(self.path)
        self.tasks: list[Task] = sidecar_tasks(self.sidecar, self.path)
        self.task_names = [t.name for t in self.tasks]
        try:
            self.session = ort.InferenceSession(data, sess_options=_session_options(threads, optimization),
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for a graph it cannot load
            raise NucvnError(f"{self.path}: ONNX Runtime cannot load it ({str(exc)[:300]}); export it again") from exc
        self.input_name = str(self.sidecar["input"]["name"])
        outputs = [o.name for o in self.session.get_outputs()]
        inputs = [i.name for i in self.session.get_inputs()]
        if inputs != [self.input_name] or outputs != [t["output"] for t in self.sidecar["tasks"]]:
            raise NucvnError(f"{self.path}: graph inputs {inputs} / outputs {outputs} differ from its sidecar's; "
                             "export it again")

    def __call__(self, images: npt.ArrayLike | torch.Tensor,
                 tasks: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """``{task name: head output}`` for ``uint8`` events ``(n, 2, 100, 80)`` (numpy or torch);
        ``tasks`` limits the outputs computed (default: all)."""
        x = images.numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
        if x.dtype != np.uint8 or tuple(x.shape[1:]) != IMAGE_SHAPE or x.ndim != 4:
            raise NucvnError(f"predict: image batches must be uint8 (n, {', '.join(map(str, IMAGE_SHAPE))}) "
                             f"[view][plane][cell], got {x.dtype} {tuple(x.shape)}")
        names = list(self.task_names if tasks is None else tasks)
        results = self.session.run(names, {self.input_name: np.ascontiguousarray(x)})
        return {name: torch.from_numpy(np.asarray(r)) for name, r in zip(names, results, strict=True)}

    def chosen(self, tasks: Sequence[str] | None) -> list[Task]:
        """The tasks named in ``tasks`` (default: all), refused in one line when one is unknown."""
        by_name = {t.name: t for t in self.tasks}
        unknown = [n for n in (tasks or []) if n not in by_name]
        if unknown:
            raise NucvnError(f"predict: the model {self.path} has no task {unknown[0]!r}; "
                             f"its tasks: {', '.join(by_name)}")
        return list(self.tasks) if tasks is None else [by_name[n] for n in tasks]

    def predict(self, source: ShardDataset | Iterable[Any], *, tasks: Sequence[str] | None = None,
                batch_size: int = 512, progress: bool = True) -> dict[str, npt.NDArray[np.float32]]:
        """``{task name: prediction}`` for every event of ``source``, as :func:`nucvn.inference.predict`
        gives them (each task's :meth:`~nucvn.tasks.base.Task.predict` on its head output)."""
        if batch_size <= 0:
            raise NucvnError(f"predict: batch_size must be positive, got {batch_size}")
        chosen = self.chosen(tasks)
        names = [t.name for t in chosen]
        out: dict[str, list[np.ndarray]] = {n: [] for n in names}
        total = len(source) if isinstance(source, ShardDataset) else None
        with torch.inference_mode(), progress_bar(total=total, unit="event", unit_scale=True, desc="predict",
                                                  disable=not progress) as bar:
            for images in _batches(source, batch_size):
                heads = self(images, names)
                for t in chosen:
                    out[t.name].append(t.predict(heads[t.name]).numpy())
                bar.update(len(images))
        return {t.name: (np.concatenate(out[t.name]) if out[t.name]
                         else np.zeros((0, *((len(t.classes),) if t.n_outputs > 1 else ())))).astype(np.float32)
                for t in chosen}


def _batches(source: ShardDataset | Iterable[Any], batch_size: int) -> Iterator[np.ndarray]:
    if isinstance(source, ShardDataset):
        for start in range(0, len(source), batch_size):
            yield source.images(np.arange(start, min(start + batch_size, len(source)))).numpy()
        return
    for batch in source:
        images = batch[0] if isinstance(batch, tuple | list) else batch
        x = images.numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
        for start in range(0, len(x), batch_size):
            yield x[start:start + batch_size]
