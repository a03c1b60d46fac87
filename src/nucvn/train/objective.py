"""The training objective over several tasks: per-task means over defined events, combined with
fixed or learned weights; and each split's targets, computed once.

:class:`SplitTargets` computes every task's ``(target, defined)`` (:meth:`nucvn.tasks.base.Task.targets`)
and per-event class weights once per split from :attr:`nucvn.data.shards.ShardDataset.metadata`,
keeps them on the training device and gathers a batch's rows by event index.

:class:`Objective` turns per-task losses ``L_t`` into one number: ``fixed``: ``sum_t w_t L_t``;
``learned``: ``sum_t w_t (exp(-s_t) L_t + s_t)`` with one learned log-variance ``s_t`` per task
(homoscedastic uncertainty weighting, Kendall, Gal & Cipolla, "Multi-task learning using
uncertainty to weigh losses", CVPR 2018, in the common ``s = log sigma^2`` form: a task whose loss
stays high gets a smaller weight, and ``+ s_t`` stops every weight from collapsing to 0).

:class:`TrainStep` is the one module DDP wraps: network forward, per-task loss sums and the
objective. ``L_t`` is the mean of task t's per-event loss over the events of the *global* batch
where it is defined (0 if none): the defined counts are summed over ranks before the forward
pass, and each rank's sum is scaled by the number of ranks, so DDP's gradient averaging gives
exactly the gradient of the global mean (N processes follow the trajectory of one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from nucvn.tasks import MultiTaskNet, Task
from nucvn.train.config import LossWeighting
from nucvn.train.distributed import autocast

__all__ = ["SplitTargets", "Objective", "TrainStep", "BatchTargets"]

BatchTargets = dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]
"""Per task: target, defined mask and per-event loss weight (or None) of a batch."""


class SplitTargets:
    """Every task's target, defined mask and (with ``class_weights``) per-event class weight for
    one split, as tensors on ``device``."""

    def __init__(self, tasks: Sequence[Task], meta: pd.DataFrame, *, class_weights: bool,
                 device: torch.device) -> None:
        self.tasks = list(tasks)
        self.numpy: dict[str, tuple[np.ndarray, np.ndarray]] = {t.name: t.targets(meta) for t in tasks}
        self.weights_np: dict[str, np.ndarray | None] = {
            t.name: t.sample_weights(*self.numpy[t.name]) for t in tasks
        }
        self._on_device: BatchTargets = {}
        for t in tasks:
            target, defined = self.numpy[t.name]
            w = self.weights_np[t.name] if class_weights else None
            self._on_device[t.name] = (torch.from_numpy(np.ascontiguousarray(target)).to(device),
                                       torch.from_numpy(np.asarray(defined, dtype=bool)).to(device),
                                       None if w is None else torch.from_numpy(w).to(device))

    def gather(self, indices: torch.Tensor) -> BatchTargets:
        """The rows of ``indices`` (event positions in the split) for every task."""
        out: BatchTargets = {}
        for name, (target, defined, w) in self._on_device.items():
            idx = indices.to(target.device)
            out[name] = (target[idx], defined[idx], None if w is None else w[idx])
        return out

    def defined_counts(self, batch: BatchTargets) -> torch.Tensor:
        """Defined events per task in ``batch``, float64 ``(n_tasks,)``."""
        return torch.stack([batch[t.name][1].sum() for t in self.tasks]).double()


class Objective(nn.Module):
    """``sum_t w_t L_t`` (fixed) or ``sum_t w_t (exp(-s_t) L_t + s_t)`` (learned ``s_t``, initialised 0)."""

    weights: torch.Tensor  # a buffer (registered in __init__)

    def __init__(self, names: Sequence[str], weights: Mapping[str, float], weighting: LossWeighting) -> None:
        super().__init__()
        self.names = list(names)
        self.weighting = weighting
        self.fixed = {n: float(weights[n]) for n in self.names}
        self.register_buffer("weights", torch.tensor([float(weights[n]) for n in self.names], dtype=torch.float32),
                             persistent=False)
        self.log_vars = nn.Parameter(torch.zeros(len(self.names))) if weighting == "learned" else None

    def forward(self, losses: torch.Tensor) -> torch.Tensor:
        """The objective from per-task losses ``(n_tasks,)``."""
        w = self.weights.to(losses.dtype)
        if self.log_vars is None:
            return (w * losses).sum()
        s = self.log_vars.to(losses.dtype)
        return (w * (torch.exp(-s) * losses + s)).sum()

    @torch.no_grad()
    def total(self, losses: Mapping[str, float]) -> float:
        """The objective of per-task mean losses given by name (for logging and early stopping)."""
        return float(self(torch.tensor([losses[n] for n in self.names], dtype=torch.float64,
                                       device=self.weights.device)))

    def describe(self) -> dict[str, object]:
        """What ``model.json`` records: weighting, fixed weights and learned log-variances."""
        return {"weighting": self.weighting, "weights": dict(self.fixed),
                "log_variances": None if self.log_vars is None
                else dict(zip(self.names, self.log_vars.detach().cpu().tolist(), strict=True))}


class TrainStep(nn.Module):
    """Forward of the network plus the objective: ``(objective, per-task loss sums)``."""

    def __init__(self, net: MultiTaskNet, objective: Objective, world: int, device: torch.device) -> None:
        super().__init__()
        self.net = net
        self.objective = objective
        self.world = world
        self.device = device

    def forward(
        self, x: torch.Tensor, batch: BatchTargets, n_defined: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        with autocast(self.device):
            outputs = self.net(x)
        sums = []
        for task in self.net.tasks:
            target, defined, w = batch[task.name]
            per_event = task.loss(outputs[task.name], target, defined)
            sums.append((per_event if w is None else per_event * w).sum())
        sum_t = torch.stack(sums)
        means = sum_t * self.world / n_defined.clamp(min=1).to(sum_t.dtype)
        return self.objective(means), sum_t.detach()
