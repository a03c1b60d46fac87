"""Visible energy on simulated events: calibrated on one half, it measures the other half's deposited energy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from nucvn.data.labels import label_columns
from nucvn.report.preselection import image_features
from nucvn.report.visible_energy import apply_visible_energy, calibration_of, deposited_energy, fit_visible_energy
from nucvn.sim.simulate import simulate_events


@pytest.fixture(scope="module")
def sample() -> tuple[pd.DataFrame, np.ndarray]:
    sim = simulate_events(1500, seed=21, file_index=1)
    meta = pd.DataFrame({k: np.asarray(v).reshape(-1) for k, v in sim.meta.items() if np.asarray(v).ndim <= 2})
    meta = meta.assign(**label_columns(meta))
    return meta, image_features([sim.images])["charge"]


def test_calibrated_on_half_measures_the_other_half(sample) -> None:
    meta, charge = sample
    half = len(meta) // 2
    cal = fit_visible_energy(charge[:half], meta.iloc[:half])
    assert cal is not None and cal["slope"] > 0 and cal["fitted_on"] == "train split"
    evis = apply_visible_energy(charge[half:], calibration_of({"visible_energy": cal}))
    rest = meta.iloc[half:].reset_index(drop=True)
    target, usable = deposited_energy(rest)
    ok = usable & (charge[half:] > 0)
    ratio = evis[ok] / target[ok]
    assert 0.85 < np.median(ratio) < 1.15  # calibrated: unbiased on events it never saw
    # rank correlation: escaping muons make a heavy low tail that swings Pearson's r between 0.77 and
    # 0.81 from seed to seed on 750 events; Spearman's rho was 0.81-0.85 on seeds 21-24
    assert spearmanr(evis[ok], target[ok]).correlation > 0.75
    # NC: the visible energy follows the hadronic energy, not the neutrino energy
    nc = ok & (rest["flavour"].to_numpy() == 3)
    nu = rest["nuenergy"].to_numpy()
    assert nc.sum() > 20
    assert np.median(np.abs(evis[nc] / target[nc] - 1)) < np.median(np.abs(evis[nc] / nu[nc] - 1))


def test_no_calibration_without_neutrino_events(sample) -> None:
    meta, charge = sample
    cosmic = meta.assign(interaction=np.full(len(meta), 14))
    assert fit_visible_energy(charge, cosmic) is None
    assert calibration_of({}) is None
