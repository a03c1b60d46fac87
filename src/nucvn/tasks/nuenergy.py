"""``nuenergy``: the true neutrino energy in GeV, regressed as log E."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from nucvn.tasks.base import RegressionTask, neutrino_interaction
from nucvn.tasks.registry import register_task

__all__ = ["NuEnergy", "HUBER_BETA"]

HUBER_BETA = 0.1
"""Where the Huber loss on ``log E`` turns from quadratic to linear: a 10 % relative error."""


@register_task("nuenergy")
class NuEnergy(RegressionTask):
    """Regression of ``neutrino/nuenergy`` (GeV), defined for neutrino interactions with
    ``nuenergy > 0`` (not for cosmics, whose "energy" is the cosmic muon's).

    The head predicts ``log(E / GeV)`` and the loss is a Huber loss (smooth L1, ``beta`` =
    :data:`HUBER_BETA`) on ``log E_pred - log E_true``, i.e. on the relative error to first order.
    Why: the spectrum spans 0.5-80 GeV; a loss on E itself would be dominated by the few
    high-energy events and would fit the bulk near 2-5 GeV poorly, while an energy resolution is
    quoted as ``sigma_E / E``, so every event should count by its relative error. The log also
    keeps the prediction positive. Huber rather than squared error because the residuals have
    long tails (escaping neutrinos in NC, exiting muons): quadratic within 10 %, linear beyond,
    so the tails do not pull the bulk (Huber, Ann. Math. Statist. 35 (1964) 73).
    The evaluation forms relative residuals and compares with the calorimetric baseline.
    """

    columns = ("nuenergy", "interaction")
    unit = "GeV"
    resolution = "relative"
    baseline = "calorimetric"
    head = "linear -> log(E/GeV)"
    definition = ("nuenergy = true neutrino energy in GeV (neutrino/nuenergy), "
                  "for neutrino interactions with nuenergy > 0")

    def targets(self, meta: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        e = meta["nuenergy"].to_numpy().astype(np.float64)
        defined = neutrino_interaction(meta) & np.isfinite(e) & (e > 0)
        return np.where(defined, e, 0.0).astype(np.float32), defined

    def loss(self, output: torch.Tensor, target: torch.Tensor, defined: torch.Tensor) -> torch.Tensor:
        log_e = torch.log(torch.where(defined, target.float(), torch.ones((), device=target.device)))
        per_event = F.smooth_l1_loss(output.float(), log_e, reduction="none", beta=HUBER_BETA)
        return torch.where(defined, per_event, torch.zeros((), device=per_event.device))

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        return torch.exp(output.float())
