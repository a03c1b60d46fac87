"""Electromagnetic showers as discrete energy spots (docs/simulation.md).

Longitudinal profile: the Gamma distribution dE/dt = E b (bt)^(a-1) e^(-bt) / Γ(a) in t = depth/X0
with t_max = (a-1)/b = ln(E/E_c) + C (Longo & Sestili, NIM 128 (1975) 283; PDG RPP §34.5), with a
shower-to-shower Gaussian jitter of t_max. Lateral profile: a core + halo mixture, each
f(r) = 2 r R² / (r² + R²)² (Grindhammer & Peters, hep-ex/0001020) with R in units of the Molière
radius; the core widens from 50 % at the start to 100 % at t_max, and the first X0 carries one
(electron) or two (converted photon) MIP tracks along the axis, so a shower starts as a thin track.
The energy is cut into spots of ``shower_spot_mev``, each placed independently, so
showers fluctuate (sampling term ≈ √(spot/E)). Photons first fly an exponential distance of mean
9/7 X0 (pair-production mean free path) — the gap that separates π⁰ photons from an electron.
Electrons below ``em_track_below_mev`` are short tracks at MIP dE/dx with multiple scattering.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import numpy.typing as npt

import nucvn.sim.kernel_cache  # noqa: F401  (sets numba's cache directory before any kernel is defined)
from nucvn.sim.detector_params import K
from nucvn.sim.geometry import HALF_WIDTH, LENGTH
from nucvn.sim.readout import deposit
from nucvn.sim.tracks import rotate, scatter

__all__ = ["em_shower", "electron_track", "photon", "lateral_radius"]

_ME = 0.51099895  # used only as a floor for the electron momentum in the Highland formula


@numba.njit(cache=True)
def _inside(x: float, y: float, z: float) -> bool:
    return 0.0 <= z < LENGTH and abs(x) < HALF_WIDTH and abs(y) < HALF_WIDTH


@numba.njit(cache=True)
def lateral_radius(P: npt.NDArray[np.float64], core_scale: float) -> float:
    """One spot's distance from the shower axis (cm): core with probability ``core_fraction``."""
    rm = P[K.MOLIERE_RADIUS_CM]
    if np.random.random() < P[K.SHOWER_CORE_FRACTION]:
        radius = P[K.SHOWER_CORE_RADIUS_RM] * rm * core_scale
    else:
        radius = P[K.SHOWER_HALO_RADIUS_RM] * rm
    rmax = P[K.SHOWER_MAX_RADIUS_RM] * rm
    while True:
        u = np.random.random()
        r = radius * math.sqrt(u / (1.0 - u))
        if r <= rmax:
            return r


@numba.njit(cache=True)
def electron_track(
    x: float, y: float, z: float, dx: float, dy: float, dz: float, e: float, prong: int,
    P: npt.NDArray[np.float64], buf_i: npt.NDArray[np.int32], buf_f: npt.NDArray[np.float64],
    nbuf: npt.NDArray[np.int64],
) -> None:
    """A low-energy electron: MIP dE/dx steps with Highland scattering until its energy is spent."""
    dedx = P[K.MIP_DEDX_MEV_CM]
    step = P[K.STEP_CM]
    x0 = P[K.RADIATION_LENGTH_CM]
    while e > 0.0:
        ds = min(step, e / dedx)
        de = min(e, dedx * ds)
        if not deposit(x + 0.5 * ds * dx, y + 0.5 * ds * dy, z + 0.5 * ds * dz, de, dedx, prong, P, buf_i, buf_f, nbuf):
            return
        x += ds * dx
        y += ds * dy
        z += ds * dz
        e -= de
        p = max(e, _ME)
        xr = max(ds / x0, 1e-4)
        theta0 = P[K.HIGHLAND_A_MEV] / p * math.sqrt(xr) * max(1.0 + P[K.HIGHLAND_B] * math.log(xr), 0.1)
        dx, dy, dz = scatter(dx, dy, dz, theta0)


