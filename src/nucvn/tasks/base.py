"""The Task interface: everything about one quantity the network predicts, in one object.

A task names the shard metadata columns it reads (:attr:`Task.columns`), turns them into a target
and a *defined* mask (:meth:`Task.targets`; labels come only from :mod:`nucvn.core.events`),
builds its head on the backbone's features (:meth:`Task.make_head`), gives a per-event loss that
is exactly 0 where the task is undefined (:meth:`Task.loss`), turns head outputs into predictions
in physical units (:meth:`Task.predict`, columns :meth:`Task.prediction_columns`) and accumulates
validation counts that add across batches and DDP ranks (:meth:`Task.val_counts`), divided once
at the end (:meth:`Task.val_metrics`). The training loop, inference and evaluation iterate over
tasks and never name one (../shared/DESIGN.md, "Tasks"; the graphnet pattern: a model is a
backbone plus a list of tasks whose losses add).

Kinds: ``binary`` (one logit, score = sigmoid), ``multiclass`` and ``count`` (``k`` logits, class
probabilities = softmax; counts are classes "0", "1", "2", ">=3" as in DUNE's CVN, Phys. Rev. D
102, 092003 (2020)), ``regression`` (one output, a value in :attr:`Task.unit`). The concrete kinds
are :class:`BinaryTask`, :class:`ClassificationTask` and :class:`RegressionTask` below; a task
module only states its label.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from nucvn.core import events as ev
from nucvn.core.errors import NucvnError
from nucvn.report import stats

__all__ = ["Task", "TaskKind", "BinaryTask", "ClassificationTask", "CountTask", "RegressionTask", "AUC_BINS",
           "neutrino_interaction"]

TaskKind = Literal["binary", "multiclass", "regression", "count"]
AUC_BINS = 10_000
"""Score histogram bins of a binary task's validation AUC (:func:`nucvn.report.stats.auc_from_histograms`)."""

_H5_KEYS = {"nproton", "npion", "npizero", "nneutron", "interaction", "nuenergy", "lepenergy", "finalstate"}
_SIM_ONLY = {"nproton", "npion", "npizero", "nneutron"}


def neutrino_interaction(meta: pd.DataFrame) -> npt.NDArray[np.bool_]:
    """Events with a neutrino interaction: flavour νμ CC, νe CC, ντ CC or NC (not cosmic, not "other")."""
    fl = ev.flavour(meta["interaction"].to_numpy())
    return (fl >= ev.Flavour.NUMU_CC) & (fl <= ev.Flavour.NC)


