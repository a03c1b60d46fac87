"""The one writer of the training history: DVCLive, offline, inside the DVC pipeline.

:class:`TrainLive` logs a run of :func:`nucvn.train.train` through DVCLive into one directory
(``dvclive/`` in the pipeline, ``--live-dir`` of ``stages/train.py``), so that ``dvc exp show``
lists each experiment's parameters and best-epoch metrics and ``dvc plots show`` / ``dvc plots
diff`` draw the per-epoch curves of several experiments side by side (and the VS Code DVC
extension shows both live):

* ``params.yaml``: the whole :class:`nucvn.train.config.TrainConfig`, defaults included;
* ``plots/metrics/<name>.tsv``: one row per epoch, ``step`` = the epoch number, counted from 1
  like ``best_epoch`` and the printed epochs. The names group the history row's columns per task:
  ``<task>/train_loss``, ``<task>/val_loss``, ``<task>/val_<metric>`` (``numu_cc/val_auc``,
  ``nuenergy/val_rms``, ...), ``<task>/log_variance`` (``train.loss_weighting: learned``), the
  weighted objective as ``total/train_loss`` and ``total/val_loss``, and ``train_events_per_s``.
  The primary task's unprefixed aliases of the row (``val_auc``, ...) are not logged twice: they
  are ``<primary>/...``;
* ``metrics.json``: the best epoch's quality numbers so far (:func:`nucvn.train.records.best_metrics`:
  ``best_epoch``, the primary task's numbers unprefixed, ``total_val_loss``, one dict per task),
  rewritten after every epoch and at the end with the run's result, plus DVCLive's ``step`` (the
  last epoch logged).

Inside ``dvc repro`` / ``dvc exp run`` DVCLive must not write ``dvc.yaml`` (``dvcyaml=False``; the
stage declares these files as its outputs), save an experiment of its own (``save_dvc_exp=False``;
``dvc exp run`` does), track files with DVC (no ``log_artifact``: DVCLive records artifacts only in
the ``dvc.yaml`` it writes, so the model ``data/model`` is declared under ``artifacts:`` in the
project's ``dvc.yaml`` instead) or write a report.

No network: DVCLive would send live metrics to DVC Studio when a Studio token is configured;
:func:`offline` sets ``DVC_STUDIO_OFFLINE`` (which overrides ``studio.token`` and
``DVC_STUDIO_TOKEN``) and ``DVC_NO_ANALYTICS`` in this process and its children before a
:class:`Live` is made. DVCLive itself sends no usage statistics.

Resume: a fresh :class:`Live` clears its directory, and the run re-logs the checkpointed history
(:meth:`TrainLive.log_epoch` for each row) before training on, so the files equal those of an
uninterrupted run (the rates in ``train_events_per_s`` are each epoch's own measurement).
Only the global rank 0 makes a :class:`TrainLive`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from nucvn.tasks import Task, primary_task
from nucvn.train.config import TrainConfig
from nucvn.train.records import best_metrics, metric_names

__all__ = ["TrainLive", "live_name", "offline", "OFFLINE_ENV"]

OFFLINE_ENV: dict[str, str] = {"DVC_STUDIO_OFFLINE": "true", "DVC_NO_ANALYTICS": "true"}
"""What :func:`offline` sets: no live metrics to DVC Studio, no DVC usage statistics."""


def offline() -> None:
    """Switch DVC Studio's live metrics and DVC's analytics off for this process and its children."""
    os.environ.update(OFFLINE_ENV)


def live_name(key: str, tasks: list[Task]) -> str | None:
    """The DVCLive metric name of history column ``key`` (module docstring); ``None`` for ``epoch``
    (the step) and the primary task's unprefixed aliases."""
    primary = primary_task(tasks)
    if key == "epoch" or key in ("train_loss", "val_loss", *(f"val_{m}" for m in metric_names(primary))):
        return None
    if key.startswith("total_"):
        return f"total/{key.removeprefix('total_')}"
    for task in sorted((t.name for t in tasks), key=len, reverse=True):
        if key.startswith(f"{task}_"):
            return f"{task}/{key.removeprefix(f'{task}_')}"
    return key


class TrainLive:
    """DVCLive logger of one training run: :meth:`log_epoch` after every epoch, :meth:`end` once."""

    def __init__(self, directory: Path, config: TrainConfig, tasks: list[Task]) -> None:
        offline()
        from dvclive import Live  # after offline(); imports DVC, so only where a history is written

        self.directory = Path(directory)
        self._tasks, self._primary = tasks, primary_task(tasks)
        self._names: dict[str, str | None] = {}
        self._best_loss: float = math.inf
        self._best_row: Mapping[str, float] | None = None
        self._live = Live(dir=str(self.directory), resume=False, report=None, save_dvc_exp=False, dvcyaml=False)
        self._release_repository()
        self._live.log_params(asdict(config))

    def _release_repository(self) -> None:
        """Close the DVC repository DVCLive opened to look around (it would keep git's pack files
        open until garbage collection, a ResourceWarning). What DVCLive needs it for later, this
        logger does not do: save an experiment, write dvc.yaml, cache artifacts, git-add files of
        its directory that are no stage output (they all are outputs of the train stage)."""
        repo = getattr(self._live, "_dvc_repo", None)
        if repo is not None:
            repo.close()
            self._live._dvc_repo = None

    def log_epoch(self, row: Mapping[str, float]) -> None:
        """Log one history row (:func:`nucvn.train.records.history_row`) at step ``row["epoch"]`` and
        rewrite ``metrics.json`` with the best epoch so far (the lowest ``total_val_loss``, the
        first of equals, as the loop chooses)."""
        self._live.step = int(row["epoch"])
        for key, value in row.items():
            if key not in self._names:
                self._names[key] = live_name(key, self._tasks)
            name = self._names[key]
            if name is not None:
                self._live.log_metric(name, float(value))
        if row["total_val_loss"] < self._best_loss:
            self._best_loss, self._best_row = row["total_val_loss"], row
        best = self._best_row
        self._live.summary = {} if best is None else best_metrics(best, int(best["epoch"]), self._tasks, self._primary)
        self._live.make_summary()

    def end(self, metrics: Mapping[str, Any]) -> None:
        """Write the run's result (``metrics`` of :class:`nucvn.train.TrainResult`) as the summary
        and close DVCLive."""
        self._live.summary = dict(metrics)
        self._live.end()
