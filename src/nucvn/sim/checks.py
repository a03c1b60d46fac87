"""Physics measurements on simulated images: what the validation plots and the tests check.

Particle guns (:func:`particle_gun`) feed the detector alone; each ``measure_*`` function
returns plain numbers/arrays measured *from the 8-bit images and window origins*, the way an
analyser would, so the checks exercise the full chain (transport → window → light → digits).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from particle import Particle
from scipy.special import gammaln

from nucvn.sim.detector import Detector, DetectorResult
from nucvn.sim.detector_params import MUON_RANGE_CM, MUON_RANGE_T_MEV
from nucvn.sim.geometry import CELL_PITCH, HALF_WIDTH, PLANE_PITCH
from nucvn.sim.particles import PARTICLE_DTYPE, GeneratedBatch

__all__ = [
    "GUN_Z0",
    "particle_gun",
    "hit_planes",
    "csda_range_cm",
    "gamma_profile",
    "MuonRange",
    "measure_muon_range",
    "ShowerProfile",
    "measure_shower_profile",
    "measure_mip_values",
    "measure_linearity",
]

GUN_Z0 = 100 * PLANE_PITCH
"""Default gun start: on a plane boundary 6.7 m into the detector, on the axis."""


def particle_gun(
    pdg: int,
    kinetic_gev: float | npt.ArrayLike,
    n: int,
    *,
    direction: tuple[float, float, float] | npt.ArrayLike = (0.0, 0.0, 1.0),
    position: tuple[float, float, float] = (0.0, 0.0, GUN_Z0),
) -> GeneratedBatch:
    """``n`` one-particle events of kinetic energy ``kinetic_gev`` (scalar or per event) along
    ``direction`` (one vector or ``(n, 3)``), starting at ``position`` (cm)."""
    p = np.zeros(n, PARTICLE_DTYPE)
    m = float(Particle.from_pdgid(pdg).mass) / 1000.0
    e = np.broadcast_to(np.asarray(kinetic_gev, dtype=float), (n,)) + m
    mom = np.sqrt(e**2 - m**2)
    d = np.broadcast_to(np.asarray(direction, dtype=float), (n, 3))
    d = d / np.linalg.norm(d, axis=1, keepdims=True)
    p["event"] = np.arange(n)
    p["pdg"] = pdg
    p["px"], p["py"], p["pz"], p["e"] = mom * d[:, 0], mom * d[:, 1], mom * d[:, 2], e
    p["x"], p["y"], p["z"] = position
    return GeneratedBatch(n_events=n, particles=p, truth={})


def hit_planes(res: DetectorResult) -> list[npt.NDArray[np.int64]]:
    """Detector plane of every lit pixel, per event (plane stride 2: first + 2 row + view)."""
    out = []
    for i in range(res.images.shape[0]):
        v, row, _ = np.nonzero(res.images[i])
        out.append(res.firstplane[i] + 2 * row.astype(np.int64) + v)
    return out


def csda_range_cm(kinetic_mev: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Muon CSDA range (cm) from the parameter table (log-log interpolation)."""
    t = np.asarray(kinetic_mev, dtype=float)
    return np.exp(np.interp(np.log(t), np.log(MUON_RANGE_T_MEV), np.log(MUON_RANGE_CM)))


def gamma_profile(t: npt.ArrayLike, energy_mev: float, critical_mev: float, offset: float,
                  b: float = 0.5) -> npt.NDArray[np.float64]:
    """Normalised longitudinal shower profile dE/dt / E (PDG RPP §34.5): Gamma(a, b) with
    t_max = (a - 1)/b = ln(E/E_c) + offset."""
    tt = np.asarray(t, dtype=float)
    a = b * (np.log(energy_mev / critical_mev) + offset) + 1.0
    with np.errstate(divide="ignore"):
        logp = np.log(b) + (a - 1) * np.log(np.maximum(b * tt, 1e-300)) - b * tt - gammaln(a)
    return np.where(tt > 0, np.exp(logp), 0.0)


@dataclass
class MuonRange:
    """Muon-gun measurement: kinetic energy (GeV), measured 3-D length and CSDA range (cm)."""

    kinetic_gev: npt.NDArray[np.float64]
    length_cm: npt.NDArray[np.float64]
    csda_cm: npt.NDArray[np.float64]

    @property
    def ratio(self) -> npt.NDArray[np.float64]:
        return self.length_cm / self.csda_cm


