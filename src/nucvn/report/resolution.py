"""Resolution statistics of a regression: bias, RMS and 68 % width of the residuals, each with its
statistical error.

This is the residual half of the project's statistics (:mod:`nucvn.report.stats` holds the counting
half; it is kept separate so each module stays one concept and under ~400 lines).

For residuals ``r_1..r_n`` (``r = (reco - true) / true`` or ``reco - true``, :func:`residuals`):

- **bias** = mean of ``r``; error ``s / sqrt(n)`` with ``s`` the sample standard deviation (ddof = 1);
- **rms** = RMS about the mean, ``sqrt(m2)`` with ``m2`` the second central moment (ddof = 0);
  error from the standard large-n formula (delta method on the variance of ``m2``; Cramér,
  *Mathematical Methods of Statistics* (1946) §27.7): ``sqrt((m4 - m2**2) / n) / (2 rms)``, with
  ``m4`` the fourth central moment; for a Gaussian this is ``sigma / sqrt(2 n)``;
- **w68** = half the width of the central 68.27 % interval of ``r``, ``(q(0.8413) - q(0.1587)) / 2``
  (sample quantiles, linear interpolation); robust to tails, equals ``sigma`` for a Gaussian. Its
  error is the standard deviation of w68 over ``n_boot`` bootstrap resamples (Efron, Ann. Statist.
  7 (1979) 1) drawn with a fixed seed, so the same input gives the same numbers on any machine.

Undefined values are NaN, never an exception: with ``n = 0`` everything is NaN; with ``n = 1`` the
bias is the residual and the rest NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from nucvn.core.errors import NucvnError
from nucvn.report.stats import ONE_SIGMA

__all__ = [
    "STAT_COLUMNS",
    "residuals",
    "resolution_stats",
    "binned_resolution",
    "grouped_resolution",
]

FloatArray = npt.NDArray[np.float64]

STAT_COLUMNS: tuple[str, ...] = ("bias", "bias_err", "rms", "rms_err", "w68", "w68_err")
"""Columns of a resolution table (after ``n``); a baseline's carry its name as prefix."""

_Q_LOW, _Q_HIGH = 0.5 - ONE_SIGMA / 2, 0.5 + ONE_SIGMA / 2
_BOOT_CHUNK = 4_000_000  # resampled values held in memory at once


def residuals(reco: npt.ArrayLike, true: npt.ArrayLike, *, kind: Literal["relative", "absolute"]) -> FloatArray:
    """``(reco - true) / true`` (relative) or ``reco - true`` (absolute), elementwise.

    Refuses (:class:`NucvnError`) mismatched lengths, values that are not finite, and a relative
    residual where ``true <= 0``: mask the events for which the quantity is not defined, or use
    ``absolute`` for quantities that can be 0 (e.g. a lepton energy fraction).
    """
    r_arr = np.asarray(reco, dtype=np.float64).reshape(-1)
    t_arr = np.asarray(true, dtype=np.float64).reshape(-1)
    if r_arr.shape != t_arr.shape:
        raise NucvnError(f"got {r_arr.size} reconstructed values for {t_arr.size} true values; "
                         "they must match one to one")
    if not (np.all(np.isfinite(r_arr)) and np.all(np.isfinite(t_arr))):
        raise NucvnError("reconstructed or true values contain NaN or inf; "
                         "mask the events where the quantity is undefined")
    if kind == "absolute":
        return r_arr - t_arr
    if kind != "relative":
        raise NucvnError(f"unknown residual kind {kind!r}; choose 'relative' or 'absolute'")
    bad = int(np.sum(t_arr <= 0))
    if bad:
        raise NucvnError(f"relative residual needs true values > 0, but {bad} are <= 0; mask them or use "
                         "residual='absolute'")
    return (r_arr - t_arr) / t_arr


def _w68(x: FloatArray, axis: int = -1) -> FloatArray:
    q = np.quantile(x, [_Q_LOW, _Q_HIGH], axis=axis)
    return 0.5 * (q[1] - q[0])