@numba.njit(cache=True)
def em_shower(
    x: float, y: float, z: float, dx: float, dy: float, dz: float, e: float, prong: int,
    P: npt.NDArray[np.float64], buf_i: npt.NDArray[np.int32], buf_f: npt.NDArray[np.float64],
    nbuf: npt.NDArray[np.int64], n_head: int = 1,
) -> None:
    """Deposit a shower of energy ``e`` (MeV) starting at (x, y, z) along d; ``n_head`` MIP tracks
    (1 for an electron, 2 for a converted photon) form its head."""
    if e < P[K.EM_TRACK_BELOW_MEV]:
        electron_track(x, y, z, dx, dy, dz, e, prong, P, buf_i, buf_f, nbuf)
        return
    b = P[K.SHOWER_B]
    x0 = P[K.RADIATION_LENGTH_CM]
    dedx = P[K.MIP_DEDX_MEV_CM]
    step = P[K.STEP_CM]
    head_len = min(P[K.SHOWER_HEAD_X0] * x0, P[K.SHOWER_HEAD_MAX_FRACTION] * e / (n_head * dedx))
    s = 0.0
    while s < head_len:
        ds = min(step, head_len - s)
        sm = s + 0.5 * ds
        deposit(x + sm * dx, y + sm * dy, z + sm * dz, n_head * dedx * ds, dedx, prong, P, buf_i, buf_f, nbuf)
        s += ds
    head_left = n_head * dedx * head_len  # taken back from the spots: early ones first
    tmax = math.log(e / P[K.CRITICAL_ENERGY_MEV]) + P[K.SHOWER_TMAX_OFFSET_ELECTRON]
    tmax += np.random.normal() * P[K.SHOWER_TMAX_SIGMA]
    tmax = max(tmax, 0.3)
    a = b * tmax + 1.0
    n = min(max(1, int(e / P[K.SHOWER_SPOT_MEV] + 0.5)), int(P[K.SHOWER_MAX_SPOTS]))
    espot = e / n
    # orthonormal basis (u, v) perpendicular to d for the lateral placement
    ux, uy, uz = rotate(dx, dy, dz, 0.5 * math.pi, 0.0)
    vx = dy * uz - dz * uy
    vy = dz * ux - dx * uz
    vz = dx * uy - dy * ux
    skipped = np.zeros(n, dtype=np.bool_)
    depths = np.random.gamma(a, 1.0 / b, n)
    for i in range(n):
        if head_left > 0.0 and depths[i] * x0 < head_len:
            skipped[i] = True
            head_left -= espot
    for i in range(n):
        if skipped[i]:
            continue
        if head_left > 0.0:
            head_left -= espot
            continue
        t = depths[i]
        core_scale = 0.5 + 0.5 * min(t / tmax, 1.0)
        r = lateral_radius(P, core_scale)
        phi = 2.0 * math.pi * np.random.random()
        ox = r * (math.cos(phi) * ux + math.sin(phi) * vx)
        oy = r * (math.cos(phi) * uy + math.sin(phi) * vy)
        oz = r * (math.cos(phi) * uz + math.sin(phi) * vz)
        depth = t * x0
        deposit(x + depth * dx + ox, y + depth * dy + oy, z + depth * dz + oz, espot,
                P[K.MIP_DEDX_MEV_CM], prong, P, buf_i, buf_f, nbuf)  # fmt: skip


@numba.njit(cache=True)
def photon(
    x: float, y: float, z: float, dx: float, dy: float, dz: float, e: float, prong: int,
    P: npt.NDArray[np.float64], buf_i: npt.NDArray[np.int32], buf_f: npt.NDArray[np.float64],
    nbuf: npt.NDArray[np.int64],
) -> float:
    """Fly a photon an exponential distance (mean ``conversion_length_x0`` X0), then shower.

    Returns the conversion distance (cm), or -1 when the photon leaves the detector first.
    """
    s = np.random.exponential(P[K.CONVERSION_LENGTH_X0] * P[K.RADIATION_LENGTH_CM])
    x += s * dx
    y += s * dy
    z += s * dz
    if not _inside(x, y, z):
        return -1.0
    em_shower(x, y, z, dx, dy, dz, e, prong, P, buf_i, buf_f, nbuf, 2)
    return s
