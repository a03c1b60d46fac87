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

Tasks (:mod:`nucvn.tasks`): ``tasks: auto`` trains every registered task whose columns the shards
carry (:meth:`TrainConfig.resolve_tasks`); an explicit list is checked against the shards'
columns before training starts. ``task_weights`` are the fixed loss weights ``w_t`` (a task
absent from the mapping weighs 1). ``loss_weighting: learned`` adds a learned log-variance ``s_t``
per task (homoscedastic uncertainty weighting, Kendall, Gal & Cipolla, CVPR 2018): the objective is
``sum_t w_t (exp(-s_t) L_t + s_t)`` instead of ``sum_t w_t L_t``.

Processes: ``gpus`` per machine, on ``nodes`` machines (``nodes * gpus`` DDP processes in all).
With ``nodes > 1`` every machine starts the stage and torchrun's c10d rendezvous at
``rdzv_endpoint`` (``host:port``, one of the machines) gathers them under the job id ``rdzv_id``
(:func:`nucvn.train.distributed.torchrun_command`). These two say where the processes meet, not
what they compute, so the checkpoint fingerprint leaves them out: a preempted job resumes on
other machines.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Collection
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, get_args, get_origin, get_type_hints

from nucvn.core.errors import NucvnError
from nucvn.models import Scale, list_models, registry
from nucvn.tasks import Task, available_tasks, create_tasks, list_tasks
from nucvn.train.distributed import DeviceName

__all__ = ["TrainConfig", "OptimizerName", "ScheduleName", "BalanceName", "LossWeighting", "DEFAULT_MODEL_KWARGS",
           "DEFAULT_TASK_WEIGHTS", "accepted_kwargs"]

OptimizerName = Literal["adamw", "sgd"]
ScheduleName = Literal["onecycle", "cosine", "constant"]
BalanceName = Literal["weights", "sampler", "none"]
LossWeighting = Literal["fixed", "learned"]

DEFAULT_MODEL_KWARGS: dict[str, dict[str, Any]] = {
    "cvn2v": {"width": 16, "depth": 1, "head": 64, "dropout": 0.3, "se": False, "spatial": 0},
    "seed_notebook": {},
    "seed_report": {},
}
"""Size arguments of each registered model (copied, never shared, by :class:`TrainConfig`)."""


DEFAULT_TASK_WEIGHTS: dict[str, float] = {
    "numu_cc": 1.0, "flavour": 1.0, "mode": 1.0, "nuenergy": 1.0, "lepton_fraction": 1.0,
    "nproton": 1.0, "npion": 1.0, "npizero": 1.0,
}
"""Fixed loss weight of each registered task (``train.task_weights``)."""


def _default_task_weights() -> dict[str, float]:
    return dict(DEFAULT_TASK_WEIGHTS)


def _default_model_kwargs() -> dict[str, dict[str, Any]]:
    return {name: dict(kwargs) for name, kwargs in DEFAULT_MODEL_KWARGS.items()}


def accepted_kwargs(model: str) -> list[str] | None:
    """Keyword arguments the constructor of registered ``model`` takes (``None``: any, it has
    ``**kwargs``), read with :func:`inspect.signature` so the list never goes stale."""
    params = inspect.signature(registry._REGISTRY[model]).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                 inspect.Parameter.KEYWORD_ONLY)]


