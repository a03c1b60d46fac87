"""The label definitions of docs/format.md, checked code by code."""

from __future__ import annotations

import numpy as np
import pytest

from nucvn.core import events as ev


def test_numu_cc_is_interactions_0_to_3() -> None:
    codes = np.arange(16)
    assert ev.numu_cc(codes).tolist() == [True] * 4 + [False] * 12


def test_flavour_table() -> None:
    codes = np.arange(17)
    expected = [0] * 4 + [1] * 4 + [2] * 4 + [3, 3, 4, -1, -1]
    assert ev.flavour(codes).tolist() == expected


def test_mode_table() -> None:
    codes = np.arange(16)
    expected = [0, 1, 2, 3] * 3 + [4, 4, -1, -1]
    assert ev.mode(codes).tolist() == expected
    assert ev.mode([2])[0] == ev.Mode.DIS


def test_labels_accept_n_by_1_arrays() -> None:
    codes = np.array([[0], [13], [6]], dtype=np.uint32)
    assert ev.numu_cc(codes).tolist() == [True, False, False]
    assert ev.flavour(codes).tolist() == [0, 3, 1]


def test_lepton_fraction_and_inelasticity() -> None:
    lf = ev.lepton_fraction([1.0, 0.5, 0.0], [2.0, 0.5, 0.0])
    assert lf[0] == pytest.approx(0.5)
    assert lf[1] == pytest.approx(1.0)
    assert np.isnan(lf[2])
    assert ev.inelasticity([1.5], [2.0])[0] == pytest.approx(0.25)


@pytest.mark.parametrize("group", [0, 1, 2])
@pytest.mark.parametrize("tracks", [0, 1, 2, 3, 5])
@pytest.mark.parametrize("showers", [0, 2, 7])
def test_finalstate_round_trip(group: int, tracks: int, showers: int) -> None:
    code = ev.finalstate_code(group, tracks, showers)
    assert code == 16 * group + 4 * min(tracks, 3) + min(showers, 3)
    assert ev.finalstate_group(code)[0] == group
    assert ev.n_tracks(code)[0] == min(tracks, 3)
    assert ev.n_showers(code)[0] == min(showers, 3)


def test_finalstate_cosmic_and_other_have_no_counts() -> None:
    assert ev.n_tracks([ev.FS_COSMIC, ev.FS_OTHER]).tolist() == [-1, -1]
    assert ev.n_showers([ev.FS_COSMIC]).tolist() == [-1]
    assert ev.finalstate_group([ev.FS_OTHER]).tolist() == [-1]
    with pytest.raises(ValueError):
        ev.finalstate_code(3, 0, 0)


def test_particles_pack_unpack_caps_at_15() -> None:
    packed = ev.pack_particles([1, 20], [2, 0], [3, 1], [4, 16])
    assert packed[0] == 1 + 16 * 2 + 256 * 3 + 4096 * 4
    un = ev.unpack_particles(packed)
    assert un["nproton"].tolist() == [1, 15]
    assert un["npion"].tolist() == [2, 0]
    assert un["npizero"].tolist() == [3, 1]
    assert un["nneutron"].tolist() == [4, 15]


def test_label_by_name() -> None:
    codes = np.array([0, 5, 13])
    assert ev.label("numu_cc", codes).tolist() == [True, False, False]
    assert ev.label("n_tracks", codes, finalstate=[ev.finalstate_code(0, 2, 1)] * 3).tolist() == [2, 2, 2]
    with pytest.raises(ValueError, match="finalstate"):
        ev.label("n_showers", codes)
    with pytest.raises(ValueError, match="unknown label"):
        ev.label("charm", codes)  # type: ignore[arg-type]
