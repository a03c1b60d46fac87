"""Validation after each epoch: per-task losses and counts, summed over all ranks, then divided.

Every task's loss sum, defined-event count and :meth:`nucvn.tasks.base.Task.val_counts` are
accumulated over the rank's share of the validation split, concatenated into one float64 vector
and summed over ranks once (:func:`nucvn.train.distributed.all_reduce_sum`), so ranks may hold
different numbers of batches and the numbers equal a single process's. The unwrapped network is
run (no DDP collectives inside).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from nucvn.tasks import MultiTaskNet, Task
from nucvn.train.distributed import DistContext, all_reduce_sum, autocast
from nucvn.train.objective import Objective, SplitTargets

__all__ = ["evaluate"]


def evaluate(net: MultiTaskNet, batches: Iterable[Any], targets: SplitTargets, objective: Objective,
             inputs: Callable[[torch.Tensor], torch.Tensor], ctx: DistContext) -> dict[str, Any]:
    """``{"total_val_loss": objective, "<task>": {"val_loss": mean, "val_<metric>": ...}}``.

    ``inputs`` turns a uint8 image batch into the network's input (device, scaling, layout).
    """
    net.eval()
    tasks = net.tasks
    loss_sums = np.zeros((len(tasks), 2))
    counts: dict[str, np.ndarray] = {}  # per task, once it has seen a batch
    with torch.inference_mode(), autocast(ctx.device):
        for images, indices in batches:
            outputs = net(inputs(images))
            batch = targets.gather(indices)
            for i, task in enumerate(tasks):
                target, defined, w = batch[task.name]
                per_event = task.loss(outputs[task.name], target, defined)
                per_event = per_event if w is None else per_event * w
                loss_sums[i] += [float(per_event.double().sum()), float(defined.sum())]
                c = task.val_counts(task.predict(outputs[task.name]).cpu().numpy(), target.cpu().numpy(),
                                    defined.cpu().numpy())
                counts[task.name] = counts[task.name] + c if task.name in counts else c
    sizes = [len(task.val_counts(*_no_events(task))) for task in tasks]
    local = [loss_sums.ravel()] + [counts[t.name] if t.name in counts else np.zeros(n)
                                   for t, n in zip(tasks, sizes, strict=True)]
    total = all_reduce_sum(np.concatenate(local), ctx)
    sums, rest = total[: 2 * len(tasks)].reshape(-1, 2), total[2 * len(tasks):]
    out: dict[str, Any] = {}
    offset = 0
    for i, (task, n) in enumerate(zip(tasks, sizes, strict=True)):
        metrics = task.val_metrics(rest[offset: offset + n])
        offset += n
        out[task.name] = ({"val_loss": float(sums[i, 0] / max(sums[i, 1], 1))}
                          | {f"val_{k}": v for k, v in metrics.items()})
    out["total_val_loss"] = objective.total({t.name: out[t.name]["val_loss"] for t in tasks})
    return out


def _no_events(task: Task) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Zero events, shaped like a prediction, to learn the length of a task's counts."""
    pred = np.zeros((0, task.n_outputs)) if task.kind in ("multiclass", "count") else np.zeros(0)
    return pred, np.zeros(0), np.zeros(0, dtype=bool)
