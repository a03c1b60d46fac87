"""nucvn: classify neutrino interactions in NOvA-like detector images.

The public API, small on purpose (imported lazily, so ``import nucvn`` and ``nucvn --help`` stay
fast and torch loads only when a model is used):

- :func:`open_events` — read ``neutrinoN.h5`` files (:mod:`nucvn.data.h5io`);
- :class:`ShardDataset` — a split of preprocessed shards (:mod:`nucvn.data.shards`);
- :func:`create_model` — a backbone by name (:mod:`nucvn.models`);
- :func:`create_tasks` — tasks by name (:mod:`nucvn.tasks`);
- :func:`load_model`, :func:`predict` — a trained model directory and its predictions per task
  (:mod:`nucvn.inference`).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API: dict[str, str] = {
    "open_events": "nucvn.data.h5io",
    "ShardDataset": "nucvn.data.shards",
    "create_model": "nucvn.models",
    "create_tasks": "nucvn.tasks",
    "load_model": "nucvn.inference",
    "predict": "nucvn.inference",
}

__all__ = ["__version__", "open_events", "ShardDataset", "create_model", "create_tasks", "load_model", "predict"]
"""The names of :data:`_API`, spelled out so that tools can read them."""


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'nucvn' has no attribute {name!r}")
