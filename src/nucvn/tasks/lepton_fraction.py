"""``lepton_fraction``: the outgoing lepton's share of the neutrino energy, ``E_lep / E_nu``.

The brief calls this quantity "y"; the inelasticity is ``1 - lepton_fraction``
(:func:`nucvn.core.events.inelasticity`), so the name here is always "lepton energy fraction".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from nucvn.core import events as ev
from nucvn.tasks.base import RegressionTask, neutrino_interaction
from nucvn.tasks.registry import register_task

__all__ = ["LeptonFraction"]


@register_task("lepton_fraction")
class LeptonFraction(RegressionTask):
    """Regression of the lepton energy fraction ``lepenergy / nuenergy`` in [0, 1]
    (:func:`nucvn.core.events.lepton_fraction`; for NC the outgoing neutrino's share), defined for
    neutrino interactions with ``nuenergy > 0``.

    The head gives a logit, the prediction is its sigmoid, and the loss is the binary
    cross-entropy with the fraction as a soft target minus the target's own entropy, i.e. the
    Kullback-Leibler divergence of Bernoulli(prediction) from Bernoulli(fraction): 0 for a
    perfect prediction, minimised by the conditional mean (the fractional-logit model of Papke &
    Wooldridge, J. Appl. Econometrics 11 (1996) 619), and, unlike a squared error on a sigmoid,
    its gradient does not vanish when the logit saturates. Residuals are absolute (the fraction
    is already dimensionless).
    """

    columns = ("lepenergy", "nuenergy", "interaction")
    resolution = "absolute"
    head = "linear -> logit of the fraction"
    definition = ("lepton_fraction = lepenergy / nuenergy "
                  "(lepton energy fraction; inelasticity = 1 - lepton_fraction), "
                  "for neutrino interactions with nuenergy > 0 (nucvn.core.events.lepton_fraction)")

    def targets(self, meta: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        f = ev.lepton_fraction(meta["lepenergy"].to_numpy(), meta["nuenergy"].to_numpy())
        defined = neutrino_interaction(meta) & np.isfinite(f)
        return np.where(defined, np.clip(f, 0.0, 1.0), 0.0).astype(np.float32), defined

    def loss(self, output: torch.Tensor, target: torch.Tensor, defined: torch.Tensor) -> torch.Tensor:
        y = torch.where(defined, target.float(), torch.zeros((), device=target.device)).clamp(0.0, 1.0)
        cross = F.binary_cross_entropy_with_logits(output.float(), y, reduction="none")
        entropy = -(torch.special.xlogy(y, y) + torch.special.xlogy(1 - y, 1 - y))
        return torch.where(defined, cross - entropy, torch.zeros((), device=cross.device))

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(output.float())
