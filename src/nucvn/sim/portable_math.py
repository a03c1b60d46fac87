"""Elementary functions that give the same bits on every CPU: the simulation's only transcendentals.

numpy evaluates ``np.sin``, ``np.cos``, ``np.arctan``, ``np.exp``, ``np.log``, ``np.power`` ... with
code chosen at run time by the CPU's SIMD features (SVML on AVX-512, its own kernels or the C
library elsewhere). They agree to about one unit in the last place, not bit for bit, so the same
seed simulated different events on a CPU without AVX-512 (a momentum 4e-15 off moves a hit across a
cell edge, and the run's files, dvc.lock and metrics change). The functions here use only
operations that IEEE 754 defines exactly (``+ - * /``, ``sqrt``, ``rint``, ``ldexp``, ``frexp``),
one ufunc at a time (no fused multiply-add), so their results depend on the inputs alone.

Methods (Cody & Waite, *Software Manual for the Elementary Functions*, 1980; Muller, *Elementary
Functions*, 2016): additive range reduction with a split constant (π/2 in three parts, as in
fdlibm; ln 2 in two), then a Taylor polynomial on the reduced interval, evaluated by Horner's rule;
``arctan`` halves its angle twice (tan θ/2 = t / (1 + √(1 + t²))) before its series. The truncation
error is below 1e-17 relative on each reduced interval, and tests hold every function within 4e-15
relative of numpy's over the arguments the simulation uses. ``sin``/``cos``/``tan`` are meant for
|x| < 1e5 (angles), ``power`` for positive bases (computed as exp(y log x)).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = ["sin", "cos", "tan", "arctan", "exp", "expm1", "log", "log1p", "power"]

ArrayLike = npt.ArrayLike
F64 = npt.NDArray[np.float64]

_PIO2_1 = 1.57079632673412561417e00  # first 33 bits of pi/2: k * _PIO2_1 is exact for |k| < 2**20
_PIO2_2 = 6.07710050630396597660e-11
_PIO2_3 = 2.02226624871116645580e-21
_LN2_HI = 6.93147180369123816490e-01  # ln 2 with its low 32 bits zero: k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_EXP_TERMS = [1.0 / math.factorial(k) for k in range(14)]  # exp(r) = sum r^k / k!, |r| <= ln2 / 2
_SIN_TERMS = [(-1.0) ** k / math.factorial(2 * k + 1) for k in range(9)]  # |r| <= pi/4: to r^17
_COS_TERMS = [(-1.0) ** k / math.factorial(2 * k) for k in range(10)]  # to r^18
_LOG_TERMS = [1.0 / (2 * k + 1) for k in range(12)]  # atanh series of s = (m-1)/(m+1), |s| <= 0.172
_ATAN_TERMS = [(-1.0) ** k / (2 * k + 1) for k in range(13)]  # |t| <= tan(pi/16) ~ 0.199: to t^25


def _horner(coeffs: list[float], x: F64) -> F64:
    """sum coeffs[k] x^k, highest power first."""
    acc = np.full_like(x, coeffs[-1])
    for c in reversed(coeffs[:-1]):
        acc = acc * x + c
    return acc


def _out(x: ArrayLike, result: F64) -> F64 | float:
    return result if np.ndim(x) else float(result)


def _as_array(x: ArrayLike) -> F64:
    return np.asarray(x, dtype=np.float64)


def _quadrant(x: F64) -> tuple[F64, npt.NDArray[np.int64]]:
    """x = k pi/2 + r with |r| <= pi/4 (three-part Cody-Waite reduction); returns r and k mod 4."""
    k = np.rint(x * (2.0 / math.pi))
    r = ((x - k * _PIO2_1) - k * _PIO2_2) - k * _PIO2_3
    return r, (k.astype(np.int64) & 3)


def _sin_cos_reduced(r: F64) -> tuple[F64, F64]:
    r2 = r * r
    return r * _horner(_SIN_TERMS, r2), _horner(_COS_TERMS, r2)


def sin(x: ArrayLike) -> F64 | float:
    """sin x, the same bits on every CPU."""
    a = _as_array(x)
    r, q = _quadrant(a)
    s, c = _sin_cos_reduced(r)
    out = np.select([q == 0, q == 1, q == 2], [s, c, -s], -c)
    return _out(x, out)


def cos(x: ArrayLike) -> F64 | float:
    """cos x, the same bits on every CPU."""
    a = _as_array(x)
    r, q = _quadrant(a)
    s, c = _sin_cos_reduced(r)
    out = np.select([q == 0, q == 1, q == 2], [c, -s, -c], s)
    return _out(x, out)


def tan(x: ArrayLike) -> F64 | float:
    """tan x = sin x / cos x on the reduced argument (one division), the same bits on every CPU."""
    a = _as_array(x)
    r, q = _quadrant(a)
    s, c = _sin_cos_reduced(r)
    odd = (q & 1) == 1
    return _out(x, np.where(odd, -c / np.where(odd, s, 1.0), s / np.where(odd, 1.0, c)))


def arctan(x: ArrayLike) -> F64 | float:
    """arctan x in (-pi/2, pi/2): |x| > 1 through pi/2 - arctan(1/|x|), then two angle halvings."""
    a = _as_array(x)
    mag = np.abs(a)
    big = mag > 1.0
    t = np.where(big, 1.0 / np.where(big, mag, 1.0), mag)
    for _ in range(2):
        t = t / (1.0 + np.sqrt(1.0 + t * t))
    small = 4.0 * (t * _horner(_ATAN_TERMS, t * t))
    out = np.where(big, math.pi / 2 - small, small)
    return _out(x, np.copysign(out, a))


def exp(x: ArrayLike) -> F64 | float:
    """e^x: x = k ln 2 + r, |r| <= ln2/2, e^x = 2^k e^r (overflow to inf, underflow to 0)."""
    a = _as_array(x)
    clipped = np.clip(a, -1100.0, 1100.0)
    k = np.rint(clipped * (1.0 / math.log(2.0)))
    r = (clipped - k * _LN2_HI) - k * _LN2_LO
    with np.errstate(over="ignore", under="ignore"):
        out = np.ldexp(_horner(_EXP_TERMS, r), k.astype(np.int64))
    return _out(x, np.where(np.isnan(a), np.nan, out))


def expm1(x: ArrayLike) -> F64 | float:
    """e^x - 1, accurate near 0: (u - 1) x / log u with u = e^x (Kahan's correction)."""
    a = _as_array(x)
    u = _as_array(exp(a))
    um1 = u - 1.0
    plain = (um1 == 0.0) | (np.abs(a) > 0.5)
    with np.errstate(divide="ignore", invalid="ignore"):
        corrected = um1 * a / _as_array(log(np.where(plain, 2.0, u)))
    out = np.where(um1 == 0.0, a, np.where(plain, um1, corrected))
    return _out(x, out)


def log(x: ArrayLike) -> F64 | float:
    """Natural log: x = m 2^e with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh((m-1)/(m+1)).
    log 0 = -inf, negative or nan arguments give nan, log inf = inf."""
    a = _as_array(x)
    safe = np.where(np.isfinite(a) & (a > 0), a, 1.0)
    m, e = np.frexp(safe)
    low = m < math.sqrt(0.5)
    m = np.where(low, m * 2.0, m)
    e = (e - low).astype(np.float64)
    s = (m - 1.0) / (m + 1.0)
    log_m = 2.0 * (s * _horner(_LOG_TERMS, s * s))
    out = e * _LN2_HI + (e * _LN2_LO + log_m)
    out = np.where(a == 0, -np.inf, np.where(a == np.inf, np.inf, out))
    return _out(x, np.where((a < 0) | np.isnan(a), np.nan, out))


def log1p(x: ArrayLike) -> F64 | float:
    """log(1 + x), accurate near 0: log(u) x / (u - 1) with u = 1 + x (Goldberg, 1991)."""
    a = _as_array(x)
    u = 1.0 + a
    um1 = u - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(um1 == 0.0, a, _as_array(log(u)) * a / np.where(um1 == 0.0, 1.0, um1))
    return _out(x, np.where(np.isinf(a) & (a > 0), np.inf, out))


def power(x: ArrayLike, y: ArrayLike) -> F64 | float:
    """x^y for x >= 0 as exp(y log x) (0^y: 0, 1 or inf; negative x: nan). (Relative error grows like |y log x|
    ulp, about 1e-14 for the simulation's arguments.)"""
    a, b = np.broadcast_arrays(_as_array(x), _as_array(y))
    out = _as_array(exp(b * _as_array(log(np.where(a > 0, a, 1.0)))))
    at_zero = np.where(b > 0, 0.0, np.where(b == 0, 1.0, np.inf))
    out = np.where(a > 0, out, np.where(a == 0, at_zero, np.nan))
    return out if (np.ndim(x) or np.ndim(y)) else float(out)
