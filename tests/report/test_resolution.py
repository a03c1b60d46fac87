"""Tests for nucvn.report.resolution: residuals, bias/RMS/68 % width and their errors on residuals
of known distribution."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nucvn.core.errors import NucvnError
from nucvn.report import resolution as R


def test_residuals_relative_and_absolute() -> None:
    reco, true = np.array([1.1, 1.8, 5.0]), np.array([1.0, 2.0, 5.0])
    np.testing.assert_allclose(R.residuals(reco, true, kind="relative"), [0.1, -0.1, 0.0])
    np.testing.assert_allclose(R.residuals(reco, true, kind="absolute"), [0.1, -0.2, 0.0])


@pytest.mark.parametrize(
    ("reco", "true", "kind", "match"),
    [
        ([1.0, 2.0], [1.0], "absolute", "match one to one"),
        ([1.0, np.nan], [1.0, 1.0], "absolute", "NaN"),
        ([1.0, 1.0], [1.0, 0.0], "relative", "true values > 0"),
        ([1.0], [1.0], "ratio", "unknown residual kind"),
    ],
)
def test_residuals_refuse_bad_input(reco, true, kind, match) -> None:
    with pytest.raises(NucvnError, match=match):
        R.residuals(reco, true, kind=kind)


def test_perfect_prediction_has_zero_bias_and_width() -> None:
    s = R.resolution_stats(np.zeros(100))
    assert s["n"] == 100
    assert s["bias"] == 0.0 and s["bias_err"] == 0.0
    assert s["rms"] == 0.0 and s["rms_err"] == 0.0
    assert s["w68"] == 0.0 and s["w68_err"] == 0.0


def test_known_small_sample() -> None:
    r = np.array([-1.0, 1.0, -1.0, 1.0])
    s = R.resolution_stats(r, n_boot=0)
    assert s["bias"] == 0.0
    assert s["bias_err"] == pytest.approx(np.std(r, ddof=1) / 2)
    assert s["rms"] == pytest.approx(1.0)
    assert s["rms_err"] == pytest.approx(0.0)  # m4 = m2^2 for a two-point distribution
    assert np.isnan(s["w68_err"])  # no bootstrap asked for


def test_gaussian_residuals_recover_sigma_within_errors() -> None:
    sigma, mu, n = 0.15, 0.03, 40_000
    r = np.random.default_rng(1).normal(mu, sigma, n)
    s = R.resolution_stats(r, n_boot=300, seed=2)
    assert abs(s["bias"] - mu) < 4 * s["bias_err"]
    assert abs(s["rms"] - sigma) < 4 * s["rms_err"]
    assert abs(s["w68"] - sigma) < 4 * s["w68_err"]
    # the errors match their Gaussian expectations: s/sqrt(n), sigma/sqrt(2n), ~0.962 sigma/sqrt(n)
    assert s["bias_err"] == pytest.approx(sigma / np.sqrt(n), rel=0.02)
    assert s["rms_err"] == pytest.approx(sigma / np.sqrt(2 * n), rel=0.05)
    assert s["w68_err"] == pytest.approx(0.962 * sigma / np.sqrt(n), rel=0.2)


def test_w68_is_robust_to_tails_but_rms_is_not() -> None:
    rng = np.random.default_rng(3)
    r = np.concatenate([rng.normal(0, 0.1, 9_500), rng.normal(0, 2.0, 500)])
    s = R.resolution_stats(r, n_boot=50)
    assert s["w68"] == pytest.approx(0.105, abs=0.01)
    assert s["rms"] > 0.4


def test_errors_shrink_like_one_over_sqrt_n() -> None:
    rng = np.random.default_rng(4)
    small = R.resolution_stats(rng.normal(0, 1, 2_000), n_boot=400, seed=0)
    large = R.resolution_stats(rng.normal(0, 1, 8_000), n_boot=400, seed=0)
    for key, tol in (("bias_err", 0.1), ("rms_err", 0.15), ("w68_err", 0.3)):
        assert small[key] / large[key] == pytest.approx(2.0, rel=tol), key


def test_bootstrap_is_reproducible() -> None:
    r = np.random.default_rng(5).normal(0, 1, 500)
    assert R.resolution_stats(r, seed=7) == R.resolution_stats(r, seed=7)
    assert R.resolution_stats(r, seed=7)["w68_err"] != R.resolution_stats(r, seed=8)["w68_err"]


def test_empty_and_single_event() -> None:
    empty = R.resolution_stats(np.array([]))
    assert empty["n"] == 0 and all(np.isnan(empty[k]) for k in R.STAT_COLUMNS)
    one = R.resolution_stats(np.array([0.2]))
    assert one["bias"] == 0.2 and all(np.isnan(one[k]) for k in R.STAT_COLUMNS if k != "bias")


def test_binned_resolution_rows_and_empty_bins() -> None:
    rng = np.random.default_rng(6)
    x = np.concatenate([rng.uniform(1, 2, 1000), rng.uniform(5, 10, 1000)])
    r = np.where(x < 2, rng.normal(0, 0.1, x.size), rng.normal(0.2, 0.3, x.size))
    base = 2 * r
    t = R.binned_resolution(r, x, [1, 2, 5, 10], baseline=base, baseline_name="calo", n_boot=50)
    assert list(t.columns[:4]) == ["bin_low", "bin_high", "bin_centre", "n"]
    assert [f"calo_{c}" for c in R.STAT_COLUMNS] == list(t.columns[-6:])
    assert t["n"].tolist() == [1000, 0, 1000]
    assert t["w68"].iloc[0] == pytest.approx(0.1, rel=0.1) and t["bias"].iloc[2] == pytest.approx(0.2, abs=0.03)
    assert t.iloc[1][list(R.STAT_COLUMNS)].isna().all()
    np.testing.assert_allclose(t["calo_rms"], 2 * t["rms"])


def test_binned_resolution_counts_last_edge_and_drops_outside() -> None:
    t = R.binned_resolution(np.zeros(4), [1.0, 2.0, 3.0, 7.0], [1, 2, 3], n_boot=0)
    assert t["n"].tolist() == [1, 2]  # 3.0 is in the closed last bin, 7.0 outside


def test_grouped_resolution_order_and_missing_values() -> None:
    r = np.array([0.1, -0.1, 0.3, 0.3])
    labels = np.array(["QE", "QE", "DIS", "DIS"])
    t = R.grouped_resolution(r, labels, column="mode", n_boot=0)
    assert t["mode"].tolist() == ["DIS", "QE"] and t["bias"].tolist() == pytest.approx([0.3, 0.0])
    t = R.grouped_resolution(r, labels, column="mode", order=["QE", "RES", "DIS"], n_boot=0)
    assert t["mode"].tolist() == ["QE", "RES", "DIS"] and t["n"].tolist() == [2, 0, 2]
    assert np.isnan(t["bias"].iloc[1])
    assert isinstance(t, pd.DataFrame)


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(NucvnError, match="match one to one"):
        R.binned_resolution(np.zeros(3), np.zeros(2), [0, 1])
    with pytest.raises(NucvnError, match="match one to one"):
        R.grouped_resolution(np.zeros(3), ["a"], column="g")
    with pytest.raises(NucvnError, match="strictly increasing"):
        R.binned_resolution(np.zeros(3), np.zeros(3), [1, 0])