@dataclass(frozen=True)
class TrainConfig:
    """Every training choice (``params.yaml: train``); recorded in ``model.json``.

    ``batch_size`` is global (split evenly over DDP processes). ``gpus`` is the number of
    processes the stage launches with torchrun on each machine (one per GPU; on a CPU, gloo
    processes); ``nodes`` the number of machines, meeting at ``rdzv_endpoint`` as job ``rdzv_id``.
    ``model_kwargs`` maps each model name to its size arguments; only ``model``'s are used.
    ``tasks``: ``auto`` or a list of task names; ``task_weights``: fixed loss weight per task;
    ``loss_weighting``: ``fixed`` or ``learned`` (module docstring).
    """

    model: str = "cvn2v"
    model_kwargs: dict[str, dict[str, Any]] = field(default_factory=_default_model_kwargs)
    epochs: int = field(default=6, metadata={"min": 1})
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
    ema: float = field(default=0.0, metadata={"min": 0, "lt": 1})
    train_events: int = field(default=0, metadata={"min": 0})
    max_steps: int = field(default=0, metadata={"min": 0})
    workers: int = field(default=0, metadata={"min": 0})
    device: DeviceName = "auto"
    gpus: int = field(default=1, metadata={"min": 1})
    nodes: int = field(default=1, metadata={"min": 1})
    rdzv_endpoint: str = ""
    rdzv_id: str = "nucvn"
    tasks: Literal["auto"] | list[str] = "auto"
    task_weights: dict[str, float] = field(default_factory=_default_task_weights)
    loss_weighting: LossWeighting = "fixed"

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
            if "lt" in f.metadata and not value < f.metadata["lt"]:
                raise NucvnError(f"{key} must be < {f.metadata['lt']}, got {value!r}")
        self._validate_model()
        self._validate_tasks()
        self._validate_nodes()

    def _validate_nodes(self) -> None:
        """``rdzv_endpoint`` is ``host:port`` (required with ``nodes > 1``, checked whenever set, so
        that a typo is caught on one machine too) and ``rdzv_id`` a job id without blanks."""
        endpoint = self.rdzv_endpoint
        if not endpoint:
            if self.nodes > 1:
                raise NucvnError(f"train.nodes={self.nodes} needs train.rdzv_endpoint: the host:port where the "
                                 "machines meet, one of them (e.g. the first node of the allocation, node001:29500)")
        else:
            host, _, port = endpoint.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536 or any(c.isspace() for c in endpoint):
                raise NucvnError(f"train.rdzv_endpoint must be host:port (e.g. node001:29500), got {endpoint!r}")
        if not self.rdzv_id or any(c.isspace() for c in self.rdzv_id):
            raise NucvnError(f"train.rdzv_id must be a job id without blanks, the same on every machine, "
                             f"got {self.rdzv_id!r}")

    def _validate_tasks(self) -> None:
        known = list_tasks()
        if self.tasks != "auto":
            if not isinstance(self.tasks, list):
                raise NucvnError(f"train.tasks must be auto or a list of task names ({', '.join(known)}), got "
                                 f"{self.tasks!r}")
            create_tasks(self.tasks)
        for name, weight in self.task_weights.items():
            if name not in known:
                raise NucvnError(f"train.task_weights.{name}: not a task; the keys are task names ({', '.join(known)})")
            if not (isinstance(weight, (int, float)) and weight >= 0):
                raise NucvnError(f"train.task_weights.{name} must be a number >= 0, got {weight!r}")

    def resolve_tasks(self, columns: Collection[str], where: str) -> list[Task]:
        """The tasks to train on shards with metadata ``columns`` (``where`` names them in errors):
        ``auto``: every registered task the columns serve; a list: those tasks, each refused in one
        line (:meth:`nucvn.tasks.base.Task.check_columns`) if the shards lack a column it reads."""
        if self.tasks == "auto":
            return create_tasks(available_tasks(columns))
        tasks = create_tasks(self.tasks)
        usable = [t.name for t in tasks if all(c in columns for c in t.columns)]
        for task in tasks:
            task.check_columns(columns, where, instead=usable)
        return tasks

    def task_weight(self, name: str) -> float:
        """The fixed loss weight of task ``name`` (1 if ``task_weights`` does not list it)."""
        return float(self.task_weights.get(name, 1.0))

    def _validate_model(self) -> None:
        known = list_models()
        if self.model not in known:
            raise NucvnError(f"train.model: unknown model {self.model!r}; known models: {', '.join(known)}")
        if not isinstance(self.model_kwargs, dict):
            raise NucvnError(f"train.model_kwargs must map model names to their size arguments "
                             f"(e.g. {{cvn2v: {{width: 16}}}}), got {self.model_kwargs!r}")
        for name, kwargs in self.model_kwargs.items():
            if name not in known:
                raise NucvnError(f"train.model_kwargs.{name}: not a model; the keys are model names "
                                 f"({', '.join(known)}) "
                                 f"holding their size arguments, e.g. model_kwargs: {{cvn2v: {{width: 16}}}}")
            if kwargs is not None and not isinstance(kwargs, dict):
                raise NucvnError(f"train.model_kwargs.{name} must be a mapping of {name}'s size arguments "
                                 f"(or {{}}), got {kwargs!r}")
        accepted = accepted_kwargs(self.model)
        accepted = None if accepted is None else [k for k in accepted if k != "num_outputs"]
        for key in self.kwargs:
            if key == "num_outputs":
                raise NucvnError(f"train.model_kwargs.{self.model}.num_outputs: the outputs are the task heads' "
                                 "(train.tasks); remove this key")
            if accepted is not None and key not in accepted:
                raise NucvnError(f"train.model_kwargs.{self.model}.{key}: model {self.model!r} takes no such "
                                 f"argument; it accepts {', '.join(accepted) or 'none'}")

    def fingerprint(self, data_sha: dict[str, Any], architecture: dict[str, list[int]]) -> str:
        """Hash of the configuration (not ``workers``, ``rdzv_endpoint`` and ``rdzv_id``, which
        change nothing computed; ``nodes`` only when above 1, so checkpoints of one machine keep
        their fingerprint; only the chosen model's size arguments), the data and the parameter
        shapes: a checkpoint resumes only a run with the same fingerprint."""
        cfg = {k: v for k, v in asdict(self).items() if k not in ("workers", "rdzv_endpoint", "rdzv_id")
               and not (k == "nodes" and v == 1)} | {"model_kwargs": self.kwargs}
        blob = json.dumps({"config": cfg, "data": data_sha, "architecture": architecture}, sort_keys=True,
                          default=str).encode()
        return hashlib.sha256(blob).hexdigest()