class Task:
    """One predicted quantity; subclasses set the class attributes and :meth:`targets`.

    Attributes (class level, what ``model.json`` and the evaluation read):
        name: registry name, also the prefix of history, metric and prediction columns.
        kind: ``binary``, ``multiclass``, ``count`` or ``regression``.
        columns: shard metadata columns :meth:`targets` reads.
        classes: class names (binary: ``("not <x>", "<x>")``); empty for regression.
        unit: unit of a regression value ("GeV" for energies), else "".
        definition: the label in one line (recorded in ``model.json``).
        resolution: regression only: the evaluation's residual, ``relative`` ((pred - true) / true)
            or ``absolute`` (pred - true).
        baseline: the classical estimate the evaluation compares against (``calorimetric``) or None.
        n_outputs: width of the head's output.
        head: description of :meth:`make_head`, for ``model.json``.
    """

    name: ClassVar[str]
    kind: ClassVar[TaskKind]
    columns: ClassVar[tuple[str, ...]]
    classes: ClassVar[tuple[str, ...]] = ()
    unit: ClassVar[str] = ""
    definition: ClassVar[str]
    resolution: ClassVar[Literal["relative", "absolute"]] = "absolute"
    baseline: ClassVar[Literal["calorimetric"] | None] = None
    n_outputs: ClassVar[int]
    head: ClassVar[str] = "linear"

    def targets(self, meta: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """``(target, defined)`` per event of ``meta`` (vectorised); the target is 0 where undefined."""
        raise NotImplementedError

    def check_columns(self, columns: Collection[str], where: str, *, instead: Sequence[str] | None = None) -> None:
        """Refuse, in one line naming the task, the key, ``where`` and the fix, when ``columns``
        lacks one of :attr:`columns`. ``instead``: the task list to suggest (default: the other
        tasks ``columns`` can serve)."""
        missing = [c for c in self.columns if c not in columns]
        if not missing:
            return
        key = missing[0]
        if instead is None:
            from nucvn.tasks.registry import available_tasks

            instead = available_tasks(columns)
        why = " (the real files carry no particle counts)" if key in _SIM_ONLY else ""
        h5 = f" (neutrino/{key})" if key in _H5_KEYS else ""
        suggestion = ",".join(n for n in instead if n != self.name)
        raise NucvnError(f"task {self.name} needs the key {key!r}{h5}, which {where} lacks{why}; train without it: "
                         f"dvc exp run -S 'train.tasks=[{suggestion}]'")

    def make_head(self, n_features: int) -> nn.Module:
        """The head on the backbone's ``(n, n_features)`` features: one linear layer (hard
        parameter sharing: everything but the last layer is common to all tasks)."""
        if self.n_outputs == 1:
            return nn.Sequential(nn.Linear(n_features, 1), nn.Flatten(0))
        return nn.Linear(n_features, self.n_outputs)

    def loss(self, output: torch.Tensor, target: torch.Tensor, defined: torch.Tensor) -> torch.Tensor:
        """Per-event loss ``(n,)``, exactly 0 (and without gradient) where ``defined`` is False."""
        raise NotImplementedError

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        """Head output -> prediction: binary ``(n,)`` score, classes ``(n, k)`` probabilities,
        regression ``(n,)`` value in :attr:`unit`."""
        raise NotImplementedError

    def prediction_columns(self) -> list[str]:
        """Names of the prediction's columns (one per column of :meth:`predict`'s result)."""
        raise NotImplementedError

    def sample_weights(self, target: np.ndarray, defined: np.ndarray) -> np.ndarray | None:
        """Per-event loss weights against class imbalance (``train.balance``), or None."""
        return None

    def val_counts(self, pred: np.ndarray, target: np.ndarray, defined: np.ndarray) -> np.ndarray:
        """Fixed-length float64 counts of one batch's defined events; they add across batches and ranks."""
        raise NotImplementedError

    def val_metrics(self, counts: np.ndarray) -> dict[str, float]:
        """Summary numbers from summed :meth:`val_counts` (names without the ``val_`` prefix)."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What ``model.json`` records about the task."""
        return {"name": self.name, "kind": self.kind, "classes": list(self.classes), "unit": self.unit,
                "definition": self.definition, "columns": list(self.columns),
                "prediction_columns": self.prediction_columns(), "head": self.head, "n_outputs": self.n_outputs,
                "resolution": self.resolution if self.kind == "regression" else None, "baseline": self.baseline}

    def __repr__(self) -> str:
        return f"<task {self.name} ({self.kind})>"


def _masked(per_event: torch.Tensor, defined: torch.Tensor) -> torch.Tensor:
    return torch.where(defined, per_event, torch.zeros((), dtype=per_event.dtype, device=per_event.device))


class BinaryTask(Task):
    """One logit; per-event binary cross-entropy; score = sigmoid; counts: confusion at 0.5 and
    score histograms for the AUC (:func:`nucvn.report.stats.auc_from_histograms`)."""

    kind: ClassVar[TaskKind] = "binary"
    n_outputs: ClassVar[int] = 1

    def loss(self, output: torch.Tensor, target: torch.Tensor, defined: torch.Tensor) -> torch.Tensor:
        y = torch.where(defined, target.float(), torch.zeros((), device=target.device))
        return _masked(F.binary_cross_entropy_with_logits(output.float(), y, reduction="none"), defined)

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(output.float())

    def prediction_columns(self) -> list[str]:
        return [f"{self.name}_score"]

    def sample_weights(self, target: np.ndarray, defined: np.ndarray) -> np.ndarray | None:
        """``n / (2 n_c)`` for the event's true class c (the public report's eq. 2; 1 for an absent class)."""
        y = np.asarray(target)[defined].astype(np.int64)
        n_c = np.bincount(y, minlength=2).astype(np.float64)
        w = np.where(n_c > 0, len(y) / (2.0 * np.maximum(n_c, 1)), 1.0)
        return np.where(defined, w[np.clip(np.asarray(target).astype(np.int64), 0, 1)], 0.0).astype(np.float32)

    def val_counts(self, pred: np.ndarray, target: np.ndarray, defined: np.ndarray) -> np.ndarray:
        p = np.asarray(pred, np.float64)[defined]
        lab = np.asarray(target)[defined].astype(bool)
        c = stats.confusion_counts(lab, p, 0.5).to_array().astype(np.float64)
        bins = np.minimum((p * AUC_BINS).astype(np.int64), AUC_BINS - 1)
        hist = np.stack([np.bincount(bins[~lab], minlength=AUC_BINS), np.bincount(bins[lab], minlength=AUC_BINS)])
        return np.concatenate([c, hist.ravel().astype(np.float64)])

    def val_metrics(self, counts: np.ndarray) -> dict[str, float]:
        c = stats.Counts.from_array(np.rint(counts[:4]).astype(np.int64))
        h = counts[4:].reshape(2, AUC_BINS)
        return {"auc": stats.auc_from_histograms(h[1], h[0]), "accuracy": float(stats.accuracy(c)),
                "balanced_accuracy": float(stats.balanced_accuracy(c))}


class ClassificationTask(Task):
    """``k`` logits (multiclass or count); per-event cross-entropy; class probabilities = softmax;
    counts: the ``k x k`` confusion matrix (true x predicted) of the defined events."""

    def loss(self, output: torch.Tensor, target: torch.Tensor, defined: torch.Tensor) -> torch.Tensor:
        y = torch.where(defined, target.long(), torch.zeros((), dtype=torch.long, device=target.device))
        return _masked(F.cross_entropy(output.float(), y, reduction="none"), defined)

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        return torch.softmax(output.float(), dim=1)

    def prediction_columns(self) -> list[str]:
        return [f"{self.name}_p_{c.replace('>=', 'ge')}" for c in self.classes]

    def val_counts(self, pred: np.ndarray, target: np.ndarray, defined: np.ndarray) -> np.ndarray:
        k = len(self.classes)
        true = np.asarray(target)[defined].astype(np.int64)
        guess = np.asarray(pred)[defined].argmax(axis=1)
        return np.bincount(true * k + guess, minlength=k * k).astype(np.float64)

    def val_metrics(self, counts: np.ndarray) -> dict[str, float]:
        """Accuracy and balanced accuracy (mean recall over the classes present)."""
        k = len(self.classes)
        m = np.asarray(counts, np.float64).reshape(k, k)
        n_true = m.sum(axis=1)
        recall = np.diag(m)[n_true > 0] / n_true[n_true > 0]
        total = m.sum()
        return {"accuracy": float(np.trace(m) / total) if total else float("nan"),
                "balanced_accuracy": float(recall.mean()) if recall.size else float("nan")}


class RegressionTask(Task):
    """One output; counts: number, sum, sum of squares and sum of absolute values of the residual
    (relative or absolute, :attr:`Task.resolution`) -> ``bias``, ``rms`` and ``mean_abs``."""

    kind: ClassVar[TaskKind] = "regression"
    n_outputs: ClassVar[int] = 1

    def prediction_columns(self) -> list[str]:
        """``<name>_<unit>`` (``nuenergy_gev``), or ``<name>_pred`` for a dimensionless value, so the
        prediction never takes the name of the shards' truth column (``lepton_fraction``)."""
        return [f"{self.name}_{self.unit.lower()}" if self.unit else f"{self.name}_pred"]

    def val_counts(self, pred: np.ndarray, target: np.ndarray, defined: np.ndarray) -> np.ndarray:
        p = np.asarray(pred, np.float64)[defined]
        t = np.asarray(target, np.float64)[defined]
        r = (p - t) / t if self.resolution == "relative" else p - t
        return np.array([r.size, r.sum(), (r * r).sum(), np.abs(r).sum()], dtype=np.float64)

    def val_metrics(self, counts: np.ndarray) -> dict[str, float]:
        n, s, s2, sa = (float(x) for x in counts)
        if n == 0:
            return {"bias": float("nan"), "rms": float("nan"), "mean_abs": float("nan")}
        return {"bias": s / n, "rms": float(np.sqrt(s2 / n)), "mean_abs": sa / n}


class CountTask(ClassificationTask):
    """Number of final-state particles of one kind leaving the nucleus, as classes "0", "1", "2",
    ">=3" (DUNE's CVN, Phys. Rev. D 102, 092003 (2020)). Defined for neutrino interactions; the
    counts are simulated truth (``neutrino/<column>``), absent from the real files."""

    kind: ClassVar[TaskKind] = "count"
    classes: ClassVar[tuple[str, ...]] = ("0", "1", "2", ">=3")
    n_outputs: ClassVar[int] = 4
    count_column: ClassVar[str]

    def targets(self, meta: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        defined = neutrino_interaction(meta)
        n = np.minimum(meta[self.count_column].to_numpy().astype(np.int64), 3)
        return np.where(defined, n, 0).astype(np.int64), defined
