"""``numu_cc``: is the event a νμ charged-current interaction (the project's task 1)?"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nucvn.core import events as ev
from nucvn.tasks.base import BinaryTask
from nucvn.tasks.registry import register_task

__all__ = ["NumuCC"]


@register_task("numu_cc")
class NumuCC(BinaryTask):
    """Binary: interaction code in {0, 1, 2, 3} (:func:`nucvn.core.events.numu_cc`), defined for
    every event; class weights ``n / (2 n_c)`` with ``train.balance: weights``."""

    columns = ("interaction",)
    classes = ("not numu_cc", "numu_cc")
    definition = "numu_cc = interaction in {0,1,2,3} (nucvn.core.events.numu_cc)"

    def targets(self, meta: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        y = ev.numu_cc(meta["interaction"].to_numpy()).astype(np.float32)
        return y, np.ones(len(y), dtype=bool)
