"""The traditional method: hand-made topology features of each event and gradient-boosted trees.

Before CNNs, NOvA and MINOS selected νμ CC events with reconstructed quantities — the length of the
longest track, the charge per plane along it, the event's extent and the fraction of its energy in
showers — combined by a multivariate classifier (MINOS: a k-nearest-neighbour "ROID"; NOvA's first
analyses: a BDT on track variables, Adamson et al., Phys. Rev. D 93 (2016) 051104). Without a
reconstruction, :func:`topology_features` computes comparable quantities directly from the two
pixel maps, per view: hit count, total and peak charge, the planes spanned and the number of
planes with hits, the longest run of consecutive "track-like" planes (one or two hit cells), the
fraction of charge in shower-like planes (more than three hits), the transverse width, and the
charge at the downstream end. :class:`FeatureBoostedTrees` fits scikit-learn's
:class:`~sklearn.ensemble.HistGradientBoostingClassifier` (gradient boosting on binned features,
as in LightGBM: Ke et al., NeurIPS 2017) on them. It is the baseline a CNN has to beat to be worth
its cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import HistGradientBoostingClassifier

__all__ = ["FEATURE_NAMES", "topology_features", "FeatureBoostedTrees"]

_PER_VIEW = ("nhits", "charge", "peak", "planes_spanned", "planes_hit", "longest_track_run", "track_planes",
             "shower_charge_fraction", "width_rms", "max_hits_per_plane", "last_quarter_charge_fraction",
             "charge_per_plane")
FEATURE_NAMES: tuple[str, ...] = (*(f"{v}_{name}" for v in ("x", "y") for name in _PER_VIEW),
                                  "planes_spanned_max", "charge_asymmetry")
"""Column names of :func:`topology_features` (``x_``/``y_`` per view, then two combined)."""


def _longest_run(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """Longest run of consecutive True along axis 1 of ``(n, planes)``."""
    run = np.zeros(mask.shape[0], dtype=np.int64)
    best = np.zeros_like(run)
    for j in range(mask.shape[1]):
        run = np.where(mask[:, j], run + 1, 0)
        best = np.maximum(best, run)
    return best


def _view_features(v: npt.NDArray[np.uint8]) -> list[npt.NDArray[np.float64]]:
    """The :data:`_PER_VIEW` features of one view ``(n, planes, cells)``."""
    q = v.astype(np.float64)
    hit = v > 0
    per_plane_hits = hit.sum(axis=2)
    per_plane_q = q.sum(axis=2)
    total = per_plane_q.sum(axis=1)
    safe = np.maximum(total, 1.0)
    planes = np.arange(v.shape[1])
    has = per_plane_hits > 0
    first = np.where(has.any(axis=1), np.argmax(has, axis=1), 0)
    last = np.where(has.any(axis=1), v.shape[1] - 1 - np.argmax(has[:, ::-1], axis=1), -1)
    spanned = np.maximum(last - first + 1, 0)
    track_like = (per_plane_hits >= 1) & (per_plane_hits <= 2)
    shower_like = per_plane_hits > 3
    cells = np.arange(v.shape[2], dtype=np.float64)
    mean_cell = (q * cells).sum(axis=(1, 2)) / safe
    var_cell = (q * (cells[None, None, :] - mean_cell[:, None, None]) ** 2).sum(axis=(1, 2)) / safe
    quarter = first + 0.75 * spanned
    late = (planes[None, :] >= quarter[:, None]) & has
    return [hit.sum(axis=(1, 2)).astype(np.float64), total, q.max(axis=(1, 2)), spanned.astype(np.float64),
            has.sum(axis=1).astype(np.float64), _longest_run(track_like).astype(np.float64),
            track_like.sum(axis=1).astype(np.float64), (per_plane_q * shower_like).sum(axis=1) / safe,
            np.sqrt(var_cell), per_plane_hits.max(axis=1).astype(np.float64), (per_plane_q * late).sum(axis=1) / safe,
            total / np.maximum(has.sum(axis=1), 1)]


def topology_features(images: npt.ArrayLike, *, chunk: int = 1024) -> npt.NDArray[np.float64]:
    """Features ``(n, len(FEATURE_NAMES))`` of uint8 events ``(n, 2, planes, cells)`` (computed
    ``chunk`` events at a time, so memory stays bounded for any ``n``)."""
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[1] != 2:
        raise ValueError(f"topology_features expects (n, 2, planes, cells) events, got shape {x.shape}")
    out = np.empty((x.shape[0], len(FEATURE_NAMES)))
    for i in range(0, x.shape[0], chunk):
        part = np.asarray(x[i : i + chunk])
        fx, fy = _view_features(part[:, 0]), _view_features(part[:, 1])
        spanned_max = np.maximum(fx[3], fy[3])
        asym = (fx[1] - fy[1]) / np.maximum(fx[1] + fy[1], 1.0)
        out[i : i + chunk] = np.column_stack([*fx, *fy, spanned_max, asym])
    return out


@dataclass
class FeatureBoostedTrees:
    """Gradient-boosted trees on :func:`topology_features` for a binary label (class-balanced)."""

    max_iter: int = 300
    learning_rate: float = 0.1
    max_leaf_nodes: int = 31
    seed: int = 0
    model: Any = field(default=None, init=False, repr=False)

    def fit(self, features: npt.ArrayLike, labels: npt.ArrayLike) -> FeatureBoostedTrees:
        """Fit on ``features`` (from :func:`topology_features`) and boolean ``labels``; early
        stopping on an internal 10 % validation split."""
        self.model = HistGradientBoostingClassifier(
            max_iter=self.max_iter, learning_rate=self.learning_rate, max_leaf_nodes=self.max_leaf_nodes,
            class_weight="balanced", early_stopping=True, validation_fraction=0.1, random_state=self.seed)
        self.model.fit(np.asarray(features, dtype=np.float64), np.asarray(labels, dtype=bool))
        return self

    def predict(self, features: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Scores in [0, 1] (probability of the positive class)."""
        if self.model is None:
            raise RuntimeError("FeatureBoostedTrees.predict before fit")
        return np.asarray(self.model.predict_proba(np.asarray(features, dtype=np.float64))[:, 1], dtype=np.float64)
