"""Final states of each neutrino-nucleus mode (QE, RES, DIS, COH, MEC), vectorised per mode.

Each function takes the events of one mode (neutrino energy, outgoing lepton mass, CC flag) and
returns a :class:`ModeFinalState`: the lab lepton four-momentum and the hadrons leaving the
primary vertex, before final-state interactions. Physics per mode (docs/simulation.md):

- QE (Llewellyn Smith): CC ν n → ℓ⁻ p; NC elastic ν N → ν N on p or n.
- RES: Δ(1232) Breit-Wigner (PDG mass and width) plus a flat higher-W continuum up to W_cut,
  Q² from a dipole with M_A^RES (Rein & Sehgal, Ann. Phys. 133 (1981) 79, simplified); the
  isospin Clebsch-Gordan coefficients pick the Nπ channel (Δ: 2/3 vs 1/3; I = 1/2 continuum:
  1/3 vs 2/3; CC on p is pure I = 3/2, Δ⁺⁺ → pπ⁺); isotropic decay in the Nπ rest frame.
- DIS: parton-model x, y with W > W_cut, Lund-string hadronisation (:mod:`nucvn.sim.hadronise`).
- COH: ν ¹²C → ℓ π ¹²C: low Q², pion forward along q with the nuclear form factor exp(-b|t|);
  the recoiling nucleus is invisible and not emitted.
- MEC (2p2h): the lepton scatters off a correlated nucleon pair (np with probability
  ``mec_np_fraction``), energy transfer above the QE line, two nucleons emitted isotropically.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nucvn.sim import portable_math as pm
from nucvn.sim.generator_params import GeneratorParams
from nucvn.sim.hadronise import Hadroniser, string_flavours
from nucvn.sim.kinematics import (
    fermi_nucleons,
    neutrino_beam,
    q2_limits,
    sample_dis_xy,
    sample_q2_dipole,
    sample_q2_qe,
    scatter,
)
from nucvn.sim.lorentz import Vec4, boost, boost_to_rest, breit_wigner, mass2, orient, two_body_decay, two_body_momentum
from nucvn.sim.masses import M_CARBON, M_DELTA, M_NEUTRON, M_NUCLEON, M_PI0, M_PION, M_PROTON, W_DELTA, charges

__all__ = ["ModeFinalState", "quasi_elastic", "resonant", "deep_inelastic", "coherent", "two_nucleon", "W_MIN"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
W_MIN = {"qe": M_NEUTRON + 0.005, "res": M_NEUTRON + M_PION + 0.01, "mec": 2 * M_NEUTRON + 0.01}
"""Smallest hadronic mass (GeV, with a margin) per mode, used to close modes below threshold."""
_MAX_ROUNDS = 200


@dataclass
class ModeFinalState:
    """Lepton and primary hadrons of ``n`` events; ``hadron_event`` indexes those events."""

    lepton: Vec4
    hadron_event: I64
    hadron_pdg: I64
    hadron_p4: Vec4
    w: F64
    target_pdg: I64
    nch_primary: I64


def _nucleon_mass(pdg: I64) -> F64:
    return np.where(pdg == 2212, M_PROTON, M_NEUTRON)


def _open_targets(
    rng: np.random.Generator, nu: Vec4, masses: list[F64], need: F64, params: GeneratorParams
) -> Vec4:
    """Bound target (sum of Fermi nucleons of ``masses``) with sqrt(s) above ``need``.

    Closed configurations are redrawn; after 20 tries the nucleons are put at rest and unbound
    (the mode choice guarantees that this is open).
    """
    n = len(nu)
    target = np.zeros((n, 4))
    todo = np.arange(n)
    for _ in range(20):
        t = sum(fermi_nucleons(rng, todo.size, params, m[todo]) for m in masses)
        ok = np.sqrt(np.clip(mass2(nu[todo] + t), 0.0, None)) > need[todo]
        target[todo[ok]] = t[ok]
        todo = todo[~ok]
        if todo.size == 0:
            return target
    target[todo, 3] = sum(m[todo] for m in masses)
    return target


def _frame(nu: Vec4, target: Vec4) -> tuple[F64, F64, F64]:
    """s, target mass², neutrino energy in the target rest frame."""
    s = mass2(nu + target)
    mt2 = mass2(target)
    return s, mt2, (s - mt2) / (2 * np.sqrt(mt2))


def _empty_hadrons() -> tuple[I64, I64, Vec4]:
    return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4))


def quasi_elastic(
    rng: np.random.Generator, energy: F64, m_lep: F64, iscc: npt.NDArray[np.bool_], params: GeneratorParams
) -> ModeFinalState:
    """CC ν n → ℓ⁻ p and NC ν N → ν N with the Llewellyn Smith Q² distribution."""
    n = len(energy)
    nu = neutrino_beam(energy)
    target_pdg = np.where(iscc | (rng.random(n) < 0.5), 2112, 2212).astype(np.int64)
    out_pdg = np.where(iscc, 2212, target_pdg).astype(np.int64)
    w = _nucleon_mass(out_pdg)
    target = _open_targets(rng, nu, [_nucleon_mass(target_pdg)], m_lep + w + 1e-6, params)
    s, mt2, e_rest = _frame(nu, target)
    lo, hi = q2_limits(s, mt2, m_lep, w)
    q2 = sample_q2_qe(rng, lo, hi, e_rest, m_lep, params)
    lep, had = scatter(rng, nu, target, m_lep, w, q2)
    return ModeFinalState(lep, np.arange(n), out_pdg, had, w, target_pdg, np.where(out_pdg == 2212, 1, 0))


def _n_pi_channel(
    rng: np.random.Generator, target_pdg: I64, iscc: npt.NDArray[np.bool_], delta: npt.NDArray[np.bool_]
) -> tuple[I64, I64]:
    """Nucleon and pion PDG codes of a Nπ system from isospin Clebsch-Gordan coefficients."""
    n = len(target_pdg)
    neutral = rng.random(n) < np.where(delta, 2.0 / 3.0, 1.0 / 3.0)
    proton = target_pdg == 2212
    nucleon = np.where(neutral, np.where(~iscc & ~proton, 2112, 2212), np.where(~iscc & ~proton, 2212, 2112))
    pion = np.where(neutral, 111, np.where(~iscc & ~proton, -211, 211))
    cc_p = iscc & proton
    nucleon[cc_p], pion[cc_p] = 2212, 211
    return nucleon.astype(np.int64), pion.astype(np.int64)


def _decay_n_pi(rng: np.random.Generator, system: Vec4, nucleon: I64, pion: I64) -> tuple[I64, I64, Vec4]:
    m_pi = np.where(pion == 111, M_PI0, M_PION)
    d1, d2 = two_body_decay(rng, system, _nucleon_mass(nucleon), m_pi)
    idx = np.arange(len(system))
    return np.concatenate([idx, idx]), np.concatenate([nucleon, pion]), np.concatenate([d1, d2])


def resonant(
    rng: np.random.Generator, energy: F64, m_lep: F64, iscc: npt.NDArray[np.bool_], params: GeneratorParams
) -> ModeFinalState:
    """Single-pion production through Δ(1232) and a continuum up to W_cut."""
    n = len(energy)
    nu = neutrino_beam(energy)
    p_frac = np.where(iscc, params.res_cc_proton_fraction, 0.5)
    target_pdg = np.where(rng.random(n) < p_frac, 2212, 2112).astype(np.int64)
    w_lo = M_NEUTRON + M_PION + 1e-3
    target = _open_targets(rng, nu, [_nucleon_mass(target_pdg)], m_lep + W_MIN["res"], params)
    s, mt2, _ = _frame(nu, target)
    w_hi = np.minimum(params.w_cut_gev, np.sqrt(s) - m_lep - 1e-4)
    delta = rng.random(n) >= params.res_higher_w_fraction
    w = np.where(delta, breit_wigner(rng, n, M_DELTA, W_DELTA, w_lo, w_hi), w_lo + rng.random(n) * (w_hi - w_lo))
    lo, hi = q2_limits(s, mt2, m_lep, w)
    q2 = sample_q2_dipole(rng, lo, hi, params.res_axial_mass_gev)
    lep, had = scatter(rng, nu, target, m_lep, w, q2)
    nucleon, pion = _n_pi_channel(rng, target_pdg, iscc, delta)
    ev, pdg, p4 = _decay_n_pi(rng, had, nucleon, pion)
    nch = (nucleon == 2212).astype(np.int64) + (pion != 111)
    return ModeFinalState(lep, ev, pdg, p4, w, target_pdg, nch)


def deep_inelastic(
    rng: np.random.Generator,
    energy: F64,
    m_lep: F64,
    iscc: npt.NDArray[np.bool_],
    params: GeneratorParams,
    hadroniser: Hadroniser,
) -> ModeFinalState:
    """DIS with W > W_cut: x, y from the parton model, hadrons from the Lund string."""
    n = len(energy)
    nu = neutrino_beam(energy)
    p_frac = np.where(iscc, 1.0 / 3.0, 0.5)  # CC scatters off d quarks: n (udd) twice as often as p
    target_pdg = np.where(rng.random(n) < p_frac, 2212, 2112).astype(np.int64)
    w_cut = params.w_cut_gev
    target = _open_targets(rng, nu, [_nucleon_mass(target_pdg)], m_lep + w_cut + 0.02, params)
    s, mt2, e_rest = _frame(nu, target)
    m_t = np.sqrt(mt2)
    w_max = np.sqrt(s) - m_lep - 1e-4
    w = np.empty(n)
    q2 = np.empty(n)
    todo = np.arange(n)
    for _ in range(_MAX_ROUNDS):
        if todo.size == 0:
            break
        x, y = sample_dis_xy(rng, todo.size, params)
        transfer = y * e_rest[todo]
        q2_t = 2 * m_t[todo] * transfer * x
        w_t = np.sqrt(np.clip(mt2[todo] + 2 * m_t[todo] * transfer - q2_t, 0.0, None))
        lo, hi = q2_limits(s[todo], mt2[todo], m_lep[todo], np.minimum(w_t, w_max[todo]))
        ok = (w_t >= w_cut) & (w_t <= w_max[todo]) & (q2_t >= lo) & (q2_t <= hi)
        w[todo[ok]], q2[todo[ok]] = w_t[ok], q2_t[ok]
        todo = todo[~ok]
    if todo.size:
        w[todo] = w_cut + rng.random(todo.size) * (w_max[todo] - w_cut)
        lo, hi = q2_limits(s[todo], mt2[todo], m_lep[todo], w[todo])
        q2[todo] = sample_q2_dipole(rng, lo, hi, 1.0)
    lep, had = scatter(rng, nu, target, m_lep, w, q2)
    quark, diquark = string_flavours(rng, target_pdg, iscc)
    res = hadroniser.hadronise(w, quark, diquark, had, nu - lep)
    ev, pdg, p4 = res.system, res.pdg, res.p4
    failed = np.flatnonzero(~res.ok)
    if failed.size:
        nucleon, pion = _n_pi_channel(rng, target_pdg[failed], iscc[failed], np.zeros(failed.size, bool))
        f_ev, f_pdg, f_p4 = _decay_n_pi(rng, had[failed], nucleon, pion)
        ev, pdg, p4 = np.concatenate([ev, failed[f_ev]]), np.concatenate([pdg, f_pdg]), np.concatenate([p4, f_p4])
    charged = (charges(pdg) != 0) & (np.abs(pdg) > 100)
    nch = np.bincount(ev, weights=charged, minlength=n).astype(np.int64)
    return ModeFinalState(lep, ev, pdg, p4, w, target_pdg, nch)


def coherent(
    rng: np.random.Generator, energy: F64, m_lep: F64, iscc: npt.NDArray[np.bool_], params: GeneratorParams
) -> ModeFinalState:
    """Coherent pion production on ¹²C: lepton plus one forward pion (π⁺ CC, π⁰ NC)."""
    n = len(energy)
    nu = neutrino_beam(energy)
    target = np.zeros((n, 4))
    target[:, 3] = M_CARBON
    pion = np.where(iscc, 211, 111).astype(np.int64)
    m_pi = np.where(iscc, M_PION, M_PI0)
    s = mass2(nu + target)
    w_max = np.sqrt(s) - m_lep - 1e-6
    w = np.empty(n)
    q2 = np.empty(n)
    todo = np.arange(n)
    for round_ in range(_MAX_ROUNDS + 1):
        if todo.size == 0:
            break
        e, ml, mp = energy[todo], m_lep[todo], m_pi[todo]
        transfer = mp + 1e-3 + rng.random(todo.size) * np.clip(e - ml - mp - 2e-3, 0.0, None)
        w_t = np.clip(np.sqrt(M_CARBON**2 + 2 * M_CARBON * transfer), M_CARBON + mp + 1e-6, w_max[todo])
        lo, hi = q2_limits(s[todo], np.full(todo.size, M_CARBON**2), ml, w_t)
        q2_t = sample_q2_dipole(rng, lo, hi, params.coh_q2_scale_gev)
        # Nuclear form factor: accept with exp(-b |t_min|), |t_min| ~ (p_pi* - p_A*)^2 in the X frame.
        e_a = (w_t**2 + M_CARBON**2 + q2_t) / (2 * w_t)
        p_a = np.sqrt(np.clip(e_a**2 - M_CARBON**2, 0.0, None))
        t_min = (two_body_momentum(w_t, mp, M_CARBON) - p_a) ** 2
        ok = rng.random(todo.size) < pm.exp(-params.coh_t_slope_per_gev2 * t_min)
        if round_ == _MAX_ROUNDS:
            ok[:] = True
        w[todo[ok]], q2[todo[ok]] = w_t[ok], q2_t[ok]
        todo = todo[~ok]
    lep, had = scatter(rng, nu, target, m_lep, w, q2)
    p_star = two_body_momentum(w, m_pi, M_CARBON)
    p_nucleus = np.linalg.norm(boost_to_rest(target, had)[:, :3], axis=1)
    slope = 2 * params.coh_t_slope_per_gev2 * p_star * p_nucleus + 1e-12
    one_minus_cos = -pm.log1p(-rng.random(n) * -pm.expm1(-2 * slope)) / slope
    cos = np.clip(1.0 - one_minus_cos, -1.0, 1.0)
    sin = np.sqrt(1.0 - cos**2)
    phi = rng.uniform(0, 2 * np.pi, n)
    local = np.column_stack([sin * pm.cos(phi), sin * pm.sin(phi), cos]) * p_star[:, None]
    axis = boost_to_rest(nu - lep, had)[:, :3]
    pi_rest = np.column_stack([orient(local, axis), np.sqrt(p_star**2 + m_pi**2)])
    pi_lab = boost(pi_rest, had[:, :3] / had[:, 3:4])
    return ModeFinalState(lep, np.arange(n), pion, pi_lab, w, np.full(n, 1000060120, np.int64), iscc.astype(np.int64))


def two_nucleon(
    rng: np.random.Generator, energy: F64, m_lep: F64, iscc: npt.NDArray[np.bool_], params: GeneratorParams
) -> ModeFinalState:
    """MEC/2p2h: lepton plus two nucleons from a correlated pair."""
    n = len(energy)
    nu = neutrino_beam(energy)
    np_pair = rng.random(n) < params.mec_np_fraction
    pp_pair = ~np_pair & (rng.random(n) < 0.5) & ~iscc  # CC needs a neutron: other pairs are nn
    t1 = np.where(np_pair | ~pp_pair, 2112, 2212).astype(np.int64)
    t2 = np.where(np_pair | pp_pair, 2212, 2112).astype(np.int64)
    o1 = np.where(iscc, 2212, t1).astype(np.int64)
    o2 = t2.copy()
    m1, m2 = _nucleon_mass(o1), _nucleon_mass(o2)
    target = _open_targets(rng, nu, [_nucleon_mass(t1), _nucleon_mass(t2)], m_lep + m1 + m2 + 0.01, params)
    s, mt2, _ = _frame(nu, target)
    m_t = np.sqrt(mt2)
    w_min = m1 + m2 + 1e-4
    w_max = np.sqrt(s) - m_lep - 1e-4
    w = np.empty(n)
    q2 = np.empty(n)
    todo = np.arange(n)
    for _ in range(_MAX_ROUNDS):
        if todo.size == 0:
            break
        lo, hi = q2_limits(s[todo], mt2[todo], m_lep[todo], w_min[todo])
        q2_t = sample_q2_dipole(rng, lo, hi, params.mec_q2_scale_gev)
        transfer = q2_t / (2 * M_NUCLEON) + rng.exponential(params.mec_excess_mean_gev, todo.size)
        w_t = np.sqrt(np.clip(mt2[todo] + 2 * m_t[todo] * transfer - q2_t, 0.0, None))
        lo, hi = q2_limits(s[todo], mt2[todo], m_lep[todo], np.minimum(w_t, w_max[todo]))
        ok = (w_t >= w_min[todo]) & (w_t <= w_max[todo]) & (q2_t >= lo) & (q2_t <= hi)
        w[todo[ok]], q2[todo[ok]] = w_t[ok], q2_t[ok]
        todo = todo[~ok]
    if todo.size:
        w[todo] = w_min[todo] + rng.random(todo.size) * (w_max[todo] - w_min[todo])
        lo, hi = q2_limits(s[todo], mt2[todo], m_lep[todo], w[todo])
        q2[todo] = sample_q2_dipole(rng, lo, hi, params.mec_q2_scale_gev)
    lep, had = scatter(rng, nu, target, m_lep, w, q2)
    d1, d2 = two_body_decay(rng, had, m1, m2)
    idx = np.arange(n)
    nch = (o1 == 2212).astype(np.int64) + (o2 == 2212)
    pair = np.concatenate([idx, idx])
    return ModeFinalState(lep, pair, np.concatenate([o1, o2]), np.concatenate([d1, d2]), w, np.zeros(n, np.int64), nch)
