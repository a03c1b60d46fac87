"""The interface between the event generator and the detector simulation.

The generator produces, per batch of events, a flat table of the final-state particles leaving the
nucleus (:data:`PARTICLE_DTYPE`, sorted by event) and per-event truth arrays. The detector
simulation consumes exactly this and nothing else, so either side can be tested alone (the
detector with particle guns, the generator without a detector).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = ["PARTICLE_DTYPE", "GeneratedBatch", "FS_GROUP_KEY"]

PARTICLE_DTYPE = np.dtype(
    [
        ("event", np.int32),
        ("pdg", np.int32),
        ("px", np.float64),
        ("py", np.float64),
        ("pz", np.float64),
        ("e", np.float64),
        ("x", np.float64),
        ("y", np.float64),
        ("z", np.float64),
    ]
)
"""One final-state particle: event index within the batch, PDG code, four-momentum (GeV, total
energy ``e``) and start position (cm, detector coordinates; the vertex, or the entry point for a
cosmic muon)."""

FS_GROUP_KEY = "fs_group"
"""Truth key for the final-state flavour group used to build ``finalstate`` codes: 0 νμ CC-like,
1 νe CC-like, 2 NC-like (ντ CC events by what the τ decays to), 48 cosmic, 49 other. It is not a
file key: the simulation combines it with the detector's track/shower counts."""


@dataclass
class GeneratedBatch:
    """Particles and truth for ``n_events`` events.

    ``truth`` maps keys of :data:`nucvn.data.h5io.META_DTYPES` (``interaction``, ``nuenergy``,
    ``lepenergy``, ``pdg``, ``iscc``, ``mode``, ``hadenergy``, ``inelasticity``, ``nproton``,
    ``npion``, ``npizero``, ``nneutron``, ``parent``, ``vtxx``, ``vtxy``, ``vtxz``) plus
    :data:`FS_GROUP_KEY` to arrays of length ``n_events``.
    """

    n_events: int
    particles: npt.NDArray[np.void]
    truth: dict[str, npt.NDArray[np.generic]] = field(default_factory=dict)