def _bootstrap_w68_err(r: FloatArray, n_boot: int, rng: np.random.Generator) -> float:
    n = r.size
    chunk = max(1, min(n_boot, _BOOT_CHUNK // n))
    widths = []
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        widths.append(_w68(r[idx], axis=1))
    return float(np.std(np.concatenate(widths), ddof=1))


def resolution_stats(r: npt.ArrayLike, *, n_boot: int = 200, seed: int = 0) -> dict[str, float | int]:
    """``n``, ``bias``, ``bias_err``, ``rms``, ``rms_err``, ``w68``, ``w68_err`` of residuals ``r``
    (methods in the module docstring). ``n_boot`` bootstrap resamples with generator ``seed`` give
    the w68 error (NaN with ``n_boot < 2``)."""
    x = np.asarray(r, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(x)):
        raise NucvnError("residuals contain NaN or inf")
    n = int(x.size)
    nan = float("nan")
    out: dict[str, float | int] = {"n": n, **dict.fromkeys(STAT_COLUMNS, nan)}
    if n == 0:
        return out
    mean = float(x.mean())
    out["bias"] = mean
    if n < 2:
        return out
    d = x - mean
    m2 = float(np.mean(d**2))
    m4 = float(np.mean(d**4))
    rms = float(np.sqrt(m2))
    s = np.sqrt(m2 * n / (n - 1))  # sample standard deviation, ddof = 1
    out["bias_err"] = float(s / np.sqrt(n))
    out["rms"] = rms
    out["rms_err"] = float(np.sqrt(max(m4 - m2**2, 0.0) / n) / (2.0 * rms)) if rms > 0 else 0.0
    out["w68"] = float(_w68(x))
    if n_boot >= 2:
        out["w68_err"] = _bootstrap_w68_err(x, n_boot, np.random.default_rng(seed))
    return out


def _table(r: FloatArray, masks: Sequence[npt.NDArray[np.bool_]], baseline: FloatArray | None, baseline_name: str,
           n_boot: int, seed: int) -> pd.DataFrame:
    rows = []
    for mask in masks:
        row: dict[str, float | int] = dict(resolution_stats(r[mask], n_boot=n_boot, seed=seed))
        if baseline is not None:
            base = resolution_stats(baseline[mask], n_boot=n_boot, seed=seed)
            row.update({f"{baseline_name}_{k}": base[k] for k in STAT_COLUMNS})
        rows.append(row)
    columns = ["n", *STAT_COLUMNS] + ([f"{baseline_name}_{k}" for k in STAT_COLUMNS] if baseline is not None else [])
    table = pd.DataFrame(rows, columns=columns)
    return table.astype({"n": np.int64})


def _check(r: npt.ArrayLike, other: npt.ArrayLike | None, what: str) -> tuple[FloatArray, FloatArray | None]:
    x = np.asarray(r, dtype=np.float64).reshape(-1)
    if other is None:
        return x, None
    o = np.asarray(other, dtype=np.float64).reshape(-1)
    if o.shape != x.shape:
        raise NucvnError(f"got {o.size} {what} values for {x.size} residuals; they must match one to one")
    return x, o


def binned_resolution(
    r: npt.ArrayLike,
    values: npt.ArrayLike,
    edges: Sequence[float],
    *,
    baseline: npt.ArrayLike | None = None,
    baseline_name: str = "baseline",
    n_boot: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """Resolution statistics of ``r`` in bins of ``values`` (e.g. the true neutrino energy).

    Bins are ``[e_i, e_{i+1})``, the last closed; values outside or NaN are not counted. Columns:
    ``bin_low``, ``bin_high``, ``bin_centre`` (arithmetic), ``n``, :data:`STAT_COLUMNS`, and the
    same statistics of the ``baseline`` residuals (same events) prefixed ``{baseline_name}_``.
    Empty bins are kept as rows of NaN.
    """
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or e.size < 2 or not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0):
        raise NucvnError(f"bin edges must be a strictly increasing list of at least 2 numbers, got {list(edges)}")
    x, base = _check(r, baseline, "baseline residual")
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.shape != x.shape:
        raise NucvnError(f"got {v.size} binning values for {x.size} residuals; they must match one to one")
    idx = np.full(v.shape, -1, dtype=np.int64)
    ok = np.isfinite(v) & (v >= e[0]) & (v <= e[-1])
    idx[ok] = np.clip(np.searchsorted(e, v[ok], side="right") - 1, 0, e.size - 2)
    masks = [idx == i for i in range(e.size - 1)]
    head = pd.DataFrame({"bin_low": e[:-1], "bin_high": e[1:], "bin_centre": 0.5 * (e[:-1] + e[1:])})
    return pd.concat([head, _table(x, masks, base, baseline_name, n_boot, seed)], axis=1)


def grouped_resolution(
    r: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    column: str,
    order: Sequence[str] | None = None,
    baseline: npt.ArrayLike | None = None,
    baseline_name: str = "baseline",
    n_boot: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """Resolution statistics of ``r`` per value of ``labels`` (e.g. flavour or interaction mode
    names), one row per value: ``order`` when given (values not in it are left out; values without
    events kept as NaN rows), else the sorted distinct values. Columns: ``{column}`` (the value as
    text), ``n``, :data:`STAT_COLUMNS` and the baseline's, as in :func:`binned_resolution`."""
    x, base = _check(r, baseline, "baseline residual")
    lab = np.asarray(labels).reshape(-1).astype(str)
    if lab.shape != x.shape:
        raise NucvnError(f"got {lab.size} {column} labels for {x.size} residuals; they must match one to one")
    values = [str(v) for v in order] if order is not None else sorted(set(lab.tolist()))
    table = _table(x, [lab == v for v in values], base, baseline_name, n_boot, seed)
    table.insert(0, column, values)
    return table
