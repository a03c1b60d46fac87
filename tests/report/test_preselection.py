"""The preselection: image features, each cut, the cumulative table."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from nucvn.core.errors import NucvnError
from nucvn.core.events import IMAGE_SHAPE
from nucvn.report.preselection import Preselection, image_features, preselected, preselection_cuts, preselection_table


def _images() -> np.ndarray:
    img = np.zeros((5, *IMAGE_SHAPE), dtype=np.uint8)
    img[0, 0, 10, 5] = 7          # one hit, plane 10
    img[1, 1, 99, 40] = 200       # touches the downstream end (view 1)
    img[1, 0, 3, 3] = 1
    img[2, 0, 0:30, 20] = 30      # a 30-plane track, contained
    img[4, :, 60:100, 33] = 50    # a track running out of the window: 2 x 40 hits, 4 in the last 2 planes
    return img                    # event 3: empty


def test_image_features_count_hits_charge_and_last_plane() -> None:
    f = image_features([_images()[:2], _images()[2:]])
    assert list(f["nhits"]) == [1, 2, 30, 0, 80]
    assert list(f["charge"]) == [7.0, 201.0, 900.0, 0.0, 4000.0]
    assert list(f["last_plane"]) == [10, 99, 29, -1, 99]
    assert list(f["downstream_hits"]) == [0, 1, 0, 0, 4]
    assert list(image_features([_images()], downstream_planes=10)["downstream_hits"]) == [0, 1, 0, 0, 20]
    with pytest.raises(NucvnError, match="batches must be"):
        image_features([np.zeros((2, 100, 80), np.uint8)])


def test_each_cut_and_their_combination() -> None:
    meta = pd.DataFrame({"vtxx": [0.0, 0.0, 650.0, 0.0, 0.0], "vtxy": [0.0] * 5,
                         "vtxz": [50.0, 3000.0, 3000.0, 3000.0, 100.0]})
    f = image_features([_images()])
    cuts = preselection_cuts(meta, f, Preselection(min_hits=2, downstream_planes=2))
    assert list(cuts["fiducial"]) == [False, True, True, True, True]     # z = 50 cm is in front of the box
    assert list(cuts["contained"]) == [True, True, True, True, False]    # a lone (noise) hit passes, a track does not
    assert list(cuts["min_hits"]) == [False, True, True, False, True]
    assert list(preselected(cuts)) == [False, True, True, False, False]
    strict = preselection_cuts(meta, f, Preselection(downstream_planes=2, downstream_max_hits=0))
    assert list(strict["contained"]) == [True, False, True, True, False]
    f0 = image_features([_images()], downstream_planes=0)  # features computed for the cut's own planes
    tight = preselection_cuts(meta, f0, Preselection(min_hits=0, downstream_planes=0, fiducial={"x": [-600, 600]}))
    assert list(tight["fiducial"]) == [True, True, False, True, True] and tight["contained"].all()
    # files without vertices: the fiducial cut cannot be applied and is not
    no_vertex = preselection_cuts(meta.drop(columns=["vtxz"]), f, Preselection())
    assert no_vertex["fiducial"].all()
    assert "not applied" in str(Preselection().describe(has_vertex=False)["fiducial_cm"])


def test_bad_cut_values_name_the_key() -> None:
    with pytest.raises(NucvnError, match=re.escape("fiducial.z")):
        Preselection(fiducial={"z": [500, 100]})
    with pytest.raises(NucvnError, match="unknown axis 'r'"):
        Preselection(fiducial={"r": [0, 1]})
    with pytest.raises(NucvnError, match="downstream_planes"):
        Preselection(downstream_planes=100)


def test_table_is_cumulative_per_category() -> None:
    rng = np.random.default_rng(3)
    n = 2000
    cats = rng.choice(["numu_cc", "nc"], size=n)
    passes = {c: rng.random(n) < p for c, p in (("fiducial", 0.8), ("contained", 0.7), ("min_hits", 0.95))}
    t = preselection_table(cats, passes, ["numu_cc", "nc", "cosmic"]).set_index("category")
    for cat in ("numu_cc", "nc"):
        row = t.loc[cat]
        assert row["after_fiducial"] >= row["after_contained"] >= row["after_min_hits"]
        assert row["after_min_hits_k"] == np.sum(preselected(passes) & (cats == cat))
        assert row["after_min_hits_lo"] < row["after_min_hits"] < row["after_min_hits_hi"]
    assert t.loc["nc", "after_min_hits"] == pytest.approx(0.8 * 0.7 * 0.95, abs=0.04)
    assert np.isnan(t.loc["cosmic", "after_fiducial"])  # no events: kept as a row, NaN
