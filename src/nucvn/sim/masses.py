"""Particle masses, widths and charges for the event generator, from the ``particle`` package.

The project's rule is that masses, charges and lifetimes come from the PDG tables shipped with
``particle`` (Particle Data Group, Review of Particle Physics) and are never typed in. The numbers
the generator uses in its vectorised kinematics are looked up once at import (GeV) and exported
as module constants; :func:`mass` and :func:`charge` serve any other PDG code with a cache.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt
from particle import Particle
from particle.pdgid import is_baryon

__all__ = [
    "mass",
    "width",
    "charge",
    "baryon_number",
    "charges",
    "masses_of",
    "M_PROTON",
    "M_NEUTRON",
    "M_NUCLEON",
    "M_ELECTRON",
    "M_MUON",
    "M_TAU",
    "M_PION",
    "M_PI0",
    "M_RHO",
    "W_RHO",
    "M_A1",
    "W_A1",
    "M_DELTA",
    "W_DELTA",
    "M_CARBON",
    "LEPTON_MASS",
]


@cache
def mass(pdg: int) -> float:
    """Rest mass of ``pdg`` in GeV (0 for particles without a listed mass)."""
    value = Particle.from_pdgid(int(pdg)).mass
    return 0.0 if value is None else float(value) / 1000.0


@cache
def width(pdg: int) -> float:
    """Total width of ``pdg`` in GeV (0 when not listed)."""
    value = Particle.from_pdgid(int(pdg)).width
    return 0.0 if value is None else float(value) / 1000.0


@cache
def charge(pdg: int) -> float:
    """Electric charge of ``pdg`` in units of e (neutrinos and unknown codes: 0)."""
    try:
        value = Particle.from_pdgid(int(pdg)).charge
    except Exception:  # noqa: BLE001 - codes unknown to the table (none expected) count as neutral
        return 0.0
    return 0.0 if value is None else float(value)


@cache
def baryon_number(pdg: int) -> int:
    """Baryon number of ``pdg``: +1 baryon, -1 antibaryon, 0 otherwise."""
    return int(np.sign(pdg)) if is_baryon(int(pdg)) else 0


def charges(pdgs: npt.NDArray[np.integer]) -> npt.NDArray[np.float64]:
    """Vectorised :func:`charge` over an array of PDG codes."""
    codes, inverse = np.unique(np.asarray(pdgs), return_inverse=True)
    return np.array([charge(int(c)) for c in codes], dtype=np.float64)[inverse].reshape(np.shape(pdgs))


def masses_of(pdgs: npt.NDArray[np.integer]) -> npt.NDArray[np.float64]:
    """Vectorised :func:`mass` over an array of PDG codes (GeV)."""
    codes, inverse = np.unique(np.asarray(pdgs), return_inverse=True)
    return np.array([mass(int(c)) for c in codes], dtype=np.float64)[inverse].reshape(np.shape(pdgs))


M_PROTON: float = mass(2212)
M_NEUTRON: float = mass(2112)
M_NUCLEON: float = 0.5 * (M_PROTON + M_NEUTRON)
M_ELECTRON: float = mass(11)
M_MUON: float = mass(13)
M_TAU: float = mass(15)
M_PION: float = mass(211)
M_PI0: float = mass(111)
M_RHO: float = mass(-213)
W_RHO: float = width(-213)
M_A1: float = mass(20213)
W_A1: float = width(20213)
M_DELTA: float = mass(2224)
W_DELTA: float = width(2224)
M_CARBON: float = mass(1000060120)
LEPTON_MASS: dict[int, float] = {11: M_ELECTRON, 13: M_MUON, 15: M_TAU, 12: 0.0, 14: 0.0, 16: 0.0}
"""Mass of the outgoing lepton by its PDG code (neutrinos massless)."""
