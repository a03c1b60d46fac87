"""``mode``: the interaction mode of a neutrino interaction: QE, RES, DIS, other CC, or NC."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nucvn.core import events as ev
from nucvn.tasks.base import ClassificationTask
from nucvn.tasks.registry import register_task

__all__ = ["ModeTask"]


@register_task("mode")
class ModeTask(ClassificationTask):
    """Multiclass over :class:`nucvn.core.events.Mode`, defined for neutrino interactions only
    (cosmic and "other" have mode -1 and are undefined)."""

    kind = "multiclass"
    columns = ("interaction",)
    classes = ("qe", "res", "dis", "other", "nc")
    n_outputs = len(ev.Mode)
    definition = ("mode = interaction mod 4 for CC (qe, res, dis, other = COH and MEC), nc for 12 and 13; "
                  "undefined for cosmic and other (nucvn.core.events.mode)")

    def targets(self, meta: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        m = ev.mode(meta["interaction"].to_numpy())
        return np.maximum(m, 0), m >= 0
