"""``flavour``: which kind of interaction: νμ CC, νe CC, ντ CC, NC or cosmic."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nucvn.core import events as ev
from nucvn.tasks.base import ClassificationTask
from nucvn.tasks.registry import register_task

__all__ = ["FlavourTask"]


@register_task("flavour")
class FlavourTask(ClassificationTask):
    """Multiclass over :class:`nucvn.core.events.Flavour`; events of flavour -1 (interaction 15,
    "other") are undefined."""

    kind = "multiclass"
    columns = ("interaction",)
    classes = tuple(f.name.lower() for f in ev.Flavour)
    n_outputs = len(ev.Flavour)
    definition = ("flavour = numu_cc (interaction 0-3), nue_cc (4-7), nutau_cc (8-11), nc (12, 13), cosmic (14); "
                  "undefined for 15 (nucvn.core.events.flavour)")

    def targets(self, meta: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        f = ev.flavour(meta["interaction"].to_numpy())
        return np.maximum(f, 0), f >= 0
