"""Enumerations and the one definition of every derived label (docs/format.md).

Everything here is vectorised over numpy arrays and takes the raw codes of the event files
(``neutrino/interaction``, ``neutrino/finalstate``, energies). No other module defines a label.

Interaction codes follow NOvA's ``rec.training.trainingdata`` enumeration (0-15, with 16 =
``kNIntType`` a count, never a label). Final-state codes are ``16*f + 4*t + s`` with f the flavour
group (0 νμ CC, 1 νe CC, 2 NC), t the number of tracks and s the number of showers (each capped at
3 = "3 or more"), then 48 = cosmic and 49 = other.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "N_VIEWS",
    "N_PLANES",
    "N_CELLS",
    "N_PIXELS",
    "IMAGE_SHAPE",
    "Interaction",
    "N_INTERACTION",
    "Flavour",
    "Mode",
    "FS_COSMIC",
    "FS_OTHER",
    "N_FINALSTATE",
    "numu_cc",
    "flavour",
    "mode",
    "lepton_fraction",
    "inelasticity",
    "finalstate_code",
    "finalstate_group",
    "n_tracks",
    "n_showers",
    "pack_particles",
    "unpack_particles",
    "LABELS",
    "label",
    "LabelName",
]

N_VIEWS = 2
N_PLANES = 100
N_CELLS = 80
N_PIXELS = N_VIEWS * N_PLANES * N_CELLS
IMAGE_SHAPE = (N_VIEWS, N_PLANES, N_CELLS)
"""One event as ``[view][plane][cell]``: view 0 is X-Z, view 1 is Y-Z (NOvA's order)."""


class Interaction(IntEnum):
    """Interaction codes of the ``interaction`` dataset."""

    NUMU_CC_QE = 0
    NUMU_CC_RES = 1
    NUMU_CC_DIS = 2
    NUMU_CC_OTHER = 3
    NUE_CC_QE = 4
    NUE_CC_RES = 5
    NUE_CC_DIS = 6
    NUE_CC_OTHER = 7
    NUTAU_CC_QE = 8
    NUTAU_CC_RES = 9
    NUTAU_CC_DIS = 10
    NUTAU_CC_OTHER = 11
    NUE_ELASTIC = 12
    NC = 13
    COSMIC = 14
    OTHER = 15


N_INTERACTION = 16
"""``kNIntType``: the number of interaction codes; a file holding it (or more) is invalid."""


class Flavour(IntEnum):
    """Flavour classes; interaction 15 ("other") has none and maps to -1."""

    NUMU_CC = 0
    NUE_CC = 1
    NUTAU_CC = 2
    NC = 3
    COSMIC = 4


class Mode(IntEnum):
    """Interaction modes; cosmic and "other" have none and map to -1."""

    QE = 0
    RES = 1
    DIS = 2
    OTHER = 3
    NC = 4


FS_COSMIC = 48
FS_OTHER = 49
N_FINALSTATE = 50
"""Final-state ``kNFStType``: a count, never a label."""

IntArray = npt.NDArray[np.integer]
FloatArray = npt.NDArray[np.floating]


def _codes(interaction: npt.ArrayLike) -> npt.NDArray[np.int64]:
    return np.asarray(interaction, dtype=np.int64).reshape(-1)


def numu_cc(interaction: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Task-1 signal: interaction code in {0, 1, 2, 3} (νμ CC of any mode)."""
    c = _codes(interaction)
    return (c >= 0) & (c <= 3)


_FLAVOUR_OF_CODE = np.array([0] * 4 + [1] * 4 + [2] * 4 + [3, 3, 4, -1], dtype=np.int64)
_MODE_OF_CODE = np.array([0, 1, 2, 3] * 3 + [4, 4, -1, -1], dtype=np.int64)


def _lookup(table: npt.NDArray[np.int64], interaction: npt.ArrayLike) -> npt.NDArray[np.int64]:
    c = _codes(interaction)
    out = np.full(c.shape, -1, dtype=np.int64)
    ok = (c >= 0) & (c < N_INTERACTION)
    out[ok] = table[c[ok]]
    return out


def flavour(interaction: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """:class:`Flavour` of each event: νμ CC (0-3), νe CC (4-7), ντ CC (8-11), NC (12, 13),
    cosmic (14); -1 for "other" (15) and invalid codes, which are excluded from flavour tasks."""
    return _lookup(_FLAVOUR_OF_CODE, interaction)


def mode(interaction: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """:class:`Mode` of each event: for CC the code modulo 4 (QE, RES, DIS, other), NC for 12 and
    13, -1 for cosmic, "other" and invalid codes."""
    return _lookup(_MODE_OF_CODE, interaction)


def lepton_fraction(lepenergy: npt.ArrayLike, nuenergy: npt.ArrayLike) -> FloatArray:
    """``lepenergy / nuenergy`` (the brief's "y"); NaN where the neutrino energy is not positive.

    Note that the inelasticity is ``1 - lepton_fraction`` (:func:`inelasticity`).
    """
    lep = np.asarray(lepenergy, dtype=np.float64).reshape(-1)
    nu = np.asarray(nuenergy, dtype=np.float64).reshape(-1)
    out = np.full(nu.shape, np.nan)
    ok = nu > 0
    out[ok] = lep[ok] / nu[ok]
    return out


def inelasticity(lepenergy: npt.ArrayLike, nuenergy: npt.ArrayLike) -> FloatArray:
    """Bjorken inelasticity ``y = 1 - E_lepton / E_nu`` (NaN where E_nu is not positive)."""
    return 1.0 - lepton_fraction(lepenergy, nuenergy)


def finalstate_code(group: npt.ArrayLike, tracks: npt.ArrayLike, showers: npt.ArrayLike) -> IntArray:
    """Encode ``16*group + 4*min(tracks, 3) + min(showers, 3)``; group 0 νμ CC, 1 νe CC, 2 NC."""
    g = np.asarray(group, dtype=np.int64)
    t = np.minimum(np.asarray(tracks, dtype=np.int64), 3)
    s = np.minimum(np.asarray(showers, dtype=np.int64), 3)
    if np.any((g < 0) | (g > 2)) or np.any(t < 0) or np.any(s < 0):
        raise ValueError("final-state group must be 0, 1 or 2 and counts non-negative")
    return 16 * g + 4 * t + s


def _fs(finalstate: npt.ArrayLike) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    c = np.asarray(finalstate, dtype=np.int64).reshape(-1)
    return c, (c >= 0) & (c < FS_COSMIC)


def finalstate_group(finalstate: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Flavour group of a final-state code (0 νμ CC-like, 1 νe CC-like, 2 NC-like); -1 for cosmic,
    other and invalid codes."""
    c, ok = _fs(finalstate)
    return np.where(ok, c // 16, -1)


def n_tracks(finalstate: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Number of tracks (0, 1, 2, 3 = "3 or more") from a final-state code; -1 if not coded."""
    c, ok = _fs(finalstate)
    return np.where(ok, (c % 16) // 4, -1)


def n_showers(finalstate: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Number of showers (0, 1, 2, 3 = "3 or more") from a final-state code; -1 if not coded."""
    c, ok = _fs(finalstate)
    return np.where(ok, c % 4, -1)


def pack_particles(
    nproton: npt.ArrayLike, npion: npt.ArrayLike, npizero: npt.ArrayLike, nneutron: npt.ArrayLike
) -> IntArray:
    """Simulated files' ``particles``: ``p + 16*π± + 256*π0 + 4096*n``, each count capped at 15."""
    parts = [np.minimum(np.asarray(a, dtype=np.int64), 15) for a in (nproton, npion, npizero, nneutron)]
    return parts[0] + 16 * parts[1] + 256 * parts[2] + 4096 * parts[3]


def unpack_particles(particles: npt.ArrayLike) -> dict[str, npt.NDArray[np.int64]]:
    """Inverse of :func:`pack_particles`. Only valid for simulated files (``generator`` attribute
    present): the meaning of ``particles`` in the real files is not published."""
    p = np.asarray(particles, dtype=np.int64).reshape(-1)
    return {
        "nproton": p & 15,
        "npion": (p >> 4) & 15,
        "npizero": (p >> 8) & 15,
        "nneutron": (p >> 12) & 15,
    }


LabelName = Literal["numu_cc", "flavour", "mode", "n_tracks", "n_showers", "lepton_fraction"]
LABELS: tuple[LabelName, ...] = (
    "numu_cc",
    "flavour",
    "mode",
    "n_tracks",
    "n_showers",
    "lepton_fraction",
)


def label(
    name: LabelName,
    interaction: npt.ArrayLike,
    *,
    finalstate: npt.ArrayLike | None = None,
    lepenergy: npt.ArrayLike | None = None,
    nuenergy: npt.ArrayLike | None = None,
) -> npt.NDArray[np.generic]:
    """Compute a derived label by name, so configuration can hold label names only."""
    if name == "numu_cc":
        return numu_cc(interaction)
    if name == "flavour":
        return flavour(interaction)
    if name == "mode":
        return mode(interaction)
    if name in ("n_tracks", "n_showers"):
        if finalstate is None:
            raise ValueError(f"label {name!r} needs the finalstate codes")
        return n_tracks(finalstate) if name == "n_tracks" else n_showers(finalstate)
    if name == "lepton_fraction":
        if lepenergy is None or nuenergy is None:
            raise ValueError("label 'lepton_fraction' needs lepenergy and nuenergy")
        return lepton_fraction(lepenergy, nuenergy)
    raise ValueError(f"unknown label {name!r}; choose one of {', '.join(LABELS)}")
