"""Events without a nuclear target: ν-e elastic scattering and cosmic rays (docs/simulation.md).

ν-e elastic (νμ e⁻ → νμ e⁻, neutral current): dσ/dy ∝ g_L² + g_R² (1-y)² with
g_L = -1/2 + sin²θ_W, g_R = sin²θ_W ('t Hooft, Phys. Lett. 37B (1971) 195; the small
m_e y/E term is neglected). The electron angle follows from two-body kinematics,
cos θ = (1 + m_e/E) sqrt(T/(T + 2 m_e)), so θ ≲ sqrt(2 m_e/T): a forward electron.

Cosmic rays at a surface detector: a muon (μ⁺/μ⁻ ratio ~1.27) with an E^-γ spectrum, zenith
angle with density ∝ cos^n θ per solid angle times cos θ for the flux through the horizontal top
face, entering through the top face (y = +HALF_WIDTH) at a uniform point. A fraction
``cosmic_shower_fraction`` is instead an electromagnetic air-shower particle (photon or e±)
that starts a shower at the top of the detector.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from nucvn.sim import portable_math as pm
from nucvn.sim.generator_params import GeneratorParams
from nucvn.sim.geometry import HALF_WIDTH, LENGTH
from nucvn.sim.lorentz import Vec4
from nucvn.sim.masses import M_ELECTRON, M_MUON

__all__ = ["nu_e_elastic", "Cosmics", "cosmic_rays"]

F64 = npt.NDArray[np.float64]


def nu_e_elastic(rng: np.random.Generator, energy: F64, params: GeneratorParams) -> tuple[Vec4, Vec4]:
    """Lab four-momenta (electron, outgoing neutrino) for νμ e⁻ scattering, beam along +z."""
    n = len(energy)
    gl2 = (params.sin2_theta_w - 0.5) ** 2
    gr2 = params.sin2_theta_w**2
    right = rng.random(n) < (gr2 / 3.0) / (gl2 + gr2 / 3.0)
    y = rng.random(n)
    y[right] = 1.0 - pm.power(rng.random(int(right.sum())), 1.0 / 3.0)
    y = np.minimum(y, 2 * energy / (2 * energy + M_ELECTRON))
    t = np.maximum(y * energy, 1e-9)
    cos = np.clip((1 + M_ELECTRON / energy) * np.sqrt(t / (t + 2 * M_ELECTRON)), -1.0, 1.0)
    sin = np.sqrt(1.0 - cos**2)
    p = np.sqrt(t**2 + 2 * t * M_ELECTRON)
    phi = rng.uniform(0.0, 2 * np.pi, n)
    electron = np.column_stack([p * sin * pm.cos(phi), p * sin * pm.sin(phi), p * cos, t + M_ELECTRON])
    initial = np.column_stack([np.zeros(n), np.zeros(n), energy, energy + M_ELECTRON])
    return electron, initial - electron


class Cosmics:
    """Primary cosmic particles: PDG code, lab four-momentum, entry point on the top face (cm)."""

    def __init__(self, pdg: npt.NDArray[np.int64], p4: Vec4, entry: F64) -> None:
        self.pdg = pdg
        self.p4 = p4
        self.entry = entry


def _power_law(rng: np.random.Generator, n: int, lo: float, hi: float, index: float) -> F64:
    u = rng.random(n)
    if abs(index - 1.0) < 1e-12:
        return lo * pm.power(hi / lo, u)
    a = 1.0 - index
    return pm.power(lo**a + u * (hi**a - lo**a), 1.0 / a)


def cosmic_rays(rng: np.random.Generator, n: int, params: GeneratorParams) -> Cosmics:
    """``n`` cosmic primaries entering through the top face, moving downwards (-y)."""
    shower = rng.random(n) < params.cosmic_shower_fraction
    energy = _power_law(rng, n, params.cosmic_min_gev, params.cosmic_max_gev, params.cosmic_index)
    n_sh = int(shower.sum())
    energy[shower] = _power_law(rng, n_sh, params.cosmic_min_gev, params.cosmic_shower_max_gev, params.cosmic_index)
    mu_plus = rng.random(n) < params.cosmic_mu_plus_fraction
    pdg = np.where(mu_plus, -13, 13).astype(np.int64)
    em = rng.random(n)
    pdg[shower] = np.where(em[shower] < 0.5, 22, np.where(em[shower] < 0.75, 11, -11))
    m = np.where(np.abs(pdg) == 13, M_MUON, np.where(pdg == 22, 0.0, M_ELECTRON))
    cos = pm.power(rng.random(n), 1.0 / (params.cosmic_zenith_power + 2.0))
    sin = np.sqrt(1.0 - cos**2)
    phi = rng.uniform(0.0, 2 * np.pi, n)
    p = np.sqrt(np.clip(energy**2 - m**2, 0.0, None))
    p4 = np.column_stack([p * sin * pm.cos(phi), -p * cos, p * sin * pm.sin(phi), energy])
    entry = np.column_stack(
        [rng.uniform(-HALF_WIDTH, HALF_WIDTH, n), np.full(n, HALF_WIDTH), rng.uniform(0.0, LENGTH, n)]
    )
    return Cosmics(pdg, p4, entry)
