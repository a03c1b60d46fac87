"""Errors of the summary figures: DeLong's AUC error against the spread over repeated
samples, the operating point at a mis-identification limit, the paired bootstrap."""

from __future__ import annotations

import numpy as np
import pytest

from nucvn.report import stats
from nucvn.report.uncertainty import (
    auc_and_error,
    balanced_accuracy_error,
    efficiency_at_misid,
    fom_error,
    paired_bootstrap,
)


def _sample(rng: np.random.Generator, n_sig: int, n_bkg: int, shift: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    y = np.r_[np.ones(n_sig, bool), np.zeros(n_bkg, bool)]
    return y, np.r_[rng.normal(shift, 1, n_sig), rng.normal(0, 1, n_bkg)]


def test_auc_error_matches_the_spread_of_repeated_samples() -> None:
    rng = np.random.default_rng(1)
    aucs, errs = [], []
    for _ in range(300):
        y, s = _sample(rng, 800, 120)
        a, e = auc_and_error(y, s)
        aucs.append(a)
        errs.append(e)
    assert np.mean(errs) == pytest.approx(np.std(aucs), rel=0.12)
    assert aucs[-1] == pytest.approx(stats.auc(y, s))
    assert np.isnan(auc_and_error(y[:-120], s[:-120])[0]) and np.isnan(auc_and_error(y[:801], s[:801])[1])


def test_balanced_accuracy_error_matches_the_spread_of_repeated_samples() -> None:
    rng = np.random.default_rng(2)
    values = []
    for _ in range(400):
        y, s = _sample(rng, 800, 120)
        sel = s >= 0.75
        values.append(0.5 * (sel[y].mean() + (~sel[~y]).mean()))
    y, s = _sample(np.random.default_rng(3), 800, 120)
    sel = s >= 0.75
    err = balanced_accuracy_error(sel[y].mean(), 800, (~sel[~y]).mean(), 120)
    assert err == pytest.approx(np.std(values), rel=0.2)


def test_fom_error_matches_the_spread_of_repeated_samples() -> None:
    rng = np.random.default_rng(5)
    values, errs = [], []
    for _ in range(400):
        y, s = _sample(rng, 800, 300, shift=1.0)
        sel = s >= 0.5
        tp = int(np.sum(sel & y))
        values.append(tp * tp / (800 * sel.sum()))
        errs.append(fom_error(tp, 800, int(sel.sum())))
    assert np.mean(errs) == pytest.approx(np.std(values), rel=0.15)
    assert np.isnan(fom_error(0, 10, 5)) and fom_error(10, 10, 10) == 0.0


def test_efficiency_at_misid_keeps_the_limit_and_is_the_loosest_such_cut() -> None:
    rng = np.random.default_rng(4)
    y, s = _sample(rng, 1000, 300)
    counted = np.zeros(y.size, bool)
    counted[1000:1200] = True  # 200 of the 300 background events count (e.g. NC and νe CC); the rest are ignored
    op = efficiency_at_misid(y, counted, s, 0.10)
    bkg = s[counted & ~y]
    assert op.misid <= 0.10 and (bkg >= op.threshold).sum() == 20
    looser = np.nextafter(np.sort(bkg)[::-1][20], -np.inf)  # one more background event would pass
    assert (bkg >= looser).mean() > 0.10
    assert op.efficiency == pytest.approx((s[y] >= op.threshold).mean())
    assert op.efficiency_error == pytest.approx(np.sqrt(op.efficiency * (1 - op.efficiency) / 1000))
    assert (op.n_signal, op.n_background) == (1000, 200)
    assert np.isnan(efficiency_at_misid(y, np.zeros_like(y), s).efficiency)


def test_paired_bootstrap_sees_a_difference_the_separate_errors_cannot() -> None:
    """Two classifiers on the same events, the second a little better: the paired error of the
    AUC difference is far below the two errors in quadrature, and identical scores give 0 ± 0."""
    rng = np.random.default_rng(5)
    y, s = _sample(rng, 2000, 300)
    better = s + np.where(y, 0.15, 0.0) + rng.normal(0, 0.1, y.size)
    stat = lambda i: (stats.auc(y[i], better[i]), stats.auc(y[i], s[i]))  # noqa: E731
    mean, err = paired_bootstrap(stat, y.size, n_boot=200)
    separate = np.hypot(auc_and_error(y, better)[1], auc_and_error(y, s)[1])
    assert mean > 3 * err and err < 0.5 * separate
    assert paired_bootstrap(lambda i: (stats.auc(y[i], s[i]),) * 2, y.size, n_boot=20) == (0.0, 0.0)
