"""The records of a training run: one history row per epoch (logged by :mod:`nucvn.train.live`),
the best epoch's metrics and what ``model.json`` records beside the model directory format's own
keys (:func:`nucvn.train.train`)."""

from __future__ import annotations

import platform
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import numpy as np
import safetensors
import torch

from nucvn import __version__
from nucvn.data.shards import ShardDataset
from nucvn.report.baseline import pixel_charge
from nucvn.report.visible_energy import VISIBLE_ENERGY, fit_visible_energy
from nucvn.tasks import Task
from nucvn.train.config import TrainConfig
from nucvn.train.objective import Objective

__all__ = ["history_row", "best_metrics", "model_record", "metric_names"]


def metric_names(task: Task) -> list[str]:
    """The validation metrics ``task`` reports (e.g. ``auc``, ``accuracy``)."""
    pred = np.zeros((0, task.n_outputs)) if task.kind in ("multiclass", "count") else np.zeros(0)
    return list(task.val_metrics(task.val_counts(pred, np.zeros(0), np.zeros(0, dtype=bool))))


def _versions() -> dict[str, str]:
    return {"nucvn": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "safetensors": safetensors.__version__, "python": platform.python_version()}


def history_row(epoch: int, tasks: list[Task], primary: Task, train_losses: dict[str, float], total_train: float,
                 val: dict[str, Any], objective: Objective) -> dict[str, float]:
    """One epoch's numbers: ``epoch`` (from 1), the primary task's ``train_loss``, ``val_loss`` and
    ``val_<metric>`` unprefixed, ``total_train_loss``, ``total_val_loss``, and per task
    ``<task>_train_loss``, ``<task>_val_loss``, ``<task>_val_<metric>`` and, with learned weighting,
    ``<task>_log_variance`` (the checkpoint keeps these rows; :mod:`nucvn.train.live` logs them)."""
    row: dict[str, float] = {"epoch": float(epoch + 1), "train_loss": train_losses[primary.name]}
    row |= val[primary.name]
    row |= {"total_train_loss": total_train, "total_val_loss": val["total_val_loss"]}
    log_vars = objective.describe()["log_variances"]
    for t in tasks:
        row[f"{t.name}_train_loss"] = train_losses[t.name]
        row |= {f"{t.name}_{k}": v for k, v in val[t.name].items()}
        if isinstance(log_vars, dict):
            row[f"{t.name}_log_variance"] = log_vars[t.name]
    return row


def best_metrics(row: Mapping[str, float], best_epoch: int, tasks: list[Task], primary: Task) -> dict[str, Any]:
    """The best epoch's quality from its history ``row``: the primary task's numbers unprefixed,
    the objective, one dict per task (with its learned log-variance where the row has one)."""
    own = [f"val_{m}" for m in metric_names(primary)]
    out: dict[str, Any] = {"best_epoch": int(best_epoch), "val_loss": row["val_loss"]} | {k: row[k] for k in own}
    out["total_val_loss"] = row["total_val_loss"]
    for t in tasks:
        out[t.name] = {"val_loss": row[f"{t.name}_val_loss"]} | \
            {f"val_{m}": row[f"{t.name}_val_{m}"] for m in metric_names(t)}
        if f"{t.name}_log_variance" in row:
            out[t.name]["log_variance"] = row[f"{t.name}_log_variance"]
    return out


def model_record(cfg: TrainConfig, data_sha: dict[str, Any], train_data: ShardDataset,
                  result_metrics: dict[str, Any], result_info: dict[str, Any]) -> dict[str, Any]:
    """What ``model.json`` records beside the format's own keys: parameters, data, versions, result,
    and the visible-energy calibration fitted on the whole train split
    (:mod:`nucvn.report.visible_energy`), so the model directory alone evaluates any files."""
    charge = np.concatenate([pixel_charge(block) for block in train_data.dense_blocks()] or [np.zeros(0)])
    return {
        "train_params": asdict(cfg),
        "data": {"shards": str(train_data.root), "sha256": data_sha, "sources": train_data.index.get("sources", []),
                 "n_train": result_info["n_train"], "n_val": result_info["n_val"]},
        "versions": _versions(),
        VISIBLE_ENERGY: fit_visible_energy(charge, train_data.metadata),
        "result": {"metrics": result_metrics, "info": result_info},
    }
