"""Hadronisation of DIS hadronic systems with the Pythia 8 Lund string (docs/simulation.md).

Pythia is not used as a neutrino generator (its DIS process fails at NOvA energies); it only
fragments a colour string built here: the struck quark (status 23, colour 101) along +z and the
target remnant diquark (status 23, anticolour 101) along -z, back to back with invariant mass W,
with the system entry ``event[0]`` set to W, then ``forceHadronLevel()`` (Sjöstrand et al.,
Comput. Phys. Commun. 191 (2015) 159). The final-state hadrons are rotated so that +z points along
the momentum transfer q in the rest frame of the hadronic system and boosted to the lab.

Flavours conserve charge for the target nucleon: CC ν scatters off a d quark into a u quark
(p = uud → u + uu, n = udd → u + ud); NC keeps the struck quark, chosen by valence counting
(p: u + ud or d + uu; n: d + ud or u + dd). Conventions: π⁰ is kept undecayed
(``111:mayDecay = off``) so that the detector decays it and ``npizero`` is a plain count; K⁰S,
η, hyperons and resonances decay in Pythia; π±, K±, K⁰L, n, μ are left stable (Pythia defaults).
The Lund fragmentation parameters a, b are tuned so that ⟨n_ch⟩ of νp systems follows the
bubble-chamber fit 0.40 + 1.42 ln W² (within ~10 % for W = 2-10 GeV).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nucvn.sim.generator_params import GeneratorParams
from nucvn.sim.lorentz import Vec4, boost, boost_to_rest, orient

__all__ = ["HadronisedSystems", "Hadroniser", "string_flavours", "pythia_seed"]

_UU, _UD, _DD = 2203, 2101, 1103


def pythia_seed(seed: int, string: int = 0) -> int:
    """Pythia seed (1..900 000 000) of string ``string`` fragmented under generator seed ``seed``."""
    state = np.random.SeedSequence([int(seed), 0x5079, int(string)]).generate_state(1, dtype=np.uint64)[0]
    return int(state % 900_000_000) + 1


def string_flavours(
    rng: np.random.Generator, target_pdg: npt.NDArray[np.int64], iscc: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Struck-quark and remnant-diquark PDG codes conserving the charge of ``ν + nucleon``."""
    n = len(target_pdg)
    proton = target_pdg == 2212
    quark = np.full(n, 2, dtype=np.int64)
    diquark = np.where(proton, _UU, _UD).astype(np.int64)
    nc = ~iscc
    struck_minority = rng.random(n) < 1.0 / 3.0
    # NC on p: u (2/3) -> u + ud, d (1/3) -> d + uu.  NC on n: d (2/3) -> d + ud, u (1/3) -> u + dd.
    nc_p = nc & proton
    nc_n = nc & ~proton
    quark[nc_p] = np.where(struck_minority[nc_p], 1, 2)
    diquark[nc_p] = np.where(struck_minority[nc_p], _UU, _UD)
    quark[nc_n] = np.where(struck_minority[nc_n], 2, 1)
    diquark[nc_n] = np.where(struck_minority[nc_n], _DD, _UD)
    return quark, diquark


@dataclass
class HadronisedSystems:
    """Hadrons of the systems that Pythia fragmented: ``system`` indexes the input arrays."""

    system: npt.NDArray[np.int64]
    pdg: npt.NDArray[np.int64]
    p4: Vec4
    ok: npt.NDArray[np.bool_]
    """Per input system: True if Pythia succeeded (failed systems need a fallback decay)."""


class Hadroniser:
    """A Pythia 8 instance configured for string fragmentation only, created on first use.

    Every string gets its own Pythia random stream, seeded from ``(seed, n)`` for the n-th string
    since the last :meth:`reseed` (54 µs per reseed), so the hadrons of one event never depend on
    how many random numbers Pythia drew for another.
    """

    def __init__(self, params: GeneratorParams, seed: int, retries: int = 3) -> None:
        self._params = params
        self._seed = pythia_seed(seed)
        self._retries = retries
        self._pythia: object | None = None
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        """Derive the streams of the following strings from ``seed``, counting them from 0."""
        self._base, self._strings = int(seed), 0

    def _init(self) -> object:
        import pythia8mc

        pythia = pythia8mc.Pythia("", False)
        for line in (
            "ProcessLevel:all = off",
            "Print:quiet = on",
            "Random:setSeed = on",
            f"Random:seed = {self._seed}",
            "111:mayDecay = off",
            f"StringZ:aLund = {self._params.pythia_alund}",
            f"StringZ:bLund = {self._params.pythia_blund}",
        ):
            if not pythia.readString(line):
                raise RuntimeError(f"Pythia rejected setting {line!r}")
        if not pythia.init():
            raise RuntimeError("Pythia initialisation failed")
        self._pythia = pythia
        return pythia

    def hadronise(
        self,
        w: npt.NDArray[np.float64],
        quark: npt.NDArray[np.int64],
        diquark: npt.NDArray[np.int64],
        system: Vec4,
        q: Vec4,
    ) -> HadronisedSystems:
        """Fragment strings of mass ``w`` and put the hadrons in the lab.

        ``system`` are the lab four-momenta of the hadronic systems (mass ``w``), ``q`` the lab
        momentum transfers; the quark direction is q's direction in the system's rest frame.
        """
        pythia = self._pythia if self._pythia is not None else self._init()
        event = pythia.event  # type: ignore[attr-defined]
        pdata = pythia.particleData  # type: ignore[attr-defined]
        force = pythia.forceHadronLevel  # type: ignore[attr-defined]
        n = len(w)
        ok = np.zeros(n, dtype=bool)
        sys_idx: list[int] = []
        ids: list[int] = []
        mom: list[tuple[float, float, float, float]] = []
        for i in range(n):
            wi = float(w[i])
            mq, mdq = pdata.m0(int(quark[i])), pdata.m0(int(diquark[i]))
            if wi <= mq + mdq:
                continue
            p = math.sqrt((wi * wi - (mq + mdq) ** 2) * (wi * wi - (mq - mdq) ** 2)) / (2 * wi)
            pythia.rndm.init(pythia_seed(self._base, self._strings))  # type: ignore[attr-defined]
            self._strings += 1
            for _ in range(self._retries):
                event.reset()
                event.append(int(quark[i]), 23, 101, 0, 0.0, 0.0, p, math.sqrt(p * p + mq * mq), mq)
                event.append(int(diquark[i]), 23, 0, 101, 0.0, 0.0, -p, math.sqrt(p * p + mdq * mdq), mdq)
                event[0].e(wi)
                event[0].m(wi)
                if force():
                    ok[i] = True
                    break
            if not ok[i]:
                continue
            for j in range(event.size()):
                part = event[j]
                if part.isFinal():
                    sys_idx.append(i)
                    ids.append(part.id())
                    mom.append((part.px(), part.py(), part.pz(), part.e()))
        system_arr = np.asarray(sys_idx, dtype=np.int64)
        p4 = np.asarray(mom, dtype=np.float64).reshape(-1, 4)
        if len(p4):
            axis = boost_to_rest(q, system)[:, :3]
            p4[:, :3] = orient(p4[:, :3], axis[system_arr])
            p4 = boost(p4, system[system_arr, :3] / system[system_arr, 3:4])
        return HadronisedSystems(system_arr, np.asarray(ids, dtype=np.int64), p4, ok)
