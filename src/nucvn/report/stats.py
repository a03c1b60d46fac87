"""The one statistics module: counts, rates with Clopper-Pearson intervals, ROC/AUC, threshold choice.

Conventions (used everywhere in the project):

- an event is *selected* (predicted signal) when ``score >= threshold``;
- **efficiency** = TP / (TP + FN), the signal recall; **purity** = TP / (TP + FP), the precision;
  **background rejection** = TN / (TN + FP); **balanced accuracy** = (efficiency + rejection) / 2;
  **figure of merit** (fom) = efficiency x purity;
- a ratio with a zero denominator is NaN (never silently 0 or 1);
- every function that produces a rate from events first produces *counts* (:class:`Counts`, or
  ``(k, n)`` arrays from :func:`binned_counts`), and rates are computed from counts. Counts add up:
  sum them across files, batches or DDP ranks (``torch.distributed.all_reduce`` of
  :meth:`Counts.to_array`) and divide once at the end, never average rates.

Intervals are the exact binomial (Clopper-Pearson) central intervals, 68.27 % by default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from nucvn.core.errors import NucvnError

__all__ = [
    "ONE_SIGMA",
    "Counts",
    "confusion_counts",
    "ratio",
    "clopper_pearson",
    "efficiency",
    "purity",
    "background_rejection",
    "accuracy",
    "balanced_accuracy",
    "figure_of_merit",
    "rate_table",
    "binned_counts",
    "roc_curve",
    "auc",
    "auc_from_histograms",
    "threshold_scan",
    "CRITERIA",
    "CriterionName",
    "ThresholdChoice",
    "choose_threshold",
]

ONE_SIGMA = 0.6827
"""Default confidence level: the probability content of +-1 sigma of a Gaussian (68.27 %)."""

FloatArray = npt.NDArray[np.float64]


def _labels(labels: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    arr = np.asarray(labels).reshape(-1)
    if arr.dtype != np.bool_:
        if arr.size and not np.all((arr == 0) | (arr == 1)):
            raise NucvnError("labels must be boolean or 0/1 (signal = 1); got other values")
        arr = arr.astype(bool)
    return arr


def _scores(scores: npt.ArrayLike, n: int) -> FloatArray:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if s.shape[0] != n:
        raise NucvnError(f"got {s.shape[0]} scores for {n} labels; they must match one to one")
    if not np.all(np.isfinite(s)):
        raise NucvnError("scores contain NaN or inf; check the model output")
    return s


@dataclass(frozen=True)
class Counts:
    """Confusion-matrix counts, scalars or arrays of equal shape (e.g. one entry per threshold).

    Counts are additive: ``a + b`` combines two batches, files or DDP ranks exactly.
    """

    tp: npt.NDArray[np.int64]
    fp: npt.NDArray[np.int64]
    tn: npt.NDArray[np.int64]
    fn: npt.NDArray[np.int64]

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.fp + other.fp, self.tn + other.tn, self.fn + other.fn)

    @property
    def n_signal(self) -> npt.NDArray[np.int64]:
        return self.tp + self.fn

    @property
    def n_background(self) -> npt.NDArray[np.int64]:
        return self.tn + self.fp

    @property
    def n_selected(self) -> npt.NDArray[np.int64]:
        return self.tp + self.fp

    @property
    def total(self) -> npt.NDArray[np.int64]:
        return self.tp + self.fp + self.tn + self.fn

    def to_array(self) -> npt.NDArray[np.int64]:
        """Stack as ``(4, ...)`` int64 (order tp, fp, tn, fn), e.g. for an all-reduce across ranks."""
        return np.stack([np.asarray(x, dtype=np.int64) for x in (self.tp, self.fp, self.tn, self.fn)])

    @classmethod
    def from_array(cls, arr: npt.ArrayLike) -> Counts:
        """Inverse of :meth:`to_array`."""
        a = np.asarray(arr, dtype=np.int64)
        if a.shape[0] != 4:
            raise ValueError(f"counts array must have 4 rows (tp, fp, tn, fn), got shape {a.shape}")
        return cls(a[0], a[1], a[2], a[3])


def confusion_counts(labels: npt.ArrayLike, scores: npt.ArrayLike, thresholds: npt.ArrayLike) -> Counts:
    """Counts for every threshold at once (selected: ``score >= threshold``).

    Vectorised by sorting the scores once and counting with binary search: O((n + m) log n) for n
    events and m thresholds. A scalar threshold gives scalar counts.
    """
    y = _labels(labels)
    s = _scores(scores, y.shape[0])
    t = np.asarray(thresholds, dtype=np.float64)
    sig = np.sort(s[y])
    bkg = np.sort(s[~y])
    tp = sig.size - np.searchsorted(sig, t, side="left")
    fp = bkg.size - np.searchsorted(bkg, t, side="left")
    tp = np.asarray(tp, dtype=np.int64)
    fp = np.asarray(fp, dtype=np.int64)
    return Counts(tp=tp, fp=fp, tn=bkg.size - fp, fn=sig.size - tp)


def ratio(k: npt.ArrayLike, n: npt.ArrayLike) -> FloatArray:
    """``k / n`` elementwise, NaN where ``n == 0``."""
    k_arr = np.asarray(k, dtype=np.float64)
    n_arr = np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(n_arr > 0, k_arr / np.where(n_arr > 0, n_arr, 1.0), np.nan)
    return out[()] if out.ndim == 0 else out


def clopper_pearson(k: npt.ArrayLike, n: npt.ArrayLike, cl: float = ONE_SIGMA) -> tuple[FloatArray, FloatArray]:
    """Exact central binomial interval for ``k`` successes in ``n`` trials (Clopper & Pearson,
    Biometrika 26 (1934) 404).

    ``lower = B(a/2; k, n-k+1)`` and ``upper = B(1-a/2; k+1, n-k)`` with ``B`` the beta quantile
    and ``a = 1 - cl``. The bounds are exact at the edges: ``lower = 0`` when ``k = 0`` and
    ``upper = 1`` when ``k = n``; they always lie in [0, 1] and contain ``k / n``. With ``n = 0``
    nothing is known and the interval is [0, 1]. Works elementwise on arrays.
    """
    if not 0.0 < cl < 1.0:
        raise NucvnError(f"confidence level must lie in (0, 1), got {cl}")
    k_arr = np.asarray(k, dtype=np.float64)
    n_arr = np.asarray(n, dtype=np.float64)
    if np.any(k_arr < 0) or np.any(k_arr > n_arr):
        raise NucvnError("Clopper-Pearson needs 0 <= k <= n for every entry")
    alpha = 1.0 - cl
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = stats.beta.ppf(alpha / 2, k_arr, n_arr - k_arr + 1)
        hi = stats.beta.ppf(1 - alpha / 2, k_arr + 1, n_arr - k_arr)
    lo = np.where(k_arr <= 0, 0.0, lo)
    hi = np.where(k_arr >= n_arr, 1.0, hi)
    lo = np.clip(lo, 0.0, 1.0)
    hi = np.clip(hi, 0.0, 1.0)
    if lo.ndim == 0:
        return lo[()], hi[()]
    return lo, hi


def efficiency(c: Counts) -> FloatArray:
    """Signal efficiency (recall): TP / (TP + FN)."""
    return ratio(c.tp, c.n_signal)


def purity(c: Counts) -> FloatArray:
    """Purity (precision): TP / (TP + FP); NaN when nothing is selected."""
    return ratio(c.tp, c.n_selected)


def background_rejection(c: Counts) -> FloatArray:
    """Fraction of background not selected: TN / (TN + FP)."""
    return ratio(c.tn, c.n_background)


def accuracy(c: Counts) -> FloatArray:
    """(TP + TN) / all events. Depends on the signal fraction; prefer :func:`balanced_accuracy`."""
    return ratio(c.tp + c.tn, c.total)


def balanced_accuracy(c: Counts) -> FloatArray:
    """Mean of efficiency and background rejection; 0.5 for a score that carries no information,
    whatever the signal fraction."""
    return 0.5 * (efficiency(c) + background_rejection(c))


def figure_of_merit(c: Counts) -> FloatArray:
    """Efficiency x purity (the product maximised by a selection that wants both)."""
    return efficiency(c) * purity(c)


def rate_table(k: npt.ArrayLike, n: npt.ArrayLike, *, name: str = "rate", cl: float = ONE_SIGMA) -> pd.DataFrame:
    """Columns ``{name}``, ``{name}_lo``, ``{name}_hi`` (Clopper-Pearson), ``{name}_k``, ``{name}_n``."""
    k_arr = np.asarray(k, dtype=np.int64).reshape(-1)
    n_arr = np.asarray(n, dtype=np.int64).reshape(-1)
    lo, hi = clopper_pearson(k_arr, n_arr, cl)
    return pd.DataFrame(
        {name: ratio(k_arr, n_arr), f"{name}_lo": lo, f"{name}_hi": hi, f"{name}_k": k_arr, f"{name}_n": n_arr}
    )


def binned_counts(
    values: npt.ArrayLike, passed: npt.ArrayLike, edges: npt.ArrayLike
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per-bin ``(k, n)``: ``n`` events with ``values`` in each bin, ``k`` of them with ``passed``.

    Bins are ``[e_i, e_{i+1})`` with the last bin closed; values outside the edges or NaN are
    not counted. Efficiency vs x: values = x of signal events, passed = selected. Purity vs x:
    values = x of selected events, passed = is signal. Counts from several sources can be summed
    before dividing.
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    p = np.asarray(passed).reshape(-1).astype(bool)
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or e.size < 2 or np.any(np.diff(e) <= 0):
        raise NucvnError(f"bin edges must be a strictly increasing list of at least 2 numbers, got {e.tolist()}")
    if p.shape != x.shape:
        raise NucvnError(f"got {p.shape[0]} pass flags for {x.shape[0]} values")
    ok = np.isfinite(x)
    n, _ = np.histogram(x[ok], bins=e)
    k, _ = np.histogram(x[ok & p], bins=e)
    return k.astype(np.int64), n.astype(np.int64)


def roc_curve(labels: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Receiver operating characteristic: ``(fpr, tpr, thresholds)``.

    One point per distinct score (descending), preceded by ``(0, 0)`` at threshold ``+inf``; tied
    scores move together, so the curve has a diagonal step where signal and background tie.
    ``tpr`` is the efficiency and ``fpr = 1 - background rejection`` at ``score >= threshold``.
    """
    y = _labels(labels)
    s = _scores(scores, y.shape[0])
    thr = np.unique(s)[::-1]
    c = confusion_counts(y, s, thr)
    tpr = np.concatenate([[0.0], ratio(c.tp, c.n_signal)])
    fpr = np.concatenate([[0.0], ratio(c.fp, c.n_background)])
    return fpr, tpr, np.concatenate([[np.inf], thr])


