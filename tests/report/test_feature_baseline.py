"""The traditional baseline: topology features mean what they say on drawn events, and boosted
trees on them separate tracks from showers on held-out events."""

from __future__ import annotations

import numpy as np
import pytest

from nucvn.core.events import numu_cc
from nucvn.report import stats
from nucvn.report.feature_baseline import FEATURE_NAMES, FeatureBoostedTrees, topology_features
from trainutil import learnable_events


def _col(f: np.ndarray, name: str) -> np.ndarray:
    return f[:, FEATURE_NAMES.index(name)]


def test_features_of_a_drawn_track_and_a_drawn_shower() -> None:
    ev = np.zeros((2, 2, 100, 80), np.uint8)
    ev[0, :, 10:70, 40] = 30                 # a straight 60-plane track in both views
    ev[1, :, 20:26, 30:35] = 100             # a 6-plane, 5-cell blob
    f = topology_features(ev, chunk=1)
    assert f.shape == (2, len(FEATURE_NAMES))
    assert _col(f, "x_planes_spanned").tolist() == [60, 6] and _col(f, "y_longest_track_run")[0] == 60
    assert _col(f, "x_nhits").tolist() == [60, 30] and _col(f, "x_charge").tolist() == [1800, 3000]
    assert _col(f, "x_shower_charge_fraction").tolist() == [0.0, 1.0]
    assert _col(f, "x_width_rms")[0] == 0.0 and _col(f, "x_width_rms")[1] == pytest.approx(np.sqrt(2.0))
    assert _col(f, "x_last_quarter_charge_fraction")[0] == pytest.approx(15 / 60)
    assert _col(f, "charge_asymmetry").tolist() == [0.0, 0.0]
    assert np.all(topology_features(np.zeros((3, 2, 100, 80), np.uint8)) == 0)
    with pytest.raises(ValueError, match="shape"):
        topology_features(np.zeros((3, 100, 80), np.uint8))


def test_boosted_trees_separate_tracks_from_blobs_on_held_out_events() -> None:
    train_x, train_meta = learnable_events(300, 0)
    test_x, test_meta = learnable_events(200, 1)
    y_train, y_test = numu_cc(train_meta["interaction"]), numu_cc(test_meta["interaction"])
    model = FeatureBoostedTrees(max_iter=50).fit(topology_features(train_x), y_train)
    scores = model.predict(topology_features(test_x))
    assert scores.shape == (200,) and np.all((scores >= 0) & (scores <= 1))
    assert stats.auc(y_test, scores) > 0.95
    with pytest.raises(RuntimeError, match="before fit"):
        FeatureBoostedTrees().predict(topology_features(test_x))
