"""The training parameters: one typed definition, holding the defaults of ``params.yaml: train``.

:class:`TrainConfig` is the only place the training parameters and their defaults are written;
``params.yaml`` repeats the defaults (a test keeps the two equal) and
:func:`nucvn.core.params.parse_params` builds a ``TrainConfig`` from the file, naming the key of a
wrong type or an unknown key. :meth:`TrainConfig.validate` checks what a type cannot say: the
choices of every string option (``Literal``), the bounds in each field's metadata (``min``,
``gt``, as :mod:`nucvn.core.params` reads them), the model name and the model's size arguments.

Size arguments live under the model's name (``model_kwargs: {cvn2v: {width: 16}, seed_report:
{}}``), so ``dvc exp run -S train.model=seed_report`` switches model without handing it another
model's arguments, and each model's section can be set or emptied on its own (DVC merges ``-S``
dicts key by key, so a single flat dict could never be cleared).
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, get_args, get_origin, get_type_hints

from nucvn.train.distributed import DeviceName
from nucvn.core.errors import NucvnError
from nucvn.models import Scale, list_models
from nucvn.models import registry

__all__ = ["TrainConfig", "OptimizerName", "ScheduleName", "BalanceName", "DEFAULT_MODEL_KWARGS", "accepted_kwargs"]

OptimizerName = Literal["adamw", "sgd"]
ScheduleName = Literal["onecycle", "cosine", "constant"]
BalanceName = Literal["weights", "sampler", "none"]

DEFAULT_MODEL_KWARGS: dict[str, dict[str, Any]] = {
    "cvn2v": {"width": 16, "depth": 1, "dropout": 0.3},
    "seed_notebook": {},
    "seed_report": {},
}
"""Size arguments of each registered model (copied, never shared, by :class:`TrainConfig`)."""


def _default_model_kwargs() -> dict[str, dict[str, Any]]:
    return {name: dict(kwargs) for name, kwargs in DEFAULT_MODEL_KWARGS.items()}


def accepted_kwargs(model: str) -> list[str] | None:
    """Keyword arguments the constructor of registered ``model`` takes (``None``: any, it has
    ``**kwargs``), read with :func:`inspect.signature` so the list never goes stale."""
    params = inspect.signature(registry._REGISTRY[model]).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]


@dataclass(frozen=True)
class TrainConfig:
    """Every training choice (``params.yaml: train``); recorded in ``model.json``.

    ``batch_size`` is global (split evenly over DDP processes). ``gpus`` is the number of
    processes the stage launches with torchrun (one per GPU; on a CPU, gloo processes).
    ``model_kwargs`` maps each model name to its size arguments; only ``model``'s are used.
    """

    model: str = "cvn2v"
    model_kwargs: dict[str, dict[str, Any]] = field(default_factory=_default_model_kwargs)
    epochs: int = field(default=12, metadata={"min": 1})
    batch_size: int = field(default=128, metadata={"min": 1})
    optimizer: OptimizerName = "adamw"
    lr: float = field(default=0.003, metadata={"gt": 0})
    schedule: ScheduleName = "onecycle"
    weight_decay: float = field(default=0.05, metadata={"min": 0})
    momentum: float = field(default=0.9, metadata={"min": 0})
    seed: int = field(default=0, metadata={"min": 0})
    scale: Scale = "log1p"
    balance: BalanceName = "weights"
    patience: int = field(default=3, metadata={"min": 0})
    augment: bool = True
    workers: int = field(default=0, metadata={"min": 0})
    device: DeviceName = "auto"
    gpus: int = field(default=1, metadata={"min": 1})

    @property
    def kwargs(self) -> dict[str, Any]:
        """The size arguments of the chosen model (``model_kwargs[model]``, empty if absent)."""
        return dict(self.model_kwargs.get(self.model) or {})

    def validate(self) -> None:
        """Raise :class:`NucvnError` naming the first bad ``train.*`` parameter."""
        hints = get_type_hints(type(self))
        for f in fields(self):
            value, key = getattr(self, f.name), f"train.{f.name}"
            if get_origin(hints[f.name]) is Literal and value not in get_args(hints[f.name]):
                raise NucvnError(f"{key} must be one of {', '.join(get_args(hints[f.name]))}, got {value!r}")
            if "min" in f.metadata and not value >= f.metadata["min"]:
                raise NucvnError(f"{key} must be >= {f.metadata['min']}, got {value!r}")
            if "gt" in f.metadata and not value > f.metadata["gt"]:
                raise NucvnError(f"{key} must be > {f.metadata['gt']}, got {value!r}")
        self._validate_model()

    def _validate_model(self) -> None:
        known = list_models()
        if self.model not in known:
            raise NucvnError(f"train.model: unknown model {self.model!r}; known models: {', '.join(known)}")
        if not isinstance(self.model_kwargs, dict):
            raise NucvnError(f"train.model_kwargs must map model names to their size arguments "
                             f"(e.g. {{cvn2v: {{width: 16}}}}), got {self.model_kwargs!r}")
        for name, kwargs in self.model_kwargs.items():
            if name not in known:
                raise NucvnError(f"train.model_kwargs.{name}: not a model; the keys are model names ({', '.join(known)}) "
                                 f"holding their size arguments, e.g. model_kwargs: {{cvn2v: {{width: 16}}}}")
            if kwargs is not None and not isinstance(kwargs, dict):
                raise NucvnError(f"train.model_kwargs.{name} must be a mapping of {name}'s size arguments "
                                 f"(or {{}}), got {kwargs!r}")
        accepted = accepted_kwargs(self.model)
        for key in self.kwargs:
            if accepted is not None and key not in accepted:
                raise NucvnError(f"train.model_kwargs.{self.model}.{key}: model {self.model!r} takes no such "
                                 f"argument; it accepts {', '.join(accepted) or 'none'}")

    def fingerprint(self, data_sha: dict[str, Any], architecture: dict[str, list[int]]) -> str:
        """Hash of the configuration (not ``workers``, and only the chosen model's size
        arguments), the data and the parameter shapes: a checkpoint resumes only a run with the
        same fingerprint."""
        cfg = {k: v for k, v in asdict(self).items() if k != "workers"} | {"model_kwargs": self.kwargs}
        blob = json.dumps({"config": cfg, "data": data_sha, "architecture": architecture}, sort_keys=True,
                          default=str).encode()
        return hashlib.sha256(blob).hexdigest()