def measure_muon_range(detector: Detector, n: int, *, seed: int, e_min: float = 0.2, e_max: float = 3.0) -> MuonRange:
    """Contained muons (energies uniform in [e_min, e_max] GeV, within 25° of the beam) from a
    fixed vertex; length from the vertex to the last hit (z from the last plane, x and y from the
    last hit cell in each view)."""
    rng = np.random.default_rng(seed)
    kin = rng.uniform(e_min, e_max, n)
    cos_t = rng.uniform(np.cos(np.radians(25)), 1.0, n)
    phi = rng.uniform(0, 2 * np.pi, n)
    sin_t = np.sqrt(1 - cos_t**2)
    d = np.column_stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t])
    start = np.array([0.0, 0.0, 10 * PLANE_PITCH])
    res = detector.simulate(particle_gun(13, kin, n, direction=d, position=tuple(start)), seed)
    length = np.full(n, np.nan)
    for i in range(n):
        ends = []
        for view, first_cell in ((0, res.firstcellx[i]), (1, res.firstcelly[i])):
            row, col = np.nonzero(res.images[i, view])
            if row.size == 0:
                break
            last = row.max()
            plane = res.firstplane[i] + 2 * last + view
            across = (first_cell + col[row == last].mean() + 0.5) * CELL_PITCH - HALF_WIDTH
            ends.append(((plane + 0.5) * PLANE_PITCH, across))
        if len(ends) == 2:
            z_end = max(ends[0][0], ends[1][0])
            length[i] = np.linalg.norm([ends[0][1] - start[0], ends[1][1] - start[1], z_end - start[2]])
    return MuonRange(kinetic_gev=kin, length_cm=length, csda_cm=csda_range_cm(kin * 1000.0))


@dataclass
class ShowerProfile:
    """Mean longitudinal profile of showers: bin centres in X0 and the fraction of pixel sum per X0."""

    t_x0: npt.NDArray[np.float64]
    profile: npt.NDArray[np.float64]
    energy_mev: float
    mean_t_x0: float


def measure_shower_profile(detector: Detector, pdg: int, energy_gev: float, n: int, *, seed: int) -> ShowerProfile:
    """Pixel sum per plane vs depth from the gun start (in X0), averaged and normalised per X0."""
    res = detector.simulate(particle_gun(pdg, energy_gev, n), seed)
    x0 = detector.params.radiation_length_cm
    edges = np.arange(0.0, 20.0 + 1e-9, PLANE_PITCH / x0)
    total = np.zeros(edges.size - 1)
    for i in range(n):
        v, row, col = np.nonzero(res.images[i])
        planes = res.firstplane[i] + 2 * row + v
        depth = ((planes + 0.5) * PLANE_PITCH - GUN_Z0) / x0
        total += np.histogram(depth, bins=edges, weights=res.images[i][v, row, col].astype(float))[0]
    widths = np.diff(edges)
    prof = total / total.sum() / widths
    centres = 0.5 * (edges[1:] + edges[:-1])
    return ShowerProfile(t_x0=centres, profile=prof, energy_mev=energy_gev * 1000.0,
                         mean_t_x0=float(np.sum(prof * widths * centres)))


def measure_mip_values(detector: Detector, n: int, *, seed: int) -> npt.NDArray[np.int64]:
    """Pixel values along 2 GeV muon tracks crossing the window (no Michel, no stopping end)."""
    rng = np.random.default_rng(seed)
    pos = (float(rng.uniform(-600, 600)), float(rng.uniform(-600, 600)), GUN_Z0)
    res = detector.simulate(particle_gun(13, 2.0, n, position=pos), seed)
    vals = [res.images[i, :, :60][res.images[i, :, :60] > 0] for i in range(n)]
    return np.concatenate(vals).astype(np.int64)


def measure_linearity(detector: Detector, energies_gev: npt.ArrayLike, n: int, *,
                      seed: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Mean pixel sum of electron showers at each energy, and the mean visible energy (MeV)."""
    sums, evis = [], []
    for k, e in enumerate(np.asarray(energies_gev, dtype=float)):
        res = detector.simulate(particle_gun(11, e, n, direction=(0.1, 0.05, 1.0)), seed + k)
        sums.append(res.images.reshape(n, -1).sum(axis=1, dtype=np.int64).mean())
        evis.append(res.prong_evis_mev.mean())
    return np.array(sums), np.array(evis)
