"""A backbone plus one head per task: :class:`MultiTaskNet` (hard parameter sharing).

The backbone is any registered model (:func:`nucvn.models.create_model`) built without its last
layer (``num_outputs=0``); every task adds its own head on the backbone's ``num_features``
features (:meth:`nucvn.tasks.base.Task.make_head`). One forward pass gives every task's output,
so auxiliary tasks cost one small linear layer each (Caruana, Machine Learning 28 (1997) 41;
the graphnet pattern: a model is a backbone plus a list of tasks).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import torch
from torch import nn

from nucvn.models import create_model
from nucvn.tasks.base import Task

__all__ = ["MultiTaskNet", "build_network"]


class MultiTaskNet(nn.Module):
    """``forward(x) -> {task name: head output}`` for scaled images ``x`` ``(n, 2, 100, 80)``.

    Parameters are ``backbone.*`` and ``heads.<task>.*``; :attr:`tasks` (the Task objects) and
    :attr:`task_names` keep the order.
    """

    def __init__(self, backbone: nn.Module, tasks: Sequence[Task]) -> None:
        super().__init__()
        n_features = int(getattr(backbone, "num_features", 0))
        if n_features < 1 or not hasattr(backbone, "forward_features"):
            raise ValueError(f"{type(backbone).__name__} is not a backbone (needs forward_features and num_features)")
        self.backbone = backbone
        self.tasks = list(tasks)
        self.task_names = [t.name for t in tasks]
        self.heads = nn.ModuleDict({t.name: t.make_head(n_features) for t in tasks})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        # checked in __init__; nn.Module's attribute access is typed as Tensor | Module
        forward_features = cast("Callable[[torch.Tensor], torch.Tensor]", self.backbone.forward_features)
        features = forward_features(x)
        return {name: head(features) for name, head in self.heads.items()}


def build_network(model: str, model_kwargs: Mapping[str, Any], tasks: Sequence[Task]) -> MultiTaskNet:
    """The registered backbone ``model`` (its size arguments, no last layer) with ``tasks``' heads."""
    return MultiTaskNet(create_model(model, **dict(model_kwargs), num_outputs=0), tasks)
