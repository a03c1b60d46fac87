"""Visible energy: the event's pixel charge calibrated to GeV on the train split.

Physicists bin backgrounds in what the detector sees, not in the true neutrino energy: a neutral
current event of 10 GeV whose outgoing neutrino carries 8 GeV away looks like a 2 GeV event, and it
is at 2 GeV of *visible* energy that it competes with νμ CC signal. The calibration is one scale,
``E_vis = slope * charge`` (charge = sum of pixel values, both views, in ADC counts), set on the
train split so that the *median* ratio of ``E_vis`` to the energy each event deposits as far as the
truth says it is 1: ``E_ν`` for νμ CC and νe CC, ``E_ν - E_ℓ`` for NC (the outgoing neutrino is
invisible); ντ CC (neutrinos in the τ decay), cosmic rays and "other" are left out. The median,
not a least-squares fit, because the ratio has a long low tail (muons leaving the window, neutrons)
that would pull a fit below the peak (measured: a relative least-squares line puts the median
ratio at 0.83). Unlike the flavour-aware calorimetric baseline of the ``nuenergy`` task, it uses
no truth when applied: it is a reconstructed quantity.

The train stage fits it and stores it in ``model.json`` (``visible_energy``), so that the model
directory alone lets any set of files be evaluated in visible energy (``nucvn evaluate``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from nucvn.core import events as ev
from nucvn.core.errors import NucvnError
from nucvn.report.baseline import Calibration

__all__ = ["VISIBLE_ENERGY", "deposited_energy", "fit_visible_energy", "apply_visible_energy", "calibration_of"]

VISIBLE_ENERGY = "visible_energy"
"""Name of the variable (a column added to the evaluated metadata, a binning in ``bins.yaml``)."""


def deposited_energy(meta: pd.DataFrame) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """``(energy the event deposits by the truth, GeV; events the calibration may use)``."""
    inter = meta["raw_interaction"] if "raw_interaction" in meta.columns else meta["interaction"]
    fl = ev.flavour(inter.to_numpy())
    nu = meta["nuenergy"].to_numpy().astype(np.float64)
    lep = meta["lepenergy"].to_numpy().astype(np.float64)
    nc = fl == ev.Flavour.NC
    target = np.where(nc, nu - lep, nu)
    usable = np.isin(fl, [ev.Flavour.NUMU_CC, ev.Flavour.NUE_CC, ev.Flavour.NC]) & np.isfinite(target) & (target > 0)
    return target, usable


def fit_visible_energy(charge: npt.ArrayLike, meta: pd.DataFrame) -> dict[str, Any] | None:
    """The calibration fitted on these (train-split) events, as the plain dict ``model.json`` holds;
    None when fewer than 2 neutrino events with hits are there to fit (visible energy is then not
    reported, and the evaluation says so)."""
    q = np.asarray(charge, dtype=np.float64)
    if len(q) != len(meta):
        raise NucvnError(f"visible energy: {len(q)} charges for {len(meta)} events; they must match")
    target, usable = deposited_energy(meta)
    usable &= q > 0
    if int(usable.sum()) < 2:
        return None
    cal = Calibration(slope=float(np.median(target[usable] / q[usable])), intercept=0.0, n=int(usable.sum()))
    return cal.to_dict() | {"fitted_on": "train split", "method": "median of deposited energy / charge",
                            "target": "E_nu (numu/nue CC), E_nu - E_lep (NC)"}


def calibration_of(config: Mapping[str, Any]) -> Calibration | None:
    """The visible-energy calibration a model directory records (``model.json``), or None for a
    model trained before it was recorded."""
    block = config.get(VISIBLE_ENERGY)
    return None if block is None else Calibration.from_dict(block, f"'{VISIBLE_ENERGY}' of model.json")


def apply_visible_energy(charge: npt.ArrayLike, calibration: Calibration) -> npt.NDArray[np.float64]:
    """Visible energy (GeV) of events with pixel charge ``charge``; never negative."""
    return np.maximum(calibration(np.asarray(charge, dtype=np.float64)), 0.0)
