"""Tasks chosen by name: ``@register_task("numu_cc")`` on a :class:`~nucvn.tasks.base.Task` subclass,
``create_tasks(["numu_cc", "flavour"])`` to build them (the pattern of :mod:`nucvn.models.registry`).

Configuration (``params.yaml: train.tasks``, ``model.json``) holds task names only. The registry
keeps registration order, which is the order of ``train.tasks: auto`` and of every output.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import TypeVar

from nucvn.core.errors import NucvnError
from nucvn.tasks.base import Task

__all__ = ["register_task", "create_tasks", "list_tasks", "available_tasks", "primary_task"]

_REGISTRY: dict[str, type[Task]] = {}

T = TypeVar("T", bound=type[Task])


def register_task(name: str) -> Callable[[T], T]:
    """Decorator: register a Task subclass under ``name`` (which it also takes as its ``name``)."""

    def _register(cls: T) -> T:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"task name {name!r} is registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return _register


def list_tasks() -> list[str]:
    """Names of all registered tasks, in registration order."""
    return list(_REGISTRY)


def available_tasks(columns: Collection[str]) -> list[str]:
    """Registered tasks whose :attr:`~nucvn.tasks.base.Task.columns` are all in ``columns``
    (what ``train.tasks: auto`` trains)."""
    return [n for n, cls in _REGISTRY.items() if all(c in columns for c in cls.columns)]


def create_tasks(names: Sequence[str]) -> list[Task]:
    """One instance per name, in the given order; an unknown or repeated name is refused naming
    ``train.tasks`` and the known tasks."""
    seen: set[str] = set()
    for name in names:
        if name not in _REGISTRY:
            raise NucvnError(f"train.tasks: unknown task {name!r}; known tasks: {', '.join(list_tasks())}")
        if name in seen:
            raise NucvnError(f"train.tasks: task {name!r} is listed twice; list each task once")
        seen.add(name)
    if not names:
        raise NucvnError(f"train.tasks: no task; list at least one of {', '.join(list_tasks())} (or use auto)")
    return [_REGISTRY[name]() for name in names]


def primary_task(tasks: Sequence[Task]) -> Task:
    """The task whose numbers stand unprefixed in the history and metrics (``val_auc``, ...): the
    first binary task, else the first task."""
    return next((t for t in tasks if t.kind == "binary"), tasks[0])
