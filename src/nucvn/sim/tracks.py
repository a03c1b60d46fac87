"""Charged-track transport: CSDA range stepping with ionisation fluctuations and Highland scattering.

Energy loss follows the continuous-slowing-down range table of :mod:`nucvn.sim.detector_params`
(exact by construction: after a step ``ds`` the kinetic energy is ``T(R - ds)``), so a contained
track's length equals its CSDA range up to multiple-scattering wiggles. The deposit per step
fluctuates with a Moyal (Landau-like) shape of fixed relative width around the mean loss.
Multiple scattering deflects the direction after each step by a Gaussian angle of width
θ0 = 13.6 MeV/(βcp) √(x/X0) (1 + 0.038 ln(x/X0)) in two orthogonal planes (Highland, PDG RPP §34.3).
The Bragg peak of protons emerges from the rising dE/dx of the table at low energy.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import numpy.typing as npt

import nucvn.sim.kernel_cache  # noqa: F401  (sets numba's cache directory before any kernel is defined)
from nucvn.sim.detector_params import K
from nucvn.sim.readout import deposit

__all__ = ["range_cm", "kinetic_from_range", "rotate", "scatter", "transport_track", "STOPPED", "ESCAPED", "INTERACTED"]

STOPPED = 0
ESCAPED = 1
INTERACTED = 2
_MOYAL_MEAN = 0.5772156649 + math.log(2.0)


@numba.njit(cache=True)
def range_cm(t: float, mass: float, mmu: float, lt: npt.NDArray[np.float64], lr: npt.NDArray[np.float64]) -> float:
    """CSDA range (cm) of a singly charged particle of ``mass`` (MeV) with kinetic energy ``t``
    (MeV), from the muon table ``lt = ln T``, ``lr = ln R`` scaled by mass (same βγ)."""
    if t <= 0.0:
        return 0.0
    s = mass / mmu
    te = t / s
    lte = math.log(te)
    if lte <= lt[0]:
        r = math.exp(lr[0]) * (te / math.exp(lt[0])) ** 1.75
    else:
        r = math.exp(np.interp(lte, lt, lr))
    return s * r


@numba.njit(cache=True)
def kinetic_from_range(r: float, mass: float, mmu: float, lt: npt.NDArray[np.float64],
                       lr: npt.NDArray[np.float64]) -> float:
    """Inverse of :func:`range_cm`."""
    if r <= 0.0:
        return 0.0
    s = mass / mmu
    re = r / s
    lre = math.log(re)
    if lre <= lr[0]:
        te = math.exp(lt[0]) * (re / math.exp(lr[0])) ** (1.0 / 1.75)
    else:
        te = math.exp(np.interp(lre, lr, lt))
    return s * te


@numba.njit(cache=True)
def rotate(dx: float, dy: float, dz: float, theta: float, phi: float) -> tuple[float, float, float]:
    """Unit vector at polar angle ``theta`` and azimuth ``phi`` around the unit vector d."""
    if abs(dz) < 0.9:
        ux, uy, uz = dy, -dx, 0.0
    else:
        ux, uy, uz = 0.0, dz, -dy
    nu = math.sqrt(ux * ux + uy * uy + uz * uz)
    ux /= nu
    uy /= nu
    uz /= nu
    vx = dy * uz - dz * uy
    vy = dz * ux - dx * uz
    vz = dx * uy - dy * ux
    st = math.sin(theta)
    ct = math.cos(theta)
    cp = math.cos(phi)
    sp = math.sin(phi)
    ox = ct * dx + st * (cp * ux + sp * vx)
    oy = ct * dy + st * (cp * uy + sp * vy)
    oz = ct * dz + st * (cp * uz + sp * vz)
    no = math.sqrt(ox * ox + oy * oy + oz * oz)
    return ox / no, oy / no, oz / no


@numba.njit(cache=True)
def scatter(dx: float, dy: float, dz: float, theta0: float) -> tuple[float, float, float]:
    """Deflect d by projected Gaussian angles of width ``theta0`` in two orthogonal planes."""
    tx = np.random.normal() * theta0
    ty = np.random.normal() * theta0
    theta = math.sqrt(tx * tx + ty * ty)
    if theta == 0.0:
        return dx, dy, dz
    return rotate(dx, dy, dz, min(theta, math.pi), math.atan2(ty, tx))


@numba.njit(cache=True)
def transport_track(
    x: float, y: float, z: float, dx: float, dy: float, dz: float, t: float, mass: float,
    lam_int: float, prong: int, P: npt.NDArray[np.float64], mmu: float,
    lt: npt.NDArray[np.float64], lr: npt.NDArray[np.float64],
    buf_i: npt.NDArray[np.int32], buf_f: npt.NDArray[np.float64], nbuf: npt.NDArray[np.int64],
) -> tuple[int, float, float, float, float, float, float, float]:
    """Step a charged track until it stops, leaves the detector or interacts.

    ``lam_int`` is the inelastic interaction length (cm; 0 for none); interactions happen only
    above ``hadron_interaction_min_mev``. Returns (status, x, y, z, dx, dy, dz, T) at the end.
    """
    step = P[K.STEP_CM]
    step_max = P[K.STEP_MAX_CM]
    x0 = P[K.RADIATION_LENGTH_CM]
    w = P[K.LANDAU_WIDTH]
    tmin_int = P[K.HADRON_INTERACTION_MIN_MEV]
    r = range_cm(t, mass, mmu, lt, lr)
    to_int = np.random.exponential(lam_int) if lam_int > 0.0 else 1e30
    while True:
        if t <= P[K.STOP_KINETIC_MEV]:
            deposit(x, y, z, t, 50.0, prong, P, buf_i, buf_f, nbuf)
            return STOPPED, x, y, z, dx, dy, dz, 0.0
        ds = min(max(step, min(0.05 * r, step_max)), r)
        interacts = False
        if t > tmin_int and to_int < ds:
            ds = to_int
            interacts = True
        r_new = r - ds
        t_new = kinetic_from_range(r_new, mass, mmu, lt, lr) if r_new > 1e-6 else 0.0
        de = t - t_new
        fl = 1.0 + w * (-math.log(max(np.random.normal() ** 2, 1e-12)) - _MOYAL_MEAN) / 2.2214
        inside = deposit(x + 0.5 * ds * dx, y + 0.5 * ds * dy, z + 0.5 * ds * dz, de * max(fl, 0.0),
                         de / max(ds, 1e-6), prong, P, buf_i, buf_f, nbuf)  # fmt: skip
        x += ds * dx
        y += ds * dy
        z += ds * dz
        if not inside:
            return ESCAPED, x, y, z, dx, dy, dz, t_new
        if t > tmin_int:
            to_int -= ds
        t = t_new
        r = r_new
        if interacts:
            return INTERACTED, x, y, z, dx, dy, dz, t
        if t <= 0.0:
            return STOPPED, x, y, z, dx, dy, dz, 0.0
        p = math.sqrt(t * (t + 2.0 * mass))
        beta = p / (t + mass)
        xr = ds / x0
        theta0 = P[K.HIGHLAND_A_MEV] / (beta * p) * math.sqrt(xr) * max(1.0 + P[K.HIGHLAND_B] * math.log(xr), 0.1)
        dx, dy, dz = scatter(dx, dy, dz, theta0)
