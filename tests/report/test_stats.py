"""Tests for nucvn.report.stats: known values, scipy cross-checks and property tests."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from nucvn.core.errors import NucvnError
from nucvn.report.stats import (
    CRITERIA,
    Counts,
    accuracy,
    auc,
    auc_from_histograms,
    background_rejection,
    balanced_accuracy,
    binned_counts,
    choose_threshold,
    clopper_pearson,
    confusion_counts,
    efficiency,
    figure_of_merit,
    purity,
    rate_table,
    ratio,
    roc_curve,
    threshold_scan,
)

# ---------------------------------------------------------------- Clopper-Pearson


def test_cp_zero_of_n_is_exact() -> None:
    lo, hi = clopper_pearson(0, 10)
    assert lo == 0.0
    # one-sided edge: upper = 1 - (alpha/2)^(1/n)
    alpha = 1 - 0.6827
    assert hi == pytest.approx(1 - (alpha / 2) ** (1 / 10), rel=1e-10)


def test_cp_n_of_n_is_exact() -> None:
    lo, hi = clopper_pearson(10, 10)
    assert hi == 1.0
    alpha = 1 - 0.6827
    assert lo == pytest.approx((alpha / 2) ** (1 / 10), rel=1e-10)


@pytest.mark.parametrize(("k", "n", "cl"), [(3, 10, 0.6827), (50, 100, 0.95), (1, 2, 0.9), (999, 1000, 0.6827)])
def test_cp_matches_scipy_beta_quantiles(k: int, n: int, cl: float) -> None:
    lo, hi = clopper_pearson(k, n, cl)
    a = 1 - cl
    assert lo == pytest.approx(stats.beta.ppf(a / 2, k, n - k + 1), rel=1e-12)
    assert hi == pytest.approx(stats.beta.ppf(1 - a / 2, k + 1, n - k), rel=1e-12)


def test_cp_known_textbook_value() -> None:
    # 95 % CP interval for 5 of 10 is (0.1871, 0.8129) (e.g. Brown, Cai, DasGupta 2001, table values)
    lo, hi = clopper_pearson(5, 10, 0.95)
    assert lo == pytest.approx(0.1871, abs=1e-4)
    assert hi == pytest.approx(0.8129, abs=1e-4)


def test_cp_empty_and_invalid() -> None:
    assert clopper_pearson(0, 0) == (0.0, 1.0)
    with pytest.raises(NucvnError):
        clopper_pearson(5, 3)
    with pytest.raises(NucvnError, match="confidence level"):
        clopper_pearson(1, 3, cl=1.5)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 2000), frac=st.floats(0, 1), cl=st.floats(0.05, 0.999))
def test_cp_bounds_and_coverage_of_estimate(n: int, frac: float, cl: float) -> None:
    k = round(frac * n)
    lo, hi = clopper_pearson(k, n, cl)
    assert 0.0 <= lo <= hi <= 1.0
    if n > 0:
        assert lo <= k / n <= hi


def test_cp_vectorised_matches_scalar_and_shrinks_with_n() -> None:
    k = np.array([0, 5, 50, 500])
    n = np.array([10, 10, 100, 1000])
    lo, hi = clopper_pearson(k, n)
    for i in range(4):
        assert (lo[i], hi[i]) == pytest.approx(clopper_pearson(int(k[i]), int(n[i])))
    widths = hi[1:] - lo[1:]
    assert np.all(np.diff(widths) < 0)


def test_cp_coverage_is_at_least_nominal() -> None:
    # exact interval: coverage >= cl for every true p (checked by summing binomial probabilities)
    n = 30
    ks = np.arange(n + 1)
    lo, hi = clopper_pearson(ks, np.full(n + 1, n))
    for p in np.linspace(0.01, 0.99, 37):
        covered = (lo <= p) & (p <= hi)
        assert stats.binom.pmf(ks[covered], n, p).sum() >= 0.6827 - 1e-9


# ---------------------------------------------------------------- counts and rates


def test_counts_rates_known_values() -> None:
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.3, 0.6, 0.7, 0.1, 0.2, 0.4, 0.0, 0.5])
    c = confusion_counts(labels, scores, 0.5)
    assert (int(c.tp), int(c.fp), int(c.tn), int(c.fn)) == (3, 2, 4, 1)
    assert efficiency(c) == pytest.approx(0.75)
    assert purity(c) == pytest.approx(0.6)
    assert background_rejection(c) == pytest.approx(4 / 6)
    assert accuracy(c) == pytest.approx(0.7)
    assert balanced_accuracy(c) == pytest.approx((0.75 + 4 / 6) / 2)
    assert figure_of_merit(c) == pytest.approx(0.45)


def test_counts_add_like_concatenation() -> None:
    rng = np.random.default_rng(1)
    y = rng.random(200) < 0.3
    s = rng.random(200)
    t = np.linspace(0, 1, 11)
    whole = confusion_counts(y, s, t)
    parts = confusion_counts(y[:70], s[:70], t) + confusion_counts(y[70:], s[70:], t)
    np.testing.assert_array_equal(whole.to_array(), parts.to_array())
    np.testing.assert_array_equal(Counts.from_array(whole.to_array()).tp, whole.tp)


def test_ratio_zero_denominator_is_nan() -> None:
    assert np.isnan(ratio(0, 0))
    np.testing.assert_array_equal(ratio([1, 0], [2, 0])[:1], [0.5])
    c = confusion_counts([0, 0], [0.1, 0.2], 0.9)
    assert np.isnan(purity(c)) and np.isnan(efficiency(c))


def test_bad_inputs_raise() -> None:
    with pytest.raises(NucvnError, match="scores"):
        confusion_counts([1, 0], [0.5], 0.5)
    with pytest.raises(NucvnError, match="NaN"):
        auc([1, 0], [np.nan, 0.1])
    with pytest.raises(NucvnError, match="0/1"):
        auc([2, 0], [0.3, 0.1])


def test_rate_table_columns() -> None:
    tab = rate_table([0, 3], [4, 3], name="efficiency")
    assert list(tab.columns) == ["efficiency", "efficiency_lo", "efficiency_hi", "efficiency_k", "efficiency_n"]
    assert tab["efficiency_lo"][0] == 0.0 and tab["efficiency_hi"][1] == 1.0


def test_binned_counts_aggregate_then_divide() -> None:
    x = np.array([0.5, 1.5, 1.5, 2.5, 3.0, np.nan, 9.0])
    passed = np.array([1, 1, 0, 1, 0, 1, 1], bool)
    k, n = binned_counts(x, passed, [0, 1, 2, 3])
    np.testing.assert_array_equal(n, [1, 2, 2])  # 3.0 goes in the last, closed bin; NaN and 9 dropped
    np.testing.assert_array_equal(k, [1, 1, 1])
    k1, n1 = binned_counts(x[:3], passed[:3], [0, 1, 2, 3])
    k2, n2 = binned_counts(x[3:], passed[3:], [0, 1, 2, 3])
    np.testing.assert_array_equal(k1 + k2, k)
    np.testing.assert_array_equal(n1 + n2, n)
    with pytest.raises(NucvnError, match="increasing"):
        binned_counts(x, passed, [0, 2, 1])


# ---------------------------------------------------------------- ROC and AUC


def test_auc_perfect_inverted_constant() -> None:
    y = np.array([0, 0, 0, 1, 1])
    assert auc(y, [0.1, 0.2, 0.3, 0.8, 0.9]) == 1.0
    assert auc(y, [0.9, 0.8, 0.7, 0.2, 0.1]) == 0.0
    assert auc(y, np.full(5, 0.4)) == 0.5
    assert np.isnan(auc([1, 1], [0.1, 0.2]))


def test_auc_ties_count_half() -> None:
    # one signal tied with one of two backgrounds, above the other: U = 1 + 0.5
    assert auc([1, 0, 0], [0.5, 0.5, 0.1]) == pytest.approx(0.75)


def test_auc_equals_roc_trapezoid_and_mann_whitney() -> None:
    rng = np.random.default_rng(3)
    y = rng.random(500) < 0.4
    s = np.round(rng.normal(y.astype(float), 1.0), 1)  # many ties
    fpr, tpr, thr = roc_curve(y, s)
    assert np.trapezoid(tpr, fpr) == pytest.approx(auc(y, s), abs=1e-12)
    u = stats.mannwhitneyu(s[y], s[~y]).statistic
    assert auc(y, s) == pytest.approx(u / (y.sum() * (~y).sum()))
    assert fpr[0] == 0 and tpr[0] == 0 and fpr[-1] == 1 and tpr[-1] == 1
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0) and np.all(np.diff(thr) < 0)


def test_auc_from_histograms_matches_binned_scores() -> None:
    rng = np.random.default_rng(4)
    y = rng.random(400) < 0.5
    s = rng.random(400) * 0.5 + 0.4 * y
    edges = np.linspace(0, 1, 21)
    binned = np.clip(np.digitize(s, edges) - 1, 0, 19)
    hs = np.bincount(binned[y], minlength=20)
    hb = np.bincount(binned[~y], minlength=20)
    assert auc_from_histograms(hs, hb) == pytest.approx(auc(y, binned.astype(float)))


@settings(max_examples=40, deadline=None)
@given(
    y=st.lists(st.booleans(), min_size=2, max_size=60),
    seed=st.integers(0, 2**31),
)
def test_auc_properties(y: list[bool], seed: int) -> None:
    lab = np.array(y)
    if lab.all() or not lab.any():
        return
    s = np.random.default_rng(seed).random(lab.size)
    a = auc(lab, s)
    assert 0.0 <= a <= 1.0
    assert auc(lab, -s) == pytest.approx(1 - a)  # inverting the score mirrors the AUC
    assert auc(lab, lab.astype(float)) == 1.0
    assert auc(lab, 2 * s + 3) == pytest.approx(a)  # invariant under monotonic maps


def test_auc_random_scores_near_half() -> None:
    rng = np.random.default_rng(5)
    y = rng.random(20000) < 0.3
    assert auc(y, rng.random(20000)) == pytest.approx(0.5, abs=0.02)


# ---------------------------------------------------------------- threshold scan and criteria


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(2, 300))
def test_scan_efficiency_monotonic_and_bounded(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.5
    s = rng.random(n)
    t = np.sort(rng.random(50))
    scan = threshold_scan(y, s, t)
    for col in ("efficiency", "background_rejection"):
        v = scan[col].to_numpy()
        if np.all(np.isfinite(v)):
            diffs = np.diff(v)
            assert np.all(diffs <= 0) if col == "efficiency" else np.all(diffs >= 0)
    for col in ("efficiency", "purity", "balanced_accuracy", "fom"):
        v = scan[col].dropna().to_numpy()
        assert np.all((v >= 0) & (v <= 1))
    # counts are consistent with a direct loop
    i = n % 50
    sel = s >= t[i]
    assert scan["tp"][i] == np.sum(sel & y) and scan["fp"][i] == np.sum(sel & ~y)


def _separable() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    y = rng.random(4000) < 0.3
    s = np.clip(rng.normal(np.where(y, 0.7, 0.3), 0.15), 0, 1)
    return y, s


def test_criteria_behaviour() -> None:
    y, s = _separable()
    ba, scan = choose_threshold(y, s)
    assert ba.criterion == "balanced_accuracy"
    assert ba.balanced_accuracy == pytest.approx(scan["balanced_accuracy"].max())
    assert 0.4 < ba.threshold < 0.6  # equal-width Gaussians at 0.3 and 0.7 cross at 0.5

    eff, _ = choose_threshold(y, s, criterion="efficiency", target=0.95)
    assert eff.efficiency >= 0.95
    above = scan[scan["threshold"] > eff.threshold]
    assert (above["efficiency"] < 0.95).all()  # the highest threshold that keeps the target

    pur, _ = choose_threshold(y, s, criterion="purity", target=0.9)
    assert pur.purity >= 0.9
    below = scan[scan["threshold"] < pur.threshold]
    assert (below["purity"] < 0.9).all()

    fom, _ = choose_threshold(y, s, criterion="fom")
    assert fom.fom == pytest.approx(np.nanmax(scan["fom"]))
    assert eff.threshold < ba.threshold < pur.threshold


def test_criteria_errors() -> None:
    y, s = _separable()
    with pytest.raises(NucvnError, match="balanced_accuracy, fom, efficiency, purity"):
        choose_threshold(y, s, criterion="best")  # type: ignore[arg-type]
    with pytest.raises(NucvnError, match=re.escape("threshold.target")):
        choose_threshold(y, s, criterion="efficiency")
    with pytest.raises(NucvnError, match="no threshold reaches purity"):
        choose_threshold(y, np.full(y.size, 0.5), criterion="purity", target=0.99)
    assert set(CRITERIA) == {"balanced_accuracy", "fom", "efficiency", "purity"}
