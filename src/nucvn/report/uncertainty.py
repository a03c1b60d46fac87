"""Statistical errors of the summary figures of a classifier: AUC, balanced accuracy, the efficiency
at a fixed mis-identification, and differences between two classifiers scored on the same events.

The rates and their Clopper-Pearson intervals live in :mod:`nucvn.report.stats`; this module adds
what a comparison of models needs so that "better" can be read against the statistics:

* :func:`auc_and_error`: the AUC with DeLong's nonparametric standard error;
* :func:`balanced_accuracy_error`: errors of the signal efficiency and the background rejection
  (independent samples; Clopper-Pearson half-widths), combined: ``sqrt(var_s + var_b) / 2``;
* :func:`fom_error`: the delta-method error of efficiency x purity;
* :func:`efficiency_at_misid`: the highest efficiency whose threshold keeps the mis-identification
  of a chosen background at or below a limit (a point of the ROC curve), with the binomial error;
* :func:`paired_bootstrap`: the difference of any statistic between two score sets *on the same
  events*, resampling events (Efron & Tibshirani, An Introduction to the Bootstrap, 1993, ch. 6);
  the events are shared, so the error of the difference is much smaller than the two errors added
  in quadrature — the number that says whether a model is better than another.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats as sp_stats

from nucvn.report import stats

__all__ = ["auc_and_error", "balanced_accuracy_error", "fom_error", "OperatingPoint", "efficiency_at_misid",
           "paired_bootstrap"]


def auc_and_error(labels: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[float, float]:
    """AUC (:func:`nucvn.report.stats.auc`) and its standard error by DeLong's method.

    DeLong, DeLong & Clarke-Pearson, Biometrics 44 (1988) 837, with the midrank computation of
    Sun & Xu, IEEE Signal Process. Lett. 21 (2014) 1389: each signal event's fraction of background
    below it (``V10``) and each background event's fraction of signal above it (``V01``), then
    ``var = var(V10) / n_sig + var(V01) / n_bkg``. Unlike Hanley & McNeil's closed form, which
    assumes exponential score distributions and underestimates the error by ~25 % for the unequal
    class sizes here, it needs no model of the scores. NaN when either class has fewer than 2 events.
    """
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 < 2 or n0 < 2:
        return stats.auc(y, s) if n1 and n0 else float("nan"), float("nan")
    r_all = sp_stats.rankdata(s, method="average")
    r_sig = sp_stats.rankdata(s[y], method="average")
    r_bkg = sp_stats.rankdata(s[~y], method="average")
    v10 = (r_all[y] - r_sig) / n0
    v01 = 1.0 - (r_all[~y] - r_bkg) / n1
    auc = float(v10.mean())
    return auc, math.sqrt(v10.var(ddof=1) / n1 + v01.var(ddof=1) / n0)


def balanced_accuracy_error(efficiency: float, n_signal: int, rejection: float, n_background: int) -> float:
    """Standard error of ``(efficiency + rejection) / 2`` from independent signal and background.

    Each rate's error is the half-width of its 68.27 % Clopper-Pearson interval
    (:func:`nucvn.report.stats.clopper_pearson`), which equals the binomial ``sqrt(p (1 - p) / n)``
    for large counts and, unlike it, does not vanish when a rate is 0 or 1 (a cut that keeps every
    event is not known exactly); the two are added in quadrature and halved.
    """
    if n_signal < 1 or n_background < 1:
        return float("nan")
    half = []
    for rate, n in ((efficiency, n_signal), (rejection, n_background)):
        lo, hi = stats.clopper_pearson(round(rate * n), n)
        half.append(0.5 * (float(hi) - float(lo)))
    return 0.5 * math.hypot(*half)


def fom_error(tp: int, n_signal: int, n_selected: int) -> float:
    """Standard error of the figure of merit ``efficiency x purity = tp² / (n_signal n_selected)``.

    Delta method on the three counts it is made of, selected signal ``tp``, missed signal
    ``fn = n_signal - tp`` and selected background ``fp = n_selected - tp``, each with Poisson
    variance (the multinomial covariances are negligible against them when the sample is large):
    ``var(ln f) = tp (2/tp - 1/n_signal - 1/n_selected)² + fn / n_signal² + fp / n_selected²``.
    """
    if tp < 1 or n_signal < 1 or n_selected < 1:
        return float("nan")
    fn, fp = n_signal - tp, n_selected - tp
    var_log = tp * (2.0 / tp - 1.0 / n_signal - 1.0 / n_selected) ** 2 + fn / n_signal**2 + fp / n_selected**2
    return tp * tp / (n_signal * n_selected) * math.sqrt(var_log)


@dataclass(frozen=True)
class OperatingPoint:
    """The efficiency at the loosest threshold whose mis-identification stays within a limit."""

    threshold: float
    efficiency: float
    efficiency_error: float
    misid: float
    n_signal: int
    n_background: int


def efficiency_at_misid(is_signal: npt.ArrayLike, is_background: npt.ArrayLike, scores: npt.ArrayLike,
                        max_misid: float = 0.10) -> OperatingPoint:
    """Highest signal efficiency at ``score >= t`` with (selected background / background) <= ``max_misid``.

    ``is_background`` marks the background that counts (e.g. NC and νe CC); events in neither mask
    are ignored. The error is binomial on the signal count (the threshold is read off the same
    events, so this is a point of the ROC curve, like the AUC, not an independent measurement).
    """
    sig = np.asarray(is_signal, dtype=bool)
    bkg = np.asarray(is_background, dtype=bool) & ~sig
    s = np.asarray(scores, dtype=np.float64)
    n_s, n_b = int(sig.sum()), int(bkg.sum())
    if n_s == 0 or n_b == 0:
        return OperatingPoint(float("nan"), float("nan"), float("nan"), float("nan"), n_s, n_b)
    bkg_sorted = np.sort(s[bkg])[::-1]
    allowed = math.floor(max_misid * n_b + 1e-9)  # background events that may pass
    # the threshold just above the (allowed+1)-th highest background score passes at most `allowed`
    threshold = float(np.nextafter(bkg_sorted[allowed], np.inf)) if allowed < n_b else -np.inf
    eff = float((s[sig] >= threshold).mean())
    misid = float((s[bkg] >= threshold).mean())
    return OperatingPoint(threshold, eff, math.sqrt(eff * (1 - eff) / n_s), misid, n_s, n_b)


def paired_bootstrap(statistic: Callable[[npt.NDArray[np.intp]], tuple[float, float]], n_events: int, *,
                     n_boot: int = 300, seed: int = 0) -> tuple[float, float]:
    """Mean and standard deviation over bootstrap resamples of ``a - b``, where ``statistic(idx)``
    returns ``(a, b)`` computed on the events ``idx`` (the same resample for both)."""
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_boot)
    for i in range(n_boot):
        a, b = statistic(rng.integers(0, n_events, n_events))
        diffs[i] = a - b
    return float(np.nanmean(diffs)), float(np.nanstd(diffs, ddof=1))