def auc(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Area under the ROC curve from ranks (Mann-Whitney U / (n_sig n_bkg); Hanley & McNeil,
    Radiology 143 (1982) 29).

    Ties get average ranks, so a tied signal-background pair counts 1/2: constant scores give 0.5,
    perfect separation 1, inverted 0. NaN when either class is empty.
    """
    y = _labels(labels)
    s = _scores(scores, y.shape[0])
    n_sig = int(y.sum())
    n_bkg = y.size - n_sig
    if n_sig == 0 or n_bkg == 0:
        return float("nan")
    ranks = stats.rankdata(s, method="average")
    u = float(ranks[y].sum()) - n_sig * (n_sig + 1) / 2.0
    return u / (n_sig * n_bkg)


def auc_from_histograms(signal_counts: npt.ArrayLike, background_counts: npt.ArrayLike) -> float:
    """AUC from per-bin counts of signal and background scores over the same bins (ascending).

    Events sharing a bin count as ties (1/2), so this equals :func:`auc` of the scores rounded to
    their bin. Histograms add across batches and DDP ranks, so this is the AUC to use when the
    scores themselves are not gathered.
    """
    sig = np.asarray(signal_counts, dtype=np.float64).reshape(-1)
    bkg = np.asarray(background_counts, dtype=np.float64).reshape(-1)
    if sig.shape != bkg.shape:
        raise NucvnError(f"signal and background histograms differ in length ({sig.size} vs {bkg.size})")
    n_sig, n_bkg = sig.sum(), bkg.sum()
    if n_sig == 0 or n_bkg == 0:
        return float("nan")
    bkg_below = np.concatenate([[0.0], np.cumsum(bkg)[:-1]])
    return float(np.sum(sig * (bkg_below + 0.5 * bkg)) / (n_sig * n_bkg))


def threshold_scan(labels: npt.ArrayLike, scores: npt.ArrayLike, thresholds: npt.ArrayLike) -> pd.DataFrame:
    """Efficiency, purity, background rejection, balanced accuracy and fom at each threshold
    (vectorised), with the counts behind them."""
    t = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    if t.size == 0 or np.any(~np.isfinite(t)):
        raise NucvnError("threshold scan needs at least one finite threshold")
    c = confusion_counts(labels, scores, t)
    return pd.DataFrame(
        {
            "threshold": t,
            "efficiency": efficiency(c),
            "purity": purity(c),
            "background_rejection": background_rejection(c),
            "balanced_accuracy": balanced_accuracy(c),
            "fom": figure_of_merit(c),
            "tp": c.tp,
            "fp": c.fp,
            "tn": c.tn,
            "fn": c.fn,
        }
    )


CriterionName = Literal["balanced_accuracy", "fom", "efficiency", "purity"]


def _argmax(column: str) -> Callable[[pd.DataFrame, float | None], int]:
    def pick(scan: pd.DataFrame, target: float | None) -> int:
        v = scan[column].to_numpy(dtype=np.float64)
        if not np.any(np.isfinite(v)):
            raise NucvnError(f"criterion {column!r}: undefined at every threshold (need signal and background events)")
        return int(np.nanargmax(v))

    return pick


def _reach(
    column: str, better: Literal["higher_threshold", "lower_threshold"]
) -> Callable[[pd.DataFrame, float | None], int]:
    def pick(scan: pd.DataFrame, target: float | None) -> int:
        if target is None or not 0.0 < target <= 1.0:
            raise NucvnError(f"criterion {column!r} needs threshold.target in (0, 1], got {target!r}")
        v = scan[column].to_numpy(dtype=np.float64)
        ok = np.flatnonzero(np.isfinite(v) & (v >= target))
        if ok.size == 0:
            best = np.nanmax(v) if np.any(np.isfinite(v)) else float("nan")
            raise NucvnError(
                f"no threshold reaches {column} >= {target} (best {best:.4f}); lower threshold.target or choose "
                "another threshold.criterion"
            )
        t = scan["threshold"].to_numpy()
        return int(ok[np.argmax(t[ok])] if better == "higher_threshold" else ok[np.argmin(t[ok])])

    return pick


CRITERIA: dict[str, Callable[[pd.DataFrame, float | None], int]] = {
    "balanced_accuracy": _argmax("balanced_accuracy"),
    "fom": _argmax("fom"),
    "efficiency": _reach("efficiency", "higher_threshold"),
    "purity": _reach("purity", "lower_threshold"),
}
"""Threshold criteria by name: each picks a row of a :func:`threshold_scan`.

``balanced_accuracy`` and ``fom`` take the maximum (the lowest such threshold on ties);
``efficiency`` takes the highest threshold whose efficiency is still >= target (the purest selection
that keeps the wanted efficiency); ``purity`` takes the lowest threshold whose purity is >= target
(the most efficient selection that is pure enough).
"""


@dataclass(frozen=True)
class ThresholdChoice:
    """The chosen threshold and the figures at it on the data it was chosen on."""

    threshold: float
    criterion: str
    target: float | None
    efficiency: float
    purity: float
    background_rejection: float
    balanced_accuracy: float
    fom: float

    def to_dict(self) -> dict[str, float | str | None]:
        return dict(self.__dict__)


def choose_threshold(
    labels: npt.ArrayLike,
    scores: npt.ArrayLike,
    *,
    criterion: CriterionName = "balanced_accuracy",
    target: float | None = None,
    thresholds: npt.ArrayLike | None = None,
) -> tuple[ThresholdChoice, pd.DataFrame]:
    """Scan ``thresholds`` (default 1001 points on [0, 1]) and pick one by ``criterion`` from
    :data:`CRITERIA`; returns the choice and the scan. Unknown criterion -> :class:`NucvnError`.
    ``target`` is used (and recorded in the choice) only by ``efficiency`` and ``purity``."""
    if criterion not in CRITERIA:
        raise NucvnError(f"unknown threshold criterion {criterion!r}; choose one of {', '.join(CRITERIA)}")
    grid = np.linspace(0.0, 1.0, 1001) if thresholds is None else thresholds
    scan = threshold_scan(labels, scores, grid)
    row = scan.iloc[CRITERIA[criterion](scan, target)]
    choice = ThresholdChoice(
        threshold=float(row["threshold"]),
        criterion=criterion,
        target=None if target is None or criterion in ("balanced_accuracy", "fom") else float(target),
        efficiency=float(row["efficiency"]),
        purity=float(row["purity"]),
        background_rejection=float(row["background_rejection"]),
        balanced_accuracy=float(row["balanced_accuracy"]),
        fom=float(row["fom"]),
    )
    return choice, scan
