"""Models chosen by name: ``create_model("cvn2v", width=16)`` (the timm pattern).

Configuration (``params.yaml``, ``model.json``) holds a model name and its keyword arguments only;
this registry turns them into a ``torch.nn.Module``. Every registered model is a backbone: it
takes float input of shape ``(n, 2, 100, 80)`` laid out ``[view][plane][cell]`` and already
scaled (see :mod:`nucvn.models.inputs`), gives shared features ``forward_features(x) -> (n,
num_features)`` (attribute ``num_features``) and, from ``forward``, logits of one last linear
layer: shape ``(n,)`` when ``num_outputs == 1``, ``(n, num_outputs)`` when larger, the features
themselves when ``num_outputs == 0`` (timm's ``num_classes=0``). Models know no task: the task
heads sit on ``forward_features`` (:class:`nucvn.tasks.MultiTaskNet`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from nucvn.core.errors import NucvnError

__all__ = ["register_model", "create_model", "list_models"]

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}

F = TypeVar("F", bound=Callable[..., nn.Module])


def register_model(name: str) -> Callable[[F], F]:
    """Decorator: register a model constructor (class or function) under ``name``."""

    def _register(factory: F) -> F:
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise ValueError(f"model name {name!r} is registered twice")
        _REGISTRY[name] = factory
        return factory

    return _register


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_REGISTRY)


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the model registered as ``name`` with its size keyword arguments.

    Raises :class:`NucvnError` for an unknown name (listing the known ones) or a keyword the model
    does not take or a value it refuses (so a typo in ``train.model_kwargs`` is reported, not ignored).
    """
    if name not in _REGISTRY:
        raise NucvnError(f"unknown model {name!r} (train.model); known models: {', '.join(list_models())}")
    try:
        return _REGISTRY[name](**kwargs)
    except NucvnError:
        raise
    except (TypeError, ValueError) as exc:
        raise NucvnError(f"bad size arguments for model {name!r} (train.model_kwargs {kwargs}): {exc}") from exc
