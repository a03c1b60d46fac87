"""The preselection experiments apply before a classifier: containment and a minimum of activity.

A classifier's efficiency means little for events nobody would analyse: vertices outside the
detector's well-instrumented core, events leaking out of the downstream end of the pixel window
(their energy is not measured; a muon may exit), and slices with a handful of hits. NOvA
preselects every sample this way before its CVN cut (NOvA, Phys. Rev. D 106 (2022) 032004, §IV:
fiducial vertex, containment, minimum hits). Three cuts, each a parameter:

* ``fiducial``: the *true* vertex inside a box (cm, detector coordinates). The files carry no
  reconstructed vertex, so this is a truth-level cut, as in a generator-level study; in files
  without ``vtxx/vtxy/vtxz`` the cut is not applied and the report says so.
* ``contained``: at most ``downstream_max_hits`` hit pixels in the last ``downstream_planes``
  planes of the window (both views): the event does not run out of the window's downstream end. A
  track leaving the window lights a pixel in each of those planes of both views; the few hits
  allowed are for isolated noise hits (3 per view on average, so a strict "no hit" would reject
  ~6 % of events for noise alone, and ~12 % when the noise doubles).
* ``min_hits``: at least this many hit pixels (both views).

The image quantities come from :func:`image_features` (one streaming pass over the pixel maps):
``nhits`` (hit pixels), ``charge`` (sum of pixel values, the input of the visible energy),
``last_plane`` (the furthest-downstream plane with a hit, -1 for an empty event) and
``downstream_hits`` (hit pixels in the last ``downstream_planes`` planes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from nucvn.core.errors import NucvnError
from nucvn.core.events import IMAGE_SHAPE
from nucvn.report import stats as m
from nucvn.report.baseline import pixel_charge

__all__ = ["IMAGE_FEATURES", "image_features", "Preselection", "CUTS", "preselection_cuts", "preselection_table"]

IMAGE_FEATURES: tuple[str, ...] = ("nhits", "charge", "last_plane", "downstream_hits")
CUTS: tuple[str, ...] = ("fiducial", "contained", "min_hits")
"""The cuts, in the order they are applied (the table's cumulative columns follow it)."""
_VERTEX = ("vtxx", "vtxy", "vtxz")


def image_features(batches: Iterable[npt.ArrayLike], *, downstream_planes: int = 2,
                   ) -> dict[str, npt.NDArray[np.float64] | npt.NDArray[np.int64]]:
    """:data:`IMAGE_FEATURES` of every event, over batches of uint8 images ``(b, 2, 100, 80)``
    ([view][plane][cell]); one batch in memory at a time."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in IMAGE_FEATURES}
    n_planes = IMAGE_SHAPE[1]
    for batch in batches:
        a = np.asarray(batch)
        if a.ndim != 4 or tuple(a.shape[1:]) != IMAGE_SHAPE:
            raise NucvnError(f"image features: batches must be (n, {', '.join(map(str, IMAGE_SHAPE))}), got {a.shape}")
        hit = a != 0
        parts["nhits"].append(np.count_nonzero(hit.reshape(len(a), -1), axis=1).astype(np.int64))
        parts["charge"].append(pixel_charge(a))
        planes = hit.any(axis=(1, 3))
        last = n_planes - 1 - np.argmax(planes[:, ::-1], axis=1)
        parts["last_plane"].append(np.where(planes.any(axis=1), last, -1).astype(np.int64))
        tail = hit[:, :, n_planes - downstream_planes:, :] if downstream_planes else hit[:, :, :0, :]
        parts["downstream_hits"].append(np.count_nonzero(tail.reshape(len(a), -1), axis=1).astype(np.int64))
    return {k: (np.concatenate(v) if v else np.zeros(0, np.float64) if k == "charge" else np.zeros(0, np.int64))
            for k, v in parts.items()}


def _range(values: Sequence[float], name: str) -> tuple[float, float]:
    if len(values) != 2 or not values[0] < values[1]:
        raise NucvnError(f"evaluate.preselection.fiducial.{name}: needs [low, high] with low < high, "
                         f"got {list(values)}")
    return float(values[0]), float(values[1])


@dataclass(frozen=True)
class Preselection:
    """The cut values (defaults: ``params.yaml: evaluate.preselection``). The fiducial box keeps
    ~80 cm from the sides and 1 m from the front and 3 m from the back of the 15.6 x 15.6 x 60 m detector."""

    min_hits: int = 15
    downstream_planes: int = 2
    downstream_max_hits: int = 2
    fiducial: Mapping[str, Sequence[float]] = field(
        default_factory=lambda: {"x": [-700.0, 700.0], "y": [-700.0, 700.0], "z": [100.0, 5700.0]})

    def __post_init__(self) -> None:
        if self.downstream_max_hits < 0:
            raise NucvnError(f"evaluate.preselection.downstream_max_hits must be >= 0, got {self.downstream_max_hits}")
        if self.min_hits < 0:
            raise NucvnError(f"evaluate.preselection.min_hits must be >= 0, got {self.min_hits}")
        if not 0 <= self.downstream_planes < IMAGE_SHAPE[1]:
            raise NucvnError(f"evaluate.preselection.downstream_planes must be in [0, {IMAGE_SHAPE[1] - 1}], "
                             f"got {self.downstream_planes}")
        unknown = sorted(set(self.fiducial) - {"x", "y", "z"})
        if unknown:
            raise NucvnError(f"evaluate.preselection.fiducial: unknown axis {unknown[0]!r}; use x, y and z (cm)")
        for axis, values in self.fiducial.items():
            _range(values, axis)

    def describe(self, has_vertex: bool) -> dict[str, object]:
        """The cuts as applied, for ``info/``: a cut that could not be applied says why."""
        fid: object = {k: list(map(float, v)) for k, v in self.fiducial.items()} if has_vertex else \
            "not applied: the files carry no true vertex (vtxx, vtxy, vtxz)"
        return {"fiducial_cm": fid, "contained": f"at most {self.downstream_max_hits} hit pixels in the last "
                                                 f"{self.downstream_planes} planes of the window",
                "min_hits": self.min_hits}


def has_vertex(meta: pd.DataFrame) -> bool:
    """Whether the metadata carries the true vertex the fiducial cut needs."""
    return all(k in meta.columns for k in _VERTEX)


def preselection_cuts(
    meta: pd.DataFrame, features: Mapping[str, npt.ArrayLike], cuts: Preselection
) -> dict[str, npt.NDArray[np.bool_]]:
    """Pass mask of each cut of :data:`CUTS` (each on its own, not cumulative); ``features`` holds
    ``nhits`` and ``downstream_hits`` of the same events (:func:`image_features` with the same
    ``downstream_planes``)."""
    nhits = np.asarray(features["nhits"], dtype=np.int64)
    tail = np.asarray(features["downstream_hits"], dtype=np.int64)
    if len(nhits) != len(meta) or len(tail) != len(meta):
        raise NucvnError(f"preselection: {len(nhits)} image features for {len(meta)} events; they must match")
    fiducial = np.ones(len(meta), dtype=bool)
    if has_vertex(meta):
        for axis, key in zip("xyz", _VERTEX, strict=True):
            if axis in cuts.fiducial:
                lo, hi = _range(cuts.fiducial[axis], axis)
                v = meta[key].to_numpy().astype(np.float64)
                fiducial &= (v >= lo) & (v <= hi)
    contained = tail <= cuts.downstream_max_hits
    return {"fiducial": fiducial, "contained": contained, "min_hits": nhits >= cuts.min_hits}


def preselected(passes: Mapping[str, npt.NDArray[np.bool_]]) -> npt.NDArray[np.bool_]:
    """Events passing every cut."""
    out = np.ones(len(next(iter(passes.values()))), dtype=bool)
    for c in CUTS:
        out &= passes[c]
    return out


def preselection_table(cats: npt.ArrayLike, passes: Mapping[str, npt.NDArray[np.bool_]], order: Sequence[str], *,
                       cl: float = m.ONE_SIGMA) -> pd.DataFrame:
    """Fraction of each true category passing the cuts *cumulatively* (``after_fiducial``,
    ``after_contained``, ``after_min_hits`` = the preselection efficiency), with Clopper-Pearson
    intervals and counts; one row per category of ``order`` (NaN where it has no events)."""
    c = np.asarray(cats, dtype=object)
    n = [int(np.sum(c == cat)) for cat in order]
    parts = [pd.DataFrame({"category": list(order)})]
    cumulative = np.ones(len(c), dtype=bool)
    for cut in CUTS:
        cumulative = cumulative & passes[cut]
        k = [int(np.sum(cumulative[c == cat])) for cat in order]
        parts.append(m.rate_table(k, n, name=f"after_{cut}", cl=cl))
    return pd.concat(parts, axis=1)
