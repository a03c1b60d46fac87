"""Tasks: one file per predicted quantity, registered by name (:func:`create_tasks`).

``numu_cc`` (binary), ``flavour`` and ``mode`` (multiclass), ``nuenergy`` and ``lepton_fraction``
(regression), ``nproton``, ``npion`` and ``npizero`` (counts 0/1/2/>=3, simulated files only).
The interface is :class:`~nucvn.tasks.base.Task`; :class:`MultiTaskNet` puts their heads on one
backbone.
"""

from __future__ import annotations

# The import order is the registration order, which orders `train.tasks: auto` and every output: not sorted.
# isort: off
from nucvn.tasks import (  # noqa: F401  (registers the tasks, in this order)
    numu_cc, flavour, mode, nuenergy, lepton_fraction, nproton, npion, npizero,
)
# isort: on

from nucvn.tasks.base import AUC_BINS, BinaryTask, ClassificationTask, CountTask, RegressionTask, Task, TaskKind
from nucvn.tasks.network import MultiTaskNet, build_network
from nucvn.tasks.registry import available_tasks, create_tasks, list_tasks, primary_task, register_task

__all__ = ["Task", "TaskKind", "BinaryTask", "ClassificationTask", "CountTask", "RegressionTask", "AUC_BINS",
           "MultiTaskNet", "build_network", "register_task", "create_tasks", "list_tasks", "available_tasks",
           "primary_task"]
