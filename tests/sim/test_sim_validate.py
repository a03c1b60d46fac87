"""``validate-sim``: the plots are written and the summary numbers are physics."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from nucvn.core.errors import NucvnError
from nucvn.sim.validate import validate


@pytest.mark.slow
def test_validate_writes_plots_and_physical_summary(tmp_path: Path) -> None:
    summary = validate(tmp_path, events=300, seed=3)
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["muon_range"] == summary["muon_range"]
    assert abs(on_disk["muon_range"]["median_length_over_csda"] - 1.0) < 0.1
    assert 20 <= on_disk["mip_pixels"]["peak"] <= 30
    assert on_disk["linearity"]["max_abs_residual"] < 0.05
    for key in ("electron_3GeV", "photon_3GeV"):
        prof = on_disk["shower_profile"][key]
        assert prof["mean_depth_x0"] == pytest.approx(prof["gamma_mean_depth_x0"], rel=0.15)
    # photons start later than electrons by about the conversion length
    profile = on_disk["shower_profile"]
    assert profile["photon_3GeV"]["mean_depth_x0"] > profile["electron_3GeV"]["mean_depth_x0"] + 0.5
    assert on_disk["spectra"]["composition"]["numu_cc"] > 0.8
    for name in ("muon_range", "shower_profile", "mip_pixels", "spectra", "multiplicity", "linearity",
                 "event_numu_cc_qe"):
        img = mpimg.imread(tmp_path / f"{name}.png")
        assert img.ndim == 3 and img.shape[0] > 200
        assert np.std(img[..., :3]) > 0.01  # something is drawn


def test_validate_refuses_tiny_samples(tmp_path: Path) -> None:
    with pytest.raises(NucvnError, match="events"):
        validate(tmp_path, events=10)
