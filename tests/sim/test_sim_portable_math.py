"""The simulation's portable elementary functions: accurate against numpy, exact where IEEE is."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nucvn.sim import portable_math as pm


def _rel(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-300)))


@pytest.fixture(scope="module")
def rng() -> np.random.Generator:
    return np.random.default_rng(12)


@pytest.mark.parametrize("name", ["sin", "cos", "arctan"])
def test_trigonometric_functions_match_numpy(rng: np.random.Generator, name: str) -> None:
    x = np.concatenate([rng.uniform(-30, 30, 200_000), rng.uniform(0, 2 * np.pi, 200_000),
                        [0.0, 1e-300, 1e300 if name == "arctan" else 1.0]])
    got, want = getattr(pm, name)(x), getattr(np, name)(x)
    assert np.max(np.abs(got - want)) < 4e-16 * 4
    away_from_zero = np.abs(want) > 1e-3
    assert _rel(got[away_from_zero], want[away_from_zero]) < 4e-15


def test_tan_and_arctan_invert_each_other(rng: np.random.Generator) -> None:
    t = rng.uniform(-1.55, 1.55, 100_000)
    assert _rel(pm.tan(t), np.tan(t)) < 4e-15
    assert np.max(np.abs(pm.arctan(pm.tan(t)) - t)) < 1e-14
    assert pm.arctan(np.inf) == math.pi / 2
    assert pm.arctan(-1.0) == pytest.approx(-math.pi / 4, rel=1e-16)


def test_exp_log_and_their_near_zero_forms(rng: np.random.Generator) -> None:
    x = rng.uniform(-700, 700, 200_000)
    assert _rel(pm.exp(x), np.exp(x)) < 4e-15
    y = np.exp(rng.uniform(-700, 700, 200_000))
    assert np.max(np.abs(pm.log(y) - np.log(y))) < 4e-13
    near_one = rng.uniform(0.5, 2.0, 200_000)
    assert _rel(pm.log(near_one), np.log(near_one)) < 4e-15
    small = np.concatenate([rng.uniform(-1e-6, 1e-6, 10_000), rng.uniform(-0.9999, 3, 10_000)])
    assert _rel(pm.log1p(small), np.log1p(small)) < 4e-15
    assert _rel(pm.expm1(small), np.expm1(small)) < 4e-15
    assert pm.exp(0.0) == 1.0 and pm.log(1.0) == 0.0 and pm.expm1(0.0) == 0.0 and pm.log1p(0.0) == 0.0
    assert pm.exp(1000.0) == np.inf and pm.exp(-1000.0) == 0.0
    assert pm.log(0.0) == -np.inf and np.isnan(pm.log(-1.0)) and pm.log(np.inf) == np.inf


def test_power_of_positive_bases(rng: np.random.Generator) -> None:
    base, expo = rng.random(100_000) + 1e-12, rng.uniform(-3, 3, 100_000)
    assert _rel(pm.power(base, expo), np.power(base, expo)) < 1e-14
    assert _rel(pm.power(base, 1.0 / 3.0), np.cbrt(base)) < 4e-15
    assert pm.power(0.0, 2.0) == 0.0 and pm.power(0.0, 0.0) == 1.0 and pm.power(0.0, -1.0) == np.inf
    assert np.isnan(pm.power(-1.0, 0.5))
    assert isinstance(pm.power(2.0, 0.5), float) and pm.power(np.array([4.0]), 0.5).shape == (1,)


def test_results_depend_on_the_inputs_only() -> None:
    """Same value whether computed alone, in a short array or deep in a long one (no SIMD tails)."""
    x = np.linspace(-7.3, 7.3, 1001)
    for f in (pm.sin, pm.cos, pm.arctan, pm.exp, pm.log1p):
        arg = np.abs(x) / 8 if f is pm.log1p else x
        whole = np.asarray(f(arg))
        singles = np.array([f(float(v)) for v in arg[::97]])
        assert np.array_equal(whole[::97], singles)
