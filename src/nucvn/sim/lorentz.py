"""Vectorised four-vector helpers: boosts, rotations, two-body and n-body decays.

Four-momenta are arrays of shape (n, 4) ordered ``(px, py, pz, E)`` in GeV. Every function works
on a whole batch at once (numpy), which is what keeps the generator at thousands of events/s.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from nucvn.sim import portable_math as pm

__all__ = [
    "Vec4",
    "mass2",
    "boost",
    "boost_to_rest",
    "isotropic",
    "orient",
    "two_body_momentum",
    "two_body_decay",
    "nbody_decay",
    "breit_wigner",
]

Vec4 = npt.NDArray[np.float64]


def mass2(p: Vec4) -> npt.NDArray[np.float64]:
    """Invariant mass squared E² - |p|² of each row."""
    return p[:, 3] ** 2 - np.einsum("ij,ij->i", p[:, :3], p[:, :3])


def boost(p: Vec4, beta: npt.NDArray[np.float64]) -> Vec4:
    """Lorentz boost of four-vectors ``p`` (n, 4) by velocities ``beta`` (n, 3) (frame moving at -β)."""
    b2 = np.einsum("ij,ij->i", beta, beta)
    gamma = 1.0 / np.sqrt(np.clip(1.0 - b2, 1e-300, None))
    bp = np.einsum("ij,ij->i", beta, p[:, :3])
    safe_b2 = np.where(b2 > 0, b2, 1.0)
    coef = np.where(b2 > 0, (gamma - 1.0) * bp / safe_b2, 0.0) + gamma * p[:, 3]
    out = np.empty_like(p)
    out[:, :3] = p[:, :3] + coef[:, None] * beta
    out[:, 3] = gamma * (p[:, 3] + bp)
    return out


def boost_to_rest(p: Vec4, frame: Vec4) -> Vec4:
    """Express ``p`` in the rest frame of the four-momenta ``frame``."""
    return boost(p, -frame[:, :3] / frame[:, 3:4])


def isotropic(rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
    """``n`` unit vectors uniform on the sphere."""
    cos = rng.uniform(-1.0, 1.0, n)
    phi = rng.uniform(0.0, 2 * np.pi, n)
    sin = np.sqrt(1.0 - cos**2)
    return np.stack([sin * pm.cos(phi), sin * pm.sin(phi), cos], axis=1)


def orient(local: npt.NDArray[np.float64], axis: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Rotate vectors given with the z axis along ``axis`` (n, 3, any length) into the global frame.

    The transverse axes are an arbitrary orthonormal pair; callers draw the azimuth uniformly, so
    the choice does not matter.
    """
    w = axis / np.linalg.norm(axis, axis=1, keepdims=True)
    helper = np.where(np.abs(w[:, 2:3]) < 0.9, np.array([[0.0, 0.0, 1.0]]), np.array([[1.0, 0.0, 0.0]]))
    u = np.cross(helper, w)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = np.cross(w, u)
    return local[:, 0:1] * u + local[:, 1:2] * v + local[:, 2:3] * w


def two_body_momentum(
    m: npt.ArrayLike, m1: npt.ArrayLike, m2: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Momentum of either daughter in the rest frame of a mass-``m`` parent (Källén function)."""
    m, m1, m2 = (np.asarray(x, dtype=np.float64) for x in (m, m1, m2))
    lam = (m**2 - (m1 + m2) ** 2) * (m**2 - (m1 - m2) ** 2)
    return np.sqrt(np.clip(lam, 0.0, None)) / (2.0 * m)


def two_body_decay(
    rng: np.random.Generator, parent: Vec4, m1: npt.ArrayLike, m2: npt.ArrayLike
) -> tuple[Vec4, Vec4]:
    """Isotropic decay of ``parent`` (lab four-momenta) into masses ``m1``, ``m2``; lab daughters."""
    n = len(parent)
    m = np.sqrt(np.clip(mass2(parent), 0.0, None))
    m1 = np.broadcast_to(np.asarray(m1, dtype=np.float64), (n,))
    m2 = np.broadcast_to(np.asarray(m2, dtype=np.float64), (n,))
    p = two_body_momentum(m, m1, m2)
    d = isotropic(rng, n) * p[:, None]
    d1 = np.column_stack([d, np.sqrt(p**2 + m1**2)])
    d2 = np.column_stack([-d, np.sqrt(p**2 + m2**2)])
    beta = parent[:, :3] / parent[:, 3:4]
    return boost(d1, beta), boost(d2, beta)


def nbody_decay(rng: np.random.Generator, parent: Vec4, masses: Sequence[float]) -> list[Vec4]:
    """Decay ``parent`` into ``masses`` by a chain of isotropic two-body splits (lab daughters).

    Intermediate invariant masses are drawn as sorted uniforms between the mass thresholds, as in
    GENBOD (F. James, CERN 68-15), without the phase-space weight: adequate for τ and fallback
    hadronic decays, where only approximate spectra matter.
    """
    k = len(masses)
    if k == 1:
        return [parent.copy()]
    if k == 2:
        return list(two_body_decay(rng, parent, masses[0], masses[1]))
    n = len(parent)
    m_parent = np.sqrt(np.clip(mass2(parent), 0.0, None))
    kinetic = np.clip(m_parent - float(np.sum(masses)), 0.0, None)
    r = np.sort(rng.random((n, k - 2)), axis=1)
    # M_j: invariant mass of daughters j..k-1, for j = 1..k-2 (decreasing with j).
    tail_masses = np.cumsum(np.asarray(masses[::-1], dtype=np.float64))[::-1]
    out: list[Vec4] = []
    current = parent
    for j in range(k - 2):
        m_rest = tail_masses[j + 1] + kinetic * r[:, k - 3 - j]
        d1, current = two_body_decay(rng, current, masses[j], m_rest)
        out.append(d1)
    d1, d2 = two_body_decay(rng, current, masses[-2], masses[-1])
    return [*out, d1, d2]


def breit_wigner(
    rng: np.random.Generator, n: int, m0: float, gamma: float, lo: npt.ArrayLike, hi: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Non-relativistic Breit-Wigner (Cauchy) masses truncated to [lo, hi], by inverse CDF."""
    lo = np.broadcast_to(np.asarray(lo, dtype=np.float64), (n,))
    hi = np.broadcast_to(np.asarray(hi, dtype=np.float64), (n,))
    a = pm.arctan(2 * (lo - m0) / gamma)
    b = pm.arctan(2 * (hi - m0) / gamma)
    return m0 + 0.5 * gamma * pm.tan(a + rng.random(n) * (b - a))
