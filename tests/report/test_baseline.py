"""Tests for nucvn.report.baseline: pixel charge and the calorimetric energy fit on synthetic events
with a known linear calibration."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nucvn.core.errors import NucvnError
from nucvn.report.baseline import CalorimetricEnergy, pixel_charge


def test_pixel_charge_sums_both_views_as_float64() -> None:
    images = np.zeros((3, 2, 100, 80), dtype=np.uint8)
    images[0, 0, 0, 0] = 255
    images[0, 1, 99, 79] = 255  # would overflow uint8 if summed in uint8
    images[2] = 1
    q = pixel_charge(images)
    assert q.dtype == np.float64
    np.testing.assert_array_equal(q, [510.0, 0.0, 16000.0])


def test_pixel_charge_of_a_memory_map_in_chunks(tmp_path) -> None:
    path = tmp_path / "x.npy"
    arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(5000, 2, 10, 8))
    arr[:] = 2
    arr.flush()
    q = pixel_charge(np.load(path, mmap_mode="r", allow_pickle=False))
    assert q.shape == (5000,) and np.all(q == 320.0)


def test_pixel_charge_refuses_flat_input() -> None:
    with pytest.raises(NucvnError, match="shape"):
        pixel_charge(np.zeros(5))


def _events(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """numu: E = 0.002 q + 0.3; nue: E = 0.003 q + 0.1; 'rare' (5 events) follows numu."""
    rng = np.random.default_rng(seed)
    flavour = np.where(rng.random(n) < 0.5, "numu", "nue")
    flavour[:5] = "rare"
    q = rng.uniform(100, 5000, n)
    a = np.where(flavour == "nue", 0.003, 0.002)
    b = np.where(flavour == "nue", 0.1, 0.3)
    return q, a * q + b + rng.normal(0, 0.05, n), flavour


def test_linear_fit_recovers_slope_and_intercept() -> None:
    rng = np.random.default_rng(1)
    q = rng.uniform(100, 5000, 4000)
    e = 0.0025 * q + 0.4 + rng.normal(0, 0.05, q.size)
    model = CalorimetricEnergy("linear").fit(q, e)
    assert model.global_ is not None
    assert model.global_.slope == pytest.approx(0.0025, rel=0.01)
    assert model.global_.intercept == pytest.approx(0.4, abs=0.01)
    np.testing.assert_allclose(model.predict([0.0, 1000.0]),
                               [model.global_.intercept, model.global_(np.array([1000.0]))[0]])


def test_huber_fit_resists_outliers() -> None:
    rng = np.random.default_rng(2)
    q = rng.uniform(100, 5000, 4000)
    e = 0.0025 * q + 0.4 + rng.normal(0, 0.05, q.size)
    e[:200] *= 0.3  # energy escaping the detector
    ols = CalorimetricEnergy("linear", method="ols").fit(q, e)
    huber = CalorimetricEnergy("linear", method="huber").fit(q, e)
    assert abs(huber.global_.slope - 0.0025) < abs(ols.global_.slope - 0.0025)
    assert huber.global_.slope == pytest.approx(0.0025, rel=0.02)


def test_per_flavour_fit_with_fallback() -> None:
    q, e, flavour = _events(6000)
    model = CalorimetricEnergy("per_flavour", min_events=50).fit(q, e, flavour)
    assert set(model.per_flavour) == {"numu", "nue"}  # 'rare' has 5 events: global fit
    assert model.per_flavour["numu"].slope == pytest.approx(0.002, rel=0.01)
    assert model.per_flavour["numu"].intercept == pytest.approx(0.3, abs=0.02)
    assert model.per_flavour["nue"].slope == pytest.approx(0.003, rel=0.01)
    assert model.per_flavour["nue"].intercept == pytest.approx(0.1, abs=0.02)
    pred = model.predict(np.array([1000.0, 1000.0, 1000.0, 1000.0]), np.array(["numu", "nue", "rare", "unseen"]))
    assert pred[0] == pytest.approx(2.3, abs=0.03) and pred[1] == pytest.approx(3.1, abs=0.03)
    assert pred[2] == pred[3] == pytest.approx(model.global_(np.array([1000.0]))[0])
    resid = model.predict(q, flavour) - e
    assert np.std(resid[5:]) == pytest.approx(0.05, rel=0.1)  # per-flavour fit: noise only


def test_integer_flavour_codes() -> None:
    q, e, flavour = _events(2000)
    codes = np.where(flavour == "nue", 1, 0)
    model = CalorimetricEnergy().fit(q, e, codes)
    assert set(model.per_flavour) == {"0", "1"}
    np.testing.assert_allclose(model.predict(q[:10], codes[:10]), model.predict(q[:10], codes[:10].astype(str)))


def test_round_trip_through_json() -> None:
    q, e, flavour = _events(3000)
    model = CalorimetricEnergy().fit(q, e, flavour)
    text = json.dumps(model.to_dict())
    again = CalorimetricEnergy.from_dict(json.loads(text))
    np.testing.assert_array_equal(again.predict(q, flavour), model.predict(q, flavour))
    assert again.to_dict() == model.to_dict()


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: CalorimetricEnergy().predict([1.0], ["numu"]), "not fitted"),
        (lambda: CalorimetricEnergy().fit([1.0, 2.0], [1.0, 2.0]), "needs the flavour"),
        (lambda: CalorimetricEnergy("linear").fit([1.0], [1.0]), "at least 2 events"),
        (lambda: CalorimetricEnergy("linear").fit([1.0, 2.0], [1.0]), "match one to one"),
        (lambda: CalorimetricEnergy("linear").fit([1.0, np.nan], [1.0, 2.0]), "NaN"),
        (lambda: CalorimetricEnergy("cubic"), "mode"),  # type: ignore[arg-type]
        (lambda: CalorimetricEnergy.from_dict({"global": {"slope": 1.0}}), "slope, intercept and n"),
        (lambda: CalorimetricEnergy.from_dict([1, 2]), "expected a dict"),
    ],
)
def test_errors(call, match) -> None:
    with pytest.raises(NucvnError, match=match):
        call()


def test_relative_fit_is_unbiased_in_relative_terms_where_the_events_are() -> None:
    """On a steep spectrum with an energy-independent relative smearing, the default fit (weighted by
    1/E², least squares of the relative error) has a small relative bias at low energy, while the
    unweighted one, pulled by the few high-energy events, overestimates low-energy events."""
    from nucvn.report.baseline import CalorimetricEnergy

    rng = np.random.default_rng(3)
    e = np.exp(rng.uniform(np.log(0.5), np.log(80.0), 20000)) ** 0.5 * 2
    charge = 1000.0 * e * rng.normal(1.0, 0.2, e.size) + rng.normal(300.0, 50.0, e.size)
    low = e < 2.0
    rel = CalorimetricEnergy(mode="linear").fit(charge, e)
    absolute = CalorimetricEnergy(mode="linear", residual="absolute").fit(charge, e)
    bias_rel = np.mean(rel.predict(charge)[low] / e[low] - 1)
    bias_abs = np.mean(absolute.predict(charge)[low] / e[low] - 1)
    assert abs(bias_rel) < abs(bias_abs)
    assert CalorimetricEnergy.from_dict(rel.to_dict()).residual == "relative"
