"""The detector half of the fast simulation: generated particles → 8-bit pixel maps + prong truth.

:class:`Detector` turns a :class:`~nucvn.sim.particles.GeneratedBatch` into images
``uint8 (n, 2, 100, 80)`` in ``[view][plane][cell]`` order, the window origin of each event and,
per final-state prong, its category (track/shower), visible energy and hit cells in the window,
from which :meth:`DetectorResult.counts` derives the ``finalstate``/``finalstateprong`` counts.
One numba kernel runs the whole chain per event (transport → window → light → digitisation).

Random numbers come from numba's one global generator, reseeded twice per event from a hash of
(batch seed, event index, stream) (:func:`event_seed`): stream 0 drives the transport (hadronic
interactions, multiple scattering, shower fluctuations), stream 1 the readout (photo-electron
statistics, noise, noise hits). Numba's Poisson draws a mean-dependent number of uniforms, so with
one shared stream a change of the light yield, the attenuation or the noise-hit rate would
reshuffle the transport of every later event; with these streams no readout parameter can change
any event's transport, and a detector systematic (e.g. +5 % calibration) is simulated on exactly
the same particles and deposits as the nominal sample. A batch is still reproducible from its seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numba
import numpy as np
import numpy.typing as npt
from particle import Particle
from particle.particle import ParticleNotFound

import nucvn.sim.kernel_cache  # noqa: F401  (sets numba's cache directory before any kernel is defined)
from nucvn.core.events import IMAGE_SHAPE
from nucvn.sim import portable_math as pm
from nucvn.sim import propagate as pr
from nucvn.sim.detector_params import MUON_RANGE_CM, MUON_RANGE_T_MEV, DetectorParams
from nucvn.sim.geometry import CELL_PITCH, HALF_WIDTH, N_CELLS_DET, PLANE_PITCH
from nucvn.sim.particles import GeneratedBatch
from nucvn.sim.readout import digitise
from nucvn.sim.window import choose_window, fill_window

__all__ = ["Detector", "DetectorResult", "particle_kind", "kernel_masses", "event_seed", "STREAM_TRANSPORT",
           "STREAM_READOUT"]

_BUFFER = 1 << 16
_STACK = 4096
_NEUTRINOS = frozenset({12, 14, 16, 18})
STREAM_TRANSPORT = 0
"""Stream index of :func:`event_seed` for an event's particle transport."""
STREAM_READOUT = 1
"""Stream index of :func:`event_seed` for an event's light and digitisation."""
_SM_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_SM_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_SM_MUL2 = np.uint64(0x94D049BB133111EB)
_MASK32 = np.uint64(0xFFFFFFFF)


@numba.njit(cache=True)
def _splitmix64(z: np.uint64) -> np.uint64:
    """One splitmix64 step (Steele, Lea & Flood, OOPSLA 2014): a bijective 64-bit mixer. All
    operands are uint64, so the arithmetic wraps modulo 2⁶⁴ identically on every machine."""
    z = z + _SM_GAMMA
    z = (z ^ (z >> np.uint64(30))) * _SM_MUL1
    z = (z ^ (z >> np.uint64(27))) * _SM_MUL2
    return z ^ (z >> np.uint64(31))


@numba.njit(cache=True)
def event_seed(seed: int, event: int, stream: int) -> int:
    """Seed in [0, 2³²) of random stream ``stream`` of event ``event`` in a batch seeded ``seed``
    (all three non-negative): splitmix64 chained over the three, low 32 bits."""
    h = _splitmix64(np.uint64(seed))
    h = _splitmix64(h ^ np.uint64(event))
    h = _splitmix64(h ^ np.uint64(stream))
    return np.int64(h & _MASK32)


@cache
def _lookup(pdg: int) -> tuple[float, float] | None:
    try:
        p = Particle.from_pdgid(pdg)
    except (ParticleNotFound, ValueError):
        return None
    if p.mass is None or p.charge is None:
        return None
    return float(p.mass), float(p.charge)


