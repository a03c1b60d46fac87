"""The event generator: composition, energies, modes, final states, τ decays, FSI and truth.

``Generator(params, seed).generate(n)`` returns a :class:`~nucvn.sim.particles.GeneratedBatch`:
the final-state particles leaving the nucleus (sorted by event; the charged lepton or outgoing
neutrino first, then hadrons) and the per-event truth. Calls on one instance continue one random
stream, so the same ``(params, seed)`` and the same sequence of ``generate`` sizes give identical
output; give each file its own seed to make files independent of the number of workers.

Conventions: the beam is along +z; the vertex is uniform in the detector box; π⁰ are emitted
undecayed (PDG 111) everywhere, the detector decays them; outgoing neutrinos (PDG 12/14/16 and
antineutrinos from τ decays) are in the particle table and the detector ignores them; the τ is
replaced by its prompt decay products. Truth ``mode`` is :class:`nucvn.sim.xsec.GenMode`
(0 QE, 1 RES, 2 DIS, 3 COH, 4 MEC, 5 ν-e elastic, 6 cosmic). Counts ``nproton``, ``npion``,
``npizero``, ``nneutron`` and ``hadenergy`` cover the hadrons from the nucleus after FSI (not τ
daughters); ``hadenergy`` is the kinetic energy of hadrons plus the total energy of π⁰ and
photons, neutrons and antineutrons excluded.

Non-file truth keys (the writer must drop every key not in ``nucvn.data.h5io.META_DTYPES``):
:data:`~nucvn.sim.particles.FS_GROUP_KEY`, ``hadronic_w`` (invariant mass W of the hadronic
system, GeV; NaN without one), ``target_pdg`` (struck nucleon 2212/2112, 0 for a nucleon pair,
1000060120 for coherent, 11 for ν-e, 0 for cosmic) and ``nch_primary`` (charged hadrons produced at
the vertex before FSI, for ⟨n_ch⟩ vs W).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from nucvn.data.h5io import META_DTYPES
from nucvn.sim import portable_math as pm
from nucvn.sim.flux import sample_energy
from nucvn.sim.fsi import apply_pion_fsi
from nucvn.sim.generator_params import COMPOSITION_CLASSES, GeneratorParams
from nucvn.sim.geometry import HALF_WIDTH, LENGTH
from nucvn.sim.hadronise import Hadroniser
from nucvn.sim.interactions import (
    W_MIN,
    ModeFinalState,
    coherent,
    deep_inelastic,
    quasi_elastic,
    resonant,
    two_nucleon,
)
from nucvn.sim.masses import LEPTON_MASS, M_CARBON, M_NUCLEON, M_PION, masses_of
from nucvn.sim.particles import FS_GROUP_KEY, PARTICLE_DTYPE, GeneratedBatch
from nucvn.sim.sources import cosmic_rays, nu_e_elastic
from nucvn.sim.tau import decay_taus
from nucvn.sim.xsec import NU_MODES, GenMode, sample_modes

__all__ = ["Generator", "NON_FILE_KEYS"]

NON_FILE_KEYS: tuple[str, ...] = (FS_GROUP_KEY, "hadronic_w", "target_pdg", "nch_primary")
"""Truth keys of a batch that are not file keys (dropped by the writer)."""

# Per class: outgoing lepton PDG, neutrino PDG, CC flag, interaction-code offset, final-state group.
_NU_CLASSES = {
    "numu_cc": (13, 14, True, 0, 0),
    "nue_cc": (11, 12, True, 4, 1),
    "nutau_cc": (15, 16, True, 8, 2),
    "nc": (14, 14, False, 13, 2),
}
_CLASS_INDEX = {name: i for i, name in enumerate(COMPOSITION_CLASSES)}
_CC_CODE = {GenMode.QE: 0, GenMode.RES: 1, GenMode.DIS: 2, GenMode.COH: 3, GenMode.MEC: 3}
_TAG_LEPTON, _TAG_HADRON, _TAG_TAU = 0, 1, 2


def _open_modes(
    energy: npt.NDArray[np.float64], m_lep: npt.NDArray[np.float64], params: GeneratorParams
) -> npt.NDArray[np.bool_]:
    """(n, 5) mask of modes open for a free nucleon (pair, nucleus) at rest, in NU_MODES order."""
    root_s = {
        GenMode.QE: np.sqrt(M_NUCLEON**2 + 2 * M_NUCLEON * energy) - M_NUCLEON,
        GenMode.RES: np.sqrt(M_NUCLEON**2 + 2 * M_NUCLEON * energy) - M_NUCLEON,
        GenMode.DIS: np.sqrt(M_NUCLEON**2 + 2 * M_NUCLEON * energy) - M_NUCLEON,
        GenMode.COH: np.sqrt(M_CARBON**2 + 2 * M_CARBON * energy) - M_CARBON,
        GenMode.MEC: np.sqrt(4 * M_NUCLEON**2 + 4 * M_NUCLEON * energy) - 2 * M_NUCLEON,
    }
    need = {
        GenMode.QE: W_MIN["qe"] - M_NUCLEON,
        GenMode.RES: W_MIN["res"] - M_NUCLEON,
        GenMode.DIS: params.w_cut_gev + 0.05 - M_NUCLEON,
        GenMode.COH: M_PION + 0.01,
        GenMode.MEC: W_MIN["mec"] - 2 * M_NUCLEON,
    }
    return np.stack([root_s[m] > m_lep + need[m] for m in NU_MODES], axis=1)


class Generator:
    """NOvA-like neutrino (and cosmic) event generator; see the module docstring."""

    def __init__(self, params: GeneratorParams, seed: int) -> None:
        self.params = params
        self.seed = int(seed)
        self._rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x4E55]))
        self._hadroniser = Hadroniser(params, self.seed)

    def reseed(self, seed: int) -> None:
        """Restart the generator's random streams from ``seed`` (numpy's, and Pythia's per string),
        keeping what is costly to build (the Pythia instance)."""
        self.seed = int(seed)
        self._rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x4E55]))
        self._hadroniser.reseed(self.seed)

    def generate(self, n_events: int) -> GeneratedBatch:
        """Generate ``n_events`` events of the configured composition."""
        rng, p = self._rng, self.params
        n = int(n_events)
        frac = np.array([p.composition[c] for c in COMPOSITION_CLASSES])
        cls = rng.choice(len(frac), size=n, p=frac / frac.sum())
        t = _Truth(n)
        t.vtx[:] = np.column_stack(
            [
                rng.uniform(-HALF_WIDTH, HALF_WIDTH, n),
                rng.uniform(-HALF_WIDTH, HALF_WIDTH, n),
                rng.uniform(0, LENGTH, n),
            ]
        )
        parts = _Particles()
        for name, (lep_pdg, nu_pdg, iscc, code, group) in _NU_CLASSES.items():
            idx = np.flatnonzero(cls == _CLASS_INDEX[name])
            if idx.size:
                self._neutrino_nucleus(idx, name, lep_pdg, nu_pdg, iscc, code, group, t, parts)
        idx = np.flatnonzero(cls == _CLASS_INDEX["nue_elastic"])
        if idx.size:
            energy = sample_energy(rng, idx.size, p)
            electron, nu_out = nu_e_elastic(rng, energy, p)
            t.set(idx, nuenergy=energy, lepenergy=nu_out[:, 3], pdg=14, iscc=0, mode=GenMode.NUE_ELASTIC,
                  interaction=12, group=2, target=11)
            parts.add(idx, np.full(idx.size, 14), nu_out, _TAG_LEPTON)
            parts.add(idx, np.full(idx.size, 11), electron, _TAG_LEPTON)
        idx = np.flatnonzero(cls == _CLASS_INDEX["cosmic"])
        if idx.size:
            cos = cosmic_rays(rng, idx.size, p)
            t.vtx[idx] = cos.entry
            t.set(idx, nuenergy=cos.p4[:, 3], lepenergy=cos.p4[:, 3], pdg=0, iscc=0, mode=GenMode.COSMIC,
                  interaction=14, group=48, target=0)
            parts.add(idx, cos.pdg, cos.p4, _TAG_LEPTON)
        self._parent(cls, t)
        return _assemble(rng, n, t, parts, p)

    def _neutrino_nucleus(
        self,
        idx: npt.NDArray[np.int64],
        name: str,
        lep_pdg: int,
        nu_pdg: int,
        iscc: bool,
        code: int,
        group: int,
        t: _Truth,
        parts: _Particles,
    ) -> None:
        rng, p = self._rng, self.params
        energy = sample_energy(rng, idx.size, p, p.nutau_threshold_gev if name == "nutau_cc" else None)
        m_lep = np.full(idx.size, LEPTON_MASS[lep_pdg])
        cc = np.full(idx.size, iscc)
        modes = sample_modes(rng, energy, p, _open_modes(energy, m_lep, p))
        t.set(idx, nuenergy=energy, pdg=nu_pdg, iscc=int(iscc), mode=modes, group=group)
        for mode in NU_MODES:
            sel = np.flatnonzero(modes == mode)
            if sel.size == 0:
                continue
            ev = idx[sel]
            args = (rng, energy[sel], m_lep[sel], cc[sel], p)
            fs: ModeFinalState
            if mode == GenMode.QE:
                fs = quasi_elastic(*args)
            elif mode == GenMode.RES:
                fs = resonant(*args)
            elif mode == GenMode.DIS:
                fs = deep_inelastic(*args, self._hadroniser)
            elif mode == GenMode.COH:
                fs = coherent(*args)
            else:
                fs = two_nucleon(*args)
            t.set(ev, lepenergy=fs.lepton[:, 3], interaction=(code + _CC_CODE[mode]) if iscc else code,
                  w=fs.w, target=fs.target_pdg, nch=fs.nch_primary)
            if lep_pdg == 15:
                taus = decay_taus(rng, fs.lepton, p)
                t.group[ev] = taus.group
                parts.add(ev[taus.parent], taus.pdg, taus.p4, _TAG_TAU)
            else:
                parts.add(ev, np.full(sel.size, lep_pdg), fs.lepton, _TAG_LEPTON)
            tag = _TAG_LEPTON if mode == GenMode.COH else _TAG_HADRON  # coherent pions see no FSI
            parts.add(ev[fs.hadron_event], fs.hadron_pdg, fs.hadron_p4, tag, counted=True)

    def _parent(self, cls: npt.NDArray[np.int64], t: _Truth) -> None:
        """Beam parent: kaon share rising with E (logistic), else pion (νμ) or muon (νe)."""
        p = self.params
        nue = cls == _CLASS_INDEX["nue_cc"]
        half = np.where(nue, p.parent_nue_kaon_half_gev, p.parent_kaon_half_gev)
        width = np.where(nue, p.parent_nue_kaon_width_gev, p.parent_kaon_width_gev)
        kaon = self._rng.random(len(cls)) < 1.0 / (1.0 + pm.exp(-(t.nuenergy - half) / width))
        t.parent[:] = np.where(kaon, 1, np.where(nue, 2, 0))
        t.parent[cls == _CLASS_INDEX["cosmic"]] = 3


class _Truth:
    """Per-event truth being filled."""

    def __init__(self, n: int) -> None:
        self.vtx = np.zeros((n, 3))
        self.nuenergy = np.zeros(n)
        self.lepenergy = np.zeros(n)
        self.pdg = np.zeros(n, np.int64)
        self.iscc = np.zeros(n, np.int64)
        self.mode = np.zeros(n, np.int64)
        self.interaction = np.full(n, 15, np.int64)
        self.group = np.full(n, 49, np.int64)
        self.parent = np.zeros(n, np.int64)
        self.w = np.full(n, np.nan)
        self.target = np.zeros(n, np.int64)
        self.nch = np.zeros(n, np.int64)

    def set(self, idx: npt.NDArray[np.int64], **values: object) -> None:
        for key, value in values.items():
            getattr(self, key)[idx] = value


class _Particles:
    """Particle rows being collected: event, PDG, four-momentum, tag, counted-hadron flag."""

    def __init__(self) -> None:
        self.chunks: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64], int]] = []

    def add(self, event: npt.NDArray[np.int64], pdg: npt.NDArray[np.int64], p4: npt.NDArray[np.float64],
            tag: int, counted: bool = False) -> None:
        self.chunks.append((np.asarray(event, np.int64), np.asarray(pdg, np.int64), p4, tag + (8 if counted else 0)))


def _assemble(rng: np.random.Generator, n: int, t: _Truth, parts: _Particles, p: GeneratorParams) -> GeneratedBatch:
    """Apply FSI, count hadrons, fill the particle table and the truth dict."""
    if parts.chunks:
        event = np.concatenate([c[0] for c in parts.chunks])
        pdg = np.concatenate([c[1] for c in parts.chunks])
        p4 = np.concatenate([c[2] for c in parts.chunks])
        tag = np.concatenate([np.full(len(c[0]), c[3]) for c in parts.chunks])
    else:
        event, pdg, tag, p4 = (np.zeros(0, np.int64),) * 3 + (np.zeros((0, 4)),)
    counted = tag >= 8
    fsi_ok = counted & ((tag & 7) == _TAG_HADRON)
    pdg, p4, src = apply_pion_fsi(rng, pdg, p4, fsi_ok, p)
    event, counted = event[src], counted[src]
    order = np.argsort(event, kind="stable")
    event, pdg, p4, counted = event[order], pdg[order], p4[order], counted[order]

    def count(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
        return np.bincount(event[mask & counted], minlength=n)

    kinetic = p4[:, 3] - masses_of(pdg)
    visible = np.where(np.isin(pdg, (111, 22)), p4[:, 3], np.where(np.abs(pdg) == 2112, 0.0, kinetic))
    visible = np.where(np.isin(np.abs(pdg), (12, 14, 16)), 0.0, visible)
    hadenergy = np.bincount(event[counted], weights=visible[counted], minlength=n)

    table = np.zeros(len(pdg), dtype=PARTICLE_DTYPE)
    table["event"], table["pdg"] = event, pdg
    for j, key in enumerate(("px", "py", "pz", "e")):
        table[key] = p4[:, j]
    for j, key in enumerate(("x", "y", "z")):
        table[key] = t.vtx[event, j]

    inel = np.where(t.nuenergy > 0, 1.0 - t.lepenergy / np.where(t.nuenergy > 0, t.nuenergy, 1.0), 0.0)
    values = {
        "interaction": t.interaction,
        "nuenergy": t.nuenergy,
        "lepenergy": np.minimum(t.lepenergy, t.nuenergy),
        "pdg": t.pdg,
        "iscc": t.iscc,
        "mode": t.mode,
        "hadenergy": hadenergy,
        "inelasticity": np.clip(inel, 0.0, 1.0),
        "nproton": count(pdg == 2212),
        "npion": count(np.abs(pdg) == 211),
        "npizero": count(pdg == 111),
        "nneutron": count(pdg == 2112),
        "parent": t.parent,
        "vtxx": t.vtx[:, 0],
        "vtxy": t.vtx[:, 1],
        "vtxz": t.vtx[:, 2],
    }
    truth: dict[str, npt.NDArray[np.generic]] = {k: np.asarray(v).astype(META_DTYPES[k]) for k, v in values.items()}
    truth[FS_GROUP_KEY] = t.group.astype(np.uint8)
    truth["hadronic_w"] = t.w
    truth["target_pdg"] = t.target.astype(np.int32)
    truth["nch_primary"] = t.nch.astype(np.int16)
    return GeneratedBatch(n_events=n, particles=table, truth=truth)
