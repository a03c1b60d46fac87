"""Relative interaction-mode weights vs neutrino energy (docs/simulation.md).

Shapes follow the energy dependence of the measured νμ-carbon cross sections per nucleon
(Formaggio & Zeller, Rev. Mod. Phys. 84 (2012) 1307): quasi-elastic (QE) and 2p2h (MEC)
saturate above ~1 GeV, resonance production (RES) rises from the Δ threshold and saturates,
coherent pion production (COH) is a percent-level constant, and DIS (W > W_cut) grows linearly
with E above its threshold, as the parton model predicts. Each saturating term is
``norm * (1 - exp(-(E - threshold)/scale))``; DIS is ``slope * (E - threshold)``. Defaults give
QE ~53 % at 0.8 GeV; at 2 GeV QE 33 %, MEC 10 %, RES 33 %, DIS 22 %, COH 1.5 %; DIS 63 % at 5 GeV.
NC uses the same shapes (σ_NC/σ_CC enters through the composition).

Generator mode codes (truth key ``mode``): 0 QE, 1 RES, 2 DIS, 3 COH, 4 MEC, 5 ν-e elastic,
6 cosmic.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
import numpy.typing as npt

from nucvn.sim import portable_math as pm
from nucvn.sim.generator_params import GeneratorParams

__all__ = ["GenMode", "NU_MODES", "mode_weights", "sample_modes"]


class GenMode(IntEnum):
    """Generator interaction mode (truth key ``mode``)."""

    QE = 0
    RES = 1
    DIS = 2
    COH = 3
    MEC = 4
    NUE_ELASTIC = 5
    COSMIC = 6


NU_MODES: tuple[GenMode, ...] = (GenMode.QE, GenMode.RES, GenMode.DIS, GenMode.COH, GenMode.MEC)
"""Modes drawn for neutrino-nucleus events, in the column order of :func:`mode_weights`."""


def _saturating(e: npt.NDArray[np.float64], norm: float, threshold: float, scale: float) -> npt.NDArray[np.float64]:
    return norm * (1.0 - pm.exp(-np.clip(e - threshold, 0.0, None) / scale))


def mode_weights(energy: npt.ArrayLike, params: GeneratorParams) -> npt.NDArray[np.float64]:
    """Unnormalised weights, shape (n, 5), columns in :data:`NU_MODES` order."""
    e = np.asarray(energy, dtype=np.float64)
    p = params
    return np.stack(
        [
            _saturating(e, p.qe_norm, 0.0, p.qe_scale_gev),
            _saturating(e, p.res_norm, p.res_threshold_gev, p.res_scale_gev),
            p.dis_slope_per_gev * np.clip(e - p.dis_threshold_gev, 0.0, None),
            _saturating(e, p.coh_norm, p.coh_threshold_gev, p.coh_scale_gev),
            _saturating(e, p.mec_norm, 0.0, p.mec_scale_gev),
        ],
        axis=-1,
    )


def sample_modes(
    rng: np.random.Generator,
    energy: npt.NDArray[np.float64],
    params: GeneratorParams,
    allowed: npt.NDArray[np.bool_] | None = None,
) -> npt.NDArray[np.uint8]:
    """Draw one :class:`GenMode` per event from :func:`mode_weights`.

    ``allowed`` (n, 5) masks modes that are kinematically closed for an event (e.g. ντ CC near
    threshold); every event must keep at least one open mode.
    """
    w = mode_weights(energy, params)
    if allowed is not None:
        w = np.where(allowed, w, 0.0)
    cdf = np.cumsum(w, axis=1)
    total = cdf[:, -1]
    if np.any(total <= 0):
        raise ValueError("an event has no kinematically open interaction mode")
    u = rng.random(len(energy)) * total
    idx = (cdf <= u[:, None]).sum(axis=1).clip(max=len(NU_MODES) - 1)
    return np.asarray(NU_MODES, dtype=np.uint8)[idx]
