"""Transport of one event's particles through the detector (a stack of particles, numba).

Each final-state particle is classified (:data:`KIND_*`) and pushed on a stack; popping one
transports it and may push secondaries:

- muons: CSDA track (:mod:`nucvn.sim.tracks`); a stopping μ⁺ (μ⁻ with probability 0.92, the rest
  is captured on carbon) leaves a Michel electron with the spectrum x²(3 − 2x), x = E/(m_μ/2);
- charged pions/kaons: tracks with inelastic interactions (λ ≈ 1.1 m): absorption (energy to
  nucleons), charge exchange (→ π⁰) or inelastic scattering (a softer pion at a new angle plus a
  proton, a neutron and sometimes a π⁰); a stopping π⁺ decays (μ⁺ of 4.1 MeV, then a Michel), a
  stopping π⁻ is captured and releases a proton and a neutron;
- protons: Bragg-peak tracks with inelastic interactions (λ ≈ 0.8 m);
- neutrons: invisible for an exponential distance (≈ 1 m), then scatters each giving a recoil
  proton (n-p kinematics T_p = T cos²θ; on carbon only part of it is visible), a small proton blob;
- e, γ: showers (:mod:`nucvn.sim.showers`); π⁰ → γγ isotropic in its rest frame.

Every deposit carries a *prong* id: the final-state particle it descends from, except that each
photon of a final-state π⁰ gets its own prong (it is a shower of its own for the final-state
counts). Masses come from the caller (the ``particle`` package).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import numpy.typing as npt

import nucvn.sim.kernel_cache  # noqa: F401  (sets numba's cache directory before any kernel is defined)
from nucvn.sim.detector_params import K
from nucvn.sim.readout import deposit
from nucvn.sim.showers import em_shower, photon
from nucvn.sim.tracks import INTERACTED, STOPPED, rotate, transport_track

__all__ = [
    "KIND_INVISIBLE", "KIND_MUON", "KIND_PION", "KIND_PROTON", "KIND_NEUTRON", "KIND_ELECTRON",
    "KIND_PHOTON", "KIND_PI0", "KIND_NEUTRAL_HADRON", "CAT_NONE", "CAT_TRACK", "CAT_SHOWER",
    "CAT_PI0", "M_MU", "M_PI", "M_PI0", "M_P", "M_N", "transport_event", "push",
]  # fmt: skip

KIND_INVISIBLE, KIND_MUON, KIND_PION, KIND_PROTON, KIND_NEUTRON = 0, 1, 2, 3, 4
KIND_ELECTRON, KIND_PHOTON, KIND_PI0, KIND_NEUTRAL_HADRON = 5, 6, 7, 8
CAT_NONE, CAT_TRACK, CAT_SHOWER, CAT_PI0 = 0, 1, 2, 3
"""Prong categories for the final-state counts: tracks (μ, π±, p), showers (e, γ), π⁰ (its
photons become shower prongs)."""
M_MU, M_PI, M_PI0, M_P, M_N = 0, 1, 2, 3, 4
"""Indices into the ``masses`` array (MeV) the caller fills from the ``particle`` package."""


@numba.njit(cache=True)
def push(
    sf: npt.NDArray[np.float64], si: npt.NDArray[np.int64], ns: npt.NDArray[np.int64],
    kind: int, charge: int, prong: int, x: float, y: float, z: float,
    dx: float, dy: float, dz: float, t: float, mass: float,
) -> None:
    """Push a particle (kinetic energy ``t``, MeV) on the stack; silently dropped when full."""
    n = ns[0]
    if n >= sf.shape[0] or t <= 0.0:
        return
    sf[n, 0] = x
    sf[n, 1] = y
    sf[n, 2] = z
    sf[n, 3] = dx
    sf[n, 4] = dy
    sf[n, 5] = dz
    sf[n, 6] = t
    sf[n, 7] = mass
    si[n, 0] = kind
    si[n, 1] = charge
    si[n, 2] = prong
    ns[0] = n + 1


@numba.njit(cache=True)
def _iso() -> tuple[float, float, float]:
    c = 2.0 * np.random.random() - 1.0
    s = math.sqrt(max(0.0, 1.0 - c * c))
    phi = 2.0 * math.pi * np.random.random()
    return s * math.cos(phi), s * math.sin(phi), c


@numba.njit(cache=True)
def _michel_energy(m_mu: float) -> float:
    while True:
        x = np.random.random()
        if np.random.random() < x * x * (3.0 - 2.0 * x):
            return x * 0.5 * m_mu


@numba.njit(cache=True)
def _pi0_decay(
    x: float, y: float, z: float, dx: float, dy: float, dz: float, t: float, m: float,
    prong1: int, prong2: int, sf: npt.NDArray[np.float64], si: npt.NDArray[np.int64], ns: npt.NDArray[np.int64],
) -> None:
    """π⁰ → γγ: back-to-back photons of m/2 isotropic in the rest frame, boosted along d."""
    e = t + m
    gamma = e / m
    beta = math.sqrt(max(0.0, 1.0 - 1.0 / (gamma * gamma)))
    cx, cy, cz = _iso()
    h = 0.5 * m
    for sign, prong in ((1.0, prong1), (-1.0, prong2)):
        # rest-frame momentum components parallel / perpendicular to d
        px, py, pz = sign * h * cx, sign * h * cy, sign * h * cz
        par = px * dx + py * dy + pz * dz
        perp_x, perp_y, perp_z = px - par * dx, py - par * dy, pz - par * dz
        par_lab = gamma * (par + beta * h)
        lx, ly, lz = perp_x + par_lab * dx, perp_y + par_lab * dy, perp_z + par_lab * dz
        elab = gamma * (h + beta * par)
        norm = math.sqrt(lx * lx + ly * ly + lz * lz)
        push(sf, si, ns, KIND_PHOTON, 0, prong, x, y, z, lx / norm, ly / norm, lz / norm, elab, 0.0)


@numba.njit(cache=True)
def _hadron_interaction(
    kind: int, charge: int, prong: int, x: float, y: float, z: float, dx: float, dy: float, dz: float,
    t: float, mass: float, P: npt.NDArray[np.float64], masses: npt.NDArray[np.float64],
    sf: npt.NDArray[np.float64], si: npt.NDArray[np.int64], ns: npt.NDArray[np.int64],
) -> None:
    """Inelastic interaction of a charged hadron in flight: push the outgoing particles."""
    bind = P[K.NUCLEON_BINDING_MEV]
    mp = masses[M_P]
    mn = masses[M_N]
    u = np.random.random()
    if kind == KIND_PION and u < P[K.PION_ABSORPTION_FRACTION]:
        avail = t + mass - 2.0 * bind
        f = np.random.uniform(0.3, 0.7)
        ax, ay, az = _iso()
        push(sf, si, ns, KIND_PROTON, 1, prong, x, y, z, ax, ay, az, f * avail, mp)
        push(sf, si, ns, KIND_NEUTRON, 0, prong, x, y, z, -ax, -ay, -az, (1.0 - f) * avail, mn)
        return
    if kind == KIND_PION and u < P[K.PION_ABSORPTION_FRACTION] + P[K.PION_CHARGE_EXCHANGE_FRACTION]:
        ex, ey, ez = rotate(dx, dy, dz, abs(np.random.normal()) * 0.3, 2.0 * math.pi * np.random.random())
        push(sf, si, ns, KIND_PI0, 0, prong, x, y, z, ex, ey, ez, t + mass - masses[M_PI0] - bind, masses[M_PI0])
        return
    f = np.random.uniform(0.3, 0.85)
    ex, ey, ez = rotate(dx, dy, dz, min(np.random.exponential(0.35), math.pi), 2.0 * math.pi * np.random.random())
    push(sf, si, ns, kind, charge, prong, x, y, z, ex, ey, ez, f * t, mass)
    rest = (1.0 - f) * t - bind
    if rest <= 0.0:
        return
    if rest > 300.0 and np.random.random() < 0.4:
        epi = rest * np.random.uniform(0.3, 0.6)
        if epi > masses[M_PI0]:
            ex, ey, ez = rotate(dx, dy, dz, np.random.uniform(0.0, 1.2), 2.0 * math.pi * np.random.random())
            push(sf, si, ns, KIND_PI0, 0, prong, x, y, z, ex, ey, ez, epi - masses[M_PI0], masses[M_PI0])
            rest -= epi
    fp = np.random.uniform(0.3, 0.7)
    ex, ey, ez = rotate(dx, dy, dz, np.random.uniform(0.2, 1.3), 2.0 * math.pi * np.random.random())
    push(sf, si, ns, KIND_PROTON, 1, prong, x, y, z, ex, ey, ez, fp * rest, mp)
    ex, ey, ez = rotate(dx, dy, dz, np.random.uniform(0.2, 1.3), 2.0 * math.pi * np.random.random())
    push(sf, si, ns, KIND_NEUTRON, 0, prong, x, y, z, ex, ey, ez, (1.0 - fp) * rest, mn)


@numba.njit(cache=True)
def transport_event(
    sf: npt.NDArray[np.float64], si: npt.NDArray[np.int64], ns: npt.NDArray[np.int64],
    prong_cat: npt.NDArray[np.int64], prong_event: npt.NDArray[np.int64], nprong: npt.NDArray[np.int64],
    event: int, P: npt.NDArray[np.float64], masses: npt.NDArray[np.float64],
    lt: npt.NDArray[np.float64], lr: npt.NDArray[np.float64],
    buf_i: npt.NDArray[np.int32], buf_f: npt.NDArray[np.float64], nbuf: npt.NDArray[np.int64],
) -> None:
    """Transport everything on the stack (and its secondaries) into the deposit buffer."""
    mmu = masses[M_MU]
    while ns[0] > 0:
        n = ns[0] - 1
        ns[0] = n
        x, y, z, dx, dy, dz, t, mass = sf[n, 0], sf[n, 1], sf[n, 2], sf[n, 3], sf[n, 4], sf[n, 5], sf[n, 6], sf[n, 7]
        kind, charge, prong = si[n, 0], si[n, 1], si[n, 2]
        if kind == KIND_MUON:
            st, x, y, z, dx, dy, dz, t = transport_track(x, y, z, dx, dy, dz, t, mass, 0.0, prong, P, mmu, lt, lr,
                                                         buf_i, buf_f, nbuf)
            if st == STOPPED:
                pdec = P[K.MICHEL_PROBABILITY_MU_PLUS] if charge > 0 else P[K.MICHEL_PROBABILITY_MU_MINUS]
                if np.random.random() < pdec:
                    ax, ay, az = _iso()
                    push(sf, si, ns, KIND_ELECTRON, -charge, prong, x, y, z, ax, ay, az, _michel_energy(mmu), 0.0)
        elif kind == KIND_PION or kind == KIND_PROTON:  # noqa: SIM109 - a compiled kernel: two integer compares, no tuple
            lam = P[K.PION_INTERACTION_LENGTH_CM] if kind == KIND_PION else P[K.NUCLEAR_INTERACTION_LENGTH_CM]
            st, x, y, z, dx, dy, dz, t = transport_track(x, y, z, dx, dy, dz, t, mass, lam, prong, P, mmu, lt, lr,
                                                         buf_i, buf_f, nbuf)
            if st == INTERACTED:
                _hadron_interaction(kind, charge, prong, x, y, z, dx, dy, dz, t, mass, P, masses, sf, si, ns)
            elif st == STOPPED and kind == KIND_PION:
                if charge > 0:
                    tmu = (mass - mmu) ** 2 / (2.0 * mass)
                    deposit(x, y, z, tmu, 50.0, prong, P, buf_i, buf_f, nbuf)
                    ax, ay, az = _iso()
                    push(sf, si, ns, KIND_MUON, 1, prong, x, y, z, ax, ay, az, 1e-3, mmu)
                else:
                    ax, ay, az = _iso()
                    push(sf, si, ns, KIND_PROTON, 1, prong, x, y, z, ax, ay, az,
                         np.random.exponential(P[K.PION_CAPTURE_PROTON_MEV]), masses[M_P])  # fmt: skip
                    push(sf, si, ns, KIND_NEUTRON, 0, prong, x, y, z, -ax, -ay, -az,
                         np.random.exponential(P[K.PION_CAPTURE_PROTON_MEV]), masses[M_N])  # fmt: skip
        elif kind == KIND_NEUTRON:
            for _ in range(int(P[K.NEUTRON_MAX_SCATTERS])):
                if t < P[K.NEUTRON_MIN_MEV]:
                    break
                s = np.random.exponential(P[K.NEUTRON_SCATTER_LENGTH_CM])
                x += s * dx
                y += s * dy
                z += s * dz
                if not deposit(x, y, z, 0.0, 0.0, prong, P, buf_i, buf_f, nbuf):
                    break
                u = np.random.random()
                phi = 2.0 * math.pi * np.random.random()
                px_, py_, pz_ = rotate(dx, dy, dz, math.acos(math.sqrt(u)), phi)
                vis = 1.0 if np.random.random() < P[K.NEUTRON_HYDROGEN_FRACTION] else P[K.NEUTRON_CARBON_VISIBLE]
                push(sf, si, ns, KIND_PROTON, 1, prong, x, y, z, px_, py_, pz_, vis * u * t, masses[M_P])
                dx, dy, dz = rotate(dx, dy, dz, math.acos(math.sqrt(1.0 - u)), phi + math.pi)
                t *= 1.0 - u
        elif kind == KIND_NEUTRAL_HADRON:
            s = np.random.exponential(P[K.PION_INTERACTION_LENGTH_CM])
            x += s * dx
            y += s * dy
            z += s * dz
            if deposit(x, y, z, 0.0, 0.0, prong, P, buf_i, buf_f, nbuf):
                q = 1 if np.random.random() < 0.5 else -1
                ex, ey, ez = rotate(dx, dy, dz, np.random.uniform(0.0, 0.8), 2.0 * math.pi * np.random.random())
                push(sf, si, ns, KIND_PION, q, prong, x, y, z, ex, ey, ez, 0.5 * t, masses[M_PI])
                ex, ey, ez = rotate(dx, dy, dz, np.random.uniform(0.2, 1.2), 2.0 * math.pi * np.random.random())
                push(sf, si, ns, KIND_PROTON, 1, prong, x, y, z, ex, ey, ez, 0.3 * t, masses[M_P])
        elif kind == KIND_ELECTRON:
            em_shower(x, y, z, dx, dy, dz, t, prong, P, buf_i, buf_f, nbuf)
        elif kind == KIND_PHOTON:
            photon(x, y, z, dx, dy, dz, t, prong, P, buf_i, buf_f, nbuf)
        elif kind == KIND_PI0:
            p1 = prong
            p2 = prong
            if prong_cat[prong] == CAT_PI0 and nprong[0] + 2 <= prong_cat.shape[0]:
                p1 = nprong[0]
                p2 = p1 + 1
                nprong[0] = p1 + 2
                prong_cat[p1] = CAT_SHOWER
                prong_cat[p2] = CAT_SHOWER
                prong_event[p1] = event
                prong_event[p2] = event
            _pi0_decay(x, y, z, dx, dy, dz, t, mass, p1, p2, sf, si, ns)
