"""Light and electronics: energy deposits → cell light → 8-bit pixel counts (docs/simulation.md).

A deposit of energy ``dE`` at local stopping power ``dE/dx`` gives quenched visible energy
``dE / (1 + kB dE/dx)`` (Birks' law, J.B. Birks, Proc. Phys. Soc. A 64 (1951) 874) and a mean
number of photo-electrons ``pe_per_mev · E_vis · exp(-d/λ)`` where ``d`` is the distance along the
fibre to the readout end (X-measuring planes have vertical cells read out at the top, Y-measuring
planes horizontal cells read out at +x). Digitisation draws Poisson photo-electron statistics,
adds Gaussian electronics noise, zero-suppresses below a threshold, converts to counts and
saturates at 255; random noise hits are sprinkled over each view.

All functions are numba-compiled and called from the per-event kernel (:mod:`nucvn.sim.detector`).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import numpy.typing as npt

import nucvn.sim.kernel_cache  # noqa: F401  (sets numba's cache directory before any kernel is defined)
from nucvn.sim.detector_params import K
from nucvn.sim.geometry import CELL_PITCH, HALF_WIDTH, LENGTH, N_CELLS_DET, N_PLANES_DET, PLANE_PITCH

__all__ = ["deposit", "digitise", "mip_counts"]


@numba.njit(cache=True)
def deposit(
    x: float,
    y: float,
    z: float,
    de: float,
    dedx: float,
    prong: int,
    P: npt.NDArray[np.float64],
    buf_i: npt.NDArray[np.int32],
    buf_f: npt.NDArray[np.float64],
    nbuf: npt.NDArray[np.int64],
) -> bool:
    """Record ``de`` MeV deposited at (x, y, z) by ``prong``; False if the point is outside the box.

    Consecutive deposits of one prong in the same cell are merged (tracks take several steps per
    cell), which keeps the buffer short. ``buf_i`` rows are (plane, cell, prong); ``buf_f`` rows
    (visible MeV, mean PE).
    """
    if z < 0.0 or z >= LENGTH or abs(x) >= HALF_WIDTH or abs(y) >= HALF_WIDTH:
        return False
    if de <= 0.0:
        return True
    plane = int(z / PLANE_PITCH)
    if plane >= N_PLANES_DET:
        return False
    if plane % 2 == 0:
        across = x
        dist = HALF_WIDTH - y
    else:
        across = y
        dist = HALF_WIDTH - x
    cell = int((across + HALF_WIDTH) / CELL_PITCH)
    if cell >= N_CELLS_DET:
        cell = N_CELLS_DET - 1
    evis = de / (1.0 + P[K.BIRKS_KB_CM_MEV] * dedx)
    pe = evis * P[K.PE_PER_MEV] * math.exp(-dist / P[K.ATTENUATION_LENGTH_CM])
    n = nbuf[0]
    if n > 0 and buf_i[n - 1, 0] == plane and buf_i[n - 1, 1] == cell and buf_i[n - 1, 2] == prong:
        buf_f[n - 1, 0] += evis
        buf_f[n - 1, 1] += pe
        return True
    if n >= buf_i.shape[0]:
        return True
    buf_i[n, 0] = plane
    buf_i[n, 1] = cell
    buf_i[n, 2] = prong
    buf_f[n, 0] = evis
    buf_f[n, 1] = pe
    nbuf[0] = n + 1
    return True


@numba.njit(cache=True)
def _counts(pe_obs: float, P: npt.NDArray[np.float64]) -> int:
    c = int(pe_obs * P[K.GAIN_COUNTS_PER_PE] + 0.5)
    sat = int(P[K.SATURATION_COUNTS])
    if c > sat:
        c = sat
    if c < 1:
        c = 1
    return c


@numba.njit(cache=True)
def digitise(pe_img: npt.NDArray[np.float64], out: npt.NDArray[np.uint8], P: npt.NDArray[np.float64]) -> None:
    """Turn one event's mean-PE image ``(2, planes, cells)`` into counts in ``out`` (same shape).

    Per lit cell: Poisson(mean PE) + Normal(0, noise); kept if above the threshold; counts =
    round(gain · PE), saturating. Then Poisson(``noise_hits_per_view``) noise hits per view with
    an exponential PE spectrum above the threshold. ``pe_img`` is left zeroed for reuse.
    """
    nv, npl, nc = pe_img.shape
    thr = P[K.THRESHOLD_PE]
    noise = P[K.NOISE_PE]
    for v in range(nv):
        for p in range(npl):
            for c in range(nc):
                mu = pe_img[v, p, c]
                if mu > 0.0:
                    pe_img[v, p, c] = 0.0
                    obs = np.random.poisson(mu) + np.random.normal() * noise
                    if obs > thr:
                        out[v, p, c] = _counts(obs, P)
        nnoise = np.random.poisson(P[K.NOISE_HITS_PER_VIEW])
        tail = max(P[K.NOISE_HIT_MEAN_PE] - thr, 0.1)
        for _ in range(nnoise):
            p = np.random.randint(0, npl)
            c = np.random.randint(0, nc)
            obs = thr + np.random.exponential(tail)
            total = min(int(out[v, p, c]) + _counts(obs, P), int(P[K.SATURATION_COUNTS]))
            out[v, p, c] = total


@numba.njit(cache=True)
def _mip_counts_kernel(dist: npt.NDArray[np.float64], P: npt.NDArray[np.float64], seed: int) -> npt.NDArray[np.int64]:
    np.random.seed(seed)
    out = np.zeros(dist.shape[0], dtype=np.int64)
    mip_vis = P[K.MIP_DEDX_MEV_CM] * PLANE_PITCH / (1.0 + P[K.BIRKS_KB_CM_MEV] * P[K.MIP_DEDX_MEV_CM])
    for i in range(dist.shape[0]):
        mu = mip_vis * P[K.PE_PER_MEV] * math.exp(-dist[i] / P[K.ATTENUATION_LENGTH_CM])
        obs = np.random.poisson(mu) + np.random.normal() * P[K.NOISE_PE]
        out[i] = _counts(obs, P) if obs > P[K.THRESHOLD_PE] else 0
    return out


def mip_counts(dist_cm: npt.ArrayLike, P: npt.NDArray[np.float64], seed: int = 0) -> npt.NDArray[np.int64]:
    """Digitised counts of a MIP crossing one cell at normal incidence at fibre distances
    ``dist_cm`` from the readout (0 where zero-suppressed): the readout calibration alone."""
    return _mip_counts_kernel(np.asarray(dist_cm, dtype=np.float64), P, int(seed))