@cache
def particle_kind(pdg: int) -> tuple[int, int, float, int]:
    """(transport kind, charge sign, mass in MeV, prong category) of a PDG code.

    Masses and charges come from the ``particle`` package. Muons, charged mesons (π±, K±, ...),
    charged baryons, neutral hadrons, e, γ and π⁰ have their own transport; neutrinos, nuclei
    and unknown codes are invisible. Tracks for the final-state counts are μ, π± and p; showers
    e and γ; a π⁰ counts through its two photons.
    """
    a = abs(pdg)
    if a in _NEUTRINOS:
        return pr.KIND_INVISIBLE, 0, 0.0, pr.CAT_NONE
    info = _lookup(pdg)
    if info is None:
        return pr.KIND_INVISIBLE, 0, 0.0, pr.CAT_NONE
    mass, charge = info
    q = int(np.sign(charge))
    if a == 13:
        return pr.KIND_MUON, q, mass, pr.CAT_TRACK
    if a == 11:
        return pr.KIND_ELECTRON, q, mass, pr.CAT_SHOWER
    if a == 22:
        return pr.KIND_PHOTON, 0, 0.0, pr.CAT_SHOWER
    if a == 111:
        return pr.KIND_PI0, 0, mass, pr.CAT_PI0
    if a == 2112:
        return pr.KIND_NEUTRON, 0, mass, pr.CAT_NONE
    if a > 1_000_000_000 or a < 100:
        return pr.KIND_INVISIBLE, 0, 0.0, pr.CAT_NONE
    baryon = (a // 1000) % 10 != 0
    cat = pr.CAT_TRACK if a in (211, 2212) else pr.CAT_NONE
    if q == 0:
        return pr.KIND_NEUTRAL_HADRON, 0, mass, pr.CAT_NONE
    return (pr.KIND_PROTON if baryon else pr.KIND_PION), q, mass, cat


def kernel_masses() -> npt.NDArray[np.float64]:
    """Masses (MeV) indexed by ``propagate.M_*``, from the ``particle`` package."""
    out = np.zeros(5)
    for idx, pdg in ((pr.M_MU, 13), (pr.M_PI, 211), (pr.M_PI0, 111), (pr.M_P, 2212), (pr.M_N, 2112)):
        out[idx] = float(Particle.from_pdgid(pdg).mass)
    return out


@dataclass
class DetectorResult:
    """Detector output for a batch; prong arrays have one entry per final-state prong."""

    images: npt.NDArray[np.uint8]
    firstplane: npt.NDArray[np.int32]
    firstcellx: npt.NDArray[np.int32]
    firstcelly: npt.NDArray[np.int32]
    prong_event: npt.NDArray[np.int64]
    prong_category: npt.NDArray[np.int64]
    prong_evis_mev: npt.NDArray[np.float64]
    prong_cells: npt.NDArray[np.int64]

    def counts(self, n_events: int, *, min_visible_mev: float,
               prong_min_cells: int = 0) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """(tracks, showers) per event: prongs with at least ``min_visible_mev`` visible energy
        and (for the reconstructable-prong rule) ``prong_min_cells`` hit cells in the window."""
        ok = (self.prong_evis_mev >= min_visible_mev) & (self.prong_cells >= prong_min_cells)
        tracks = np.bincount(self.prong_event[ok & (self.prong_category == pr.CAT_TRACK)], minlength=n_events)
        showers = np.bincount(self.prong_event[ok & (self.prong_category == pr.CAT_SHOWER)], minlength=n_events)
        return tracks.astype(np.int64), showers.astype(np.int64)


@numba.njit(cache=True)
def _run(
    starts: npt.NDArray[np.int64], kinds: npt.NDArray[np.int64], charges: npt.NDArray[np.int64],
    fl: npt.NDArray[np.float64], vtx: npt.NDArray[np.int64],
    prong_cat: npt.NDArray[np.int64], prong_event: npt.NDArray[np.int64], nprong: npt.NDArray[np.int64],
    P: npt.NDArray[np.float64], masses: npt.NDArray[np.float64], lt: npt.NDArray[np.float64],
    lr: npt.NDArray[np.float64], seed: int, images: npt.NDArray[np.uint8], window: npt.NDArray[np.int32],
    prong_evis: npt.NDArray[np.float64], prong_cells: npt.NDArray[np.int64],
) -> None:
    sf = np.empty((_STACK, 8))
    si = np.empty((_STACK, 3), dtype=np.int64)
    ns = np.zeros(1, dtype=np.int64)
    buf_i = np.empty((_BUFFER, 3), dtype=np.int32)
    buf_f = np.empty((_BUFFER, 2))
    nbuf = np.zeros(1, dtype=np.int64)
    pe_img = np.zeros((images.shape[1], images.shape[2], images.shape[3]))
    for ev in range(starts.shape[0] - 1):
        nbuf[0] = 0
        ns[0] = 0
        np.random.seed(event_seed(seed, ev, STREAM_TRANSPORT))
        for j in range(starts[ev + 1] - 1, starts[ev] - 1, -1):
            pr.push(sf, si, ns, kinds[j], charges[j], j, fl[j, 0], fl[j, 1], fl[j, 2], fl[j, 3], fl[j, 4], fl[j, 5],
                    fl[j, 6], fl[j, 7])
        pr.transport_event(sf, si, ns, prong_cat, prong_event, nprong, ev, P, masses, lt, lr, buf_i, buf_f, nbuf)
        n = nbuf[0]
        fp, cx, cy = choose_window(buf_i, buf_f, n, P, vtx[ev, 0], vtx[ev, 1], vtx[ev, 2])
        window[ev, 0] = fp
        window[ev, 1] = cx
        window[ev, 2] = cy
        fill_window(buf_i, buf_f, n, P, fp, cx, cy, pe_img, prong_evis, prong_cells)
        np.random.seed(event_seed(seed, ev, STREAM_READOUT))
        digitise(pe_img, images[ev], P)


class Detector:
    """The parametric detector (docs/simulation.md) with fixed :class:`DetectorParams`."""

    def __init__(self, params: DetectorParams | None = None) -> None:
        self.params = params or DetectorParams()
        self._P = self.params.kernel_array()
        self._masses = kernel_masses()
        self._lt = np.asarray(pm.log(MUON_RANGE_T_MEV))
        self._lr = np.asarray(pm.log(MUON_RANGE_CM))

    def simulate(self, batch: GeneratedBatch, seed: int) -> DetectorResult:
        """Run the detector on ``batch`` (particles sorted by event) with batch seed ``seed`` (an
        integer, taken modulo 2³²); each event's transport and readout streams derive from it and
        the event's index in the batch (:func:`event_seed`)."""
        n = int(batch.n_events)
        parts = batch.particles
        ev = parts["event"].astype(np.int64)
        if ev.size and (np.any(np.diff(ev) < 0) or ev[0] < 0 or ev[-1] >= n):
            raise ValueError("GeneratedBatch.particles must be sorted by event with indices in [0, n_events)")
        starts = np.searchsorted(ev, np.arange(n + 1)).astype(np.int64)
        info = [particle_kind(int(p)) for p in parts["pdg"]]
        kinds = np.array([i[0] for i in info], dtype=np.int64)
        charges = np.array([i[1] for i in info], dtype=np.int64)
        mass = np.array([i[2] for i in info], dtype=np.float64)
        cat = np.array([i[3] for i in info], dtype=np.int64)
        pvec = np.stack([parts["px"], parts["py"], parts["pz"]], axis=1) * 1000.0
        pabs = np.linalg.norm(pvec, axis=1)
        direction = np.divide(pvec, pabs[:, None], out=np.tile([0.0, 0.0, 1.0], (len(parts), 1)),
                              where=pabs[:, None] > 0)
        kinetic = np.sqrt(pabs**2 + mass**2) - mass
        fl = np.column_stack([parts["x"], parts["y"], parts["z"], direction, kinetic, mass]).astype(np.float64)
        vtx = np.zeros((n, 3), dtype=np.int64)
        has = starts[1:] > starts[:-1]
        first = starts[:-1][has]
        vtx[has, 0] = (parts["z"][first] / PLANE_PITCH).astype(np.int64)
        vtx[has, 1] = ((parts["x"][first] + HALF_WIDTH) / CELL_PITCH).astype(np.int64)
        vtx[has, 2] = ((parts["y"][first] + HALF_WIDTH) / CELL_PITCH).astype(np.int64)
        vtx[~has, 1:] = N_CELLS_DET // 2
        n_pi0 = int(np.count_nonzero(cat == pr.CAT_PI0))
        cap = len(parts) + 2 * n_pi0
        prong_cat = np.zeros(cap, dtype=np.int64)
        prong_cat[: len(parts)] = cat
        prong_event = np.zeros(cap, dtype=np.int64)
        prong_event[: len(parts)] = ev
        nprong = np.array([len(parts)], dtype=np.int64)
        images = np.zeros((n, *IMAGE_SHAPE), dtype=np.uint8)
        window = np.zeros((n, 3), dtype=np.int32)
        prong_evis = np.zeros(cap)
        prong_cells = np.zeros(cap, dtype=np.int64)
        _run(starts, kinds, charges, fl, vtx, prong_cat, prong_event, nprong, self._P, self._masses,
             self._lt, self._lr, int(seed) % (1 << 32), images, window, prong_evis, prong_cells)  # fmt: skip
        m = int(nprong[0])
        return DetectorResult(
            images=images,
            firstplane=window[:, 0].copy(),
            firstcellx=window[:, 1].copy(),
            firstcelly=window[:, 2].copy(),
            prong_event=prong_event[:m],
            prong_category=prong_cat[:m],
            prong_evis_mev=prong_evis[:m],
            prong_cells=prong_cells[:m],
        )
