"""Light final-state interactions of pions in the carbon nucleus (docs/simulation.md).

An intranuclear-cascade-like effective model in the spirit of GENIE's hA model (Dytman): each
pion leaving the primary vertex is, independently, absorbed with probability
``fsi_pion_absorption`` or charge-exchanged with probability ``fsi_charge_exchange``.
Absorption: π + (np pair at rest, each nucleon bound by E_b) → two nucleons, isotropic in their
CM (π⁺ → pp, π⁻ → nn, π⁰ → np); the knocked-out nucleons carry a few hundred MeV. Charge
exchange: π + N (at rest, bound) → π' + N' isotropic in the CM (π⁺n → π⁰p, π⁻p → π⁰n,
π⁰n → π⁻p, π⁰p → π⁺n), skipped below threshold. Four-momentum is conserved with the struck
nucleons' rest energy M - E_b, so event energy stays balanced within the binding energy.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from nucvn.sim.generator_params import GeneratorParams
from nucvn.sim.lorentz import Vec4, mass2, two_body_decay
from nucvn.sim.masses import M_NEUTRON, M_PI0, M_PION, M_PROTON

__all__ = ["apply_pion_fsi"]

def _at_rest(n: int, energy: float) -> Vec4:
    out = np.zeros((n, 4))
    out[:, 3] = energy
    return out


def apply_pion_fsi(
    rng: np.random.Generator,
    pdg: npt.NDArray[np.int64],
    p4: Vec4,
    eligible: npt.NDArray[np.bool_],
    params: GeneratorParams,
) -> tuple[npt.NDArray[np.int64], Vec4, npt.NDArray[np.int64]]:
    """Apply FSI to the eligible pions of a flat particle list.

    Returns ``(pdg, p4, source)`` of the new list, where ``source`` gives for each output row
    the input row it came from (so callers can carry event index, tags and positions along).
    """
    n = len(pdg)
    is_pion = eligible & np.isin(pdg, (211, -211, 111))
    u = rng.random(n)
    absorb = is_pion & (u < params.fsi_pion_absorption)
    cex = is_pion & ~absorb & (u < params.fsi_pion_absorption + params.fsi_charge_exchange)
    eb = params.binding_energy_gev
    new_pdg: list[npt.NDArray[np.int64]] = []
    new_p4: list[Vec4] = []
    new_src: list[npt.NDArray[np.int64]] = []

    idx = np.flatnonzero(absorb)
    if idx.size:
        m_n = 0.5 * (M_PROTON + M_NEUTRON)
        total = p4[idx] + _at_rest(idx.size, 2 * (m_n - eb))
        out1 = np.where(pdg[idx] == -211, 2112, 2212)
        out2 = np.where(pdg[idx] == 211, 2212, 2112)
        m1 = np.where(out1 == 2212, M_PROTON, M_NEUTRON)
        m2 = np.where(out2 == 2212, M_PROTON, M_NEUTRON)
        d1, d2 = two_body_decay(rng, total, m1, m2)
        for code, mom in ((out1, d1), (out2, d2)):
            new_pdg.append(code)
            new_p4.append(mom)
            new_src.append(idx)

    idx = np.flatnonzero(cex)
    if idx.size:
        code = pdg[idx]
        pi0_on_p = (code == 111) & (rng.random(idx.size) < 0.5)
        target = np.where((code == -211) | pi0_on_p, 2212, 2112)
        pi_out = np.where(code == 111, np.where(pi0_on_p, 211, -211), 111)
        n_out = np.where(target == 2212, 2112, 2212)
        m_t = np.where(target == 2212, M_PROTON, M_NEUTRON)
        total = p4[idx] + np.column_stack([np.zeros((idx.size, 3)), m_t - eb])
        m_pi = np.where(pi_out == 111, M_PI0, M_PION)
        m_nuc = np.where(n_out == 2212, M_PROTON, M_NEUTRON)
        open_ = np.sqrt(np.clip(mass2(total), 0, None)) > m_pi + m_nuc + 1e-6
        cex[idx[~open_]] = False
        idx, pi_out, n_out, total, m_pi, m_nuc = (a[open_] for a in (idx, pi_out, n_out, total, m_pi, m_nuc))
        d1, d2 = two_body_decay(rng, total, m_pi, m_nuc)
        for codes, mom in ((pi_out, d1), (n_out, d2)):
            new_pdg.append(codes)
            new_p4.append(mom)
            new_src.append(idx)

    keep = np.flatnonzero(~(absorb | cex))
    out_pdg = np.concatenate([pdg[keep], *new_pdg])
    out_p4 = np.concatenate([p4[keep], *new_p4]) if new_p4 else p4[keep]
    out_src = np.concatenate([keep, *new_src])
    return out_pdg.astype(np.int64), out_p4, out_src.astype(np.int64)
