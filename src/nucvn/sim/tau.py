"""Prompt τ⁻ decays for ντ CC events (docs/simulation.md).

Branching ratios are parameters (PDG defaults): e ν̄ ν 17.8 %, μ ν̄ ν 17.4 %, π ν 10.8 %,
ρ ν 23.6 % (ρ⁻ → π⁻ π⁰), a1 ν 12.8 % (a1⁻ → π⁻ π⁰ π⁰ or π⁻ π⁻ π⁺, half each), the rest
multi-pion (π⁻ 3π⁰ or π⁻ π⁻ π⁺ π⁰), which makes about 85 % one-prong decays. The ρ and a1 masses
are Breit-Wigner distributed with PDG masses and widths; three- and more-body final states use
the GENBOD-like chain of :func:`nucvn.sim.lorentz.nbody_decay`. Spin correlations (τ
polarisation) are neglected. The final-state group follows what the τ decays to: μ → 0
(νμ CC-like), e → 1 (νe CC-like), hadrons → 2 (NC-like).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from nucvn.sim.generator_params import GeneratorParams
from nucvn.sim.lorentz import Vec4, breit_wigner, nbody_decay, two_body_decay
from nucvn.sim.masses import M_A1, M_ELECTRON, M_MUON, M_PI0, M_PION, M_RHO, M_TAU, W_A1, W_RHO

__all__ = ["TauDecays", "decay_taus"]

_PI0 = (111, M_PI0)
_PIM = (-211, M_PION)
_PIP = (211, M_PION)
_NUTAU = (16, 0.0)
_CHANNELS: tuple[tuple[str, tuple[tuple[int, float], ...], int], ...] = (
    ("e", ((11, M_ELECTRON), (-12, 0.0), _NUTAU), 1),
    ("mu", ((13, M_MUON), (-14, 0.0), _NUTAU), 0),
    ("pi", (_PIM, _NUTAU), 2),
    ("rho", (_PIM, _PI0), 2),
    ("a1_1prong", (_PIM, _PI0, _PI0), 2),
    ("a1_3prong", (_PIM, _PIM, _PIP), 2),
    ("multi_1prong", (_PIM, _PI0, _PI0, _PI0, _NUTAU), 2),
    ("multi_3prong", (_PIM, _PIM, _PIP, _PI0, _NUTAU), 2),
)
"""Name, daughters (PDG, mass) and final-state group; for ρ and a1 the daughters of the meson."""


class TauDecays:
    """Daughters of decayed τs: ``parent`` indexes the input τs; ``group`` is per τ."""

    def __init__(
        self, parent: npt.NDArray[np.int64], pdg: npt.NDArray[np.int64], p4: Vec4, group: npt.NDArray[np.uint8]
    ) -> None:
        self.parent = parent
        self.pdg = pdg
        self.p4 = p4
        self.group = group


def _branching(params: GeneratorParams) -> npt.NDArray[np.float64]:
    p = params
    rest = 1.0 - (p.tau_br_e + p.tau_br_mu + p.tau_br_pi + p.tau_br_rho + p.tau_br_a1)
    return np.array(
        [
            p.tau_br_e,
            p.tau_br_mu,
            p.tau_br_pi,
            p.tau_br_rho,
            p.tau_br_a1 * p.tau_a1_one_prong,
            p.tau_br_a1 * (1 - p.tau_a1_one_prong),
            rest * p.tau_rest_one_prong,
            rest * (1 - p.tau_rest_one_prong),
        ]
    )


def decay_taus(rng: np.random.Generator, tau: Vec4, params: GeneratorParams) -> TauDecays:
    """Decay each τ⁻ (lab four-momenta, shape (n, 4)) into its lab-frame daughters."""
    n = len(tau)
    br = _branching(params)
    channel = rng.choice(len(br), size=n, p=br / br.sum())
    group = np.zeros(n, dtype=np.uint8)
    parents: list[npt.NDArray[np.int64]] = []
    pdgs: list[npt.NDArray[np.int64]] = []
    moms: list[Vec4] = []
    for c, (name, daughters, grp) in enumerate(_CHANNELS):
        idx = np.flatnonzero(channel == c)
        if idx.size == 0:
            continue
        group[idx] = grp
        parent = tau[idx]
        if name in ("rho", "a1_1prong", "a1_3prong"):
            m0, gamma = (M_RHO, W_RHO) if name == "rho" else (M_A1, W_A1)
            lo = sum(m for _, m in daughters) + 1e-4
            meson_mass = breit_wigner(rng, idx.size, m0, gamma, lo, M_TAU - 1e-4)
            meson, nu = two_body_decay(rng, parent, meson_mass, 0.0)
            products = [*nbody_decay(rng, meson, [m for _, m in daughters]), nu]
            codes = [*(d for d, _ in daughters), 16]
        else:
            products = nbody_decay(rng, parent, [m for _, m in daughters])
            codes = [d for d, _ in daughters]
        for code, mom in zip(codes, products, strict=True):
            parents.append(idx)
            pdgs.append(np.full(idx.size, code, dtype=np.int64))
            moms.append(mom)
    if not moms:
        return TauDecays(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4)), group)
    return TauDecays(np.concatenate(parents), np.concatenate(pdgs), np.concatenate(moms), group)
