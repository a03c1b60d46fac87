"""Numbers as a physicist writes them: a value rounded to the precision of its statistical error.

The report (:mod:`nucvn.report.document`) prints every metric with its error as the metrics files
give it: ``x`` with ``x_err`` as ``0.9489 ± 0.0016``, ``x`` with a Clopper-Pearson interval
``x_lo``, ``x_hi`` as ``0.8656 [0.8634, 0.8677]``. The error is rounded by the Particle Data
Group's rule (Review of Particle Physics, Introduction, "Rounding"): look at its three leading
digits; 100-354 keep two significant digits, 355-949 keep one, 950-999 round up to 1000 and keep
two. The value is then given to the same decimal place. An interval is printed to the precision
of its half-width, ``(hi - lo) / 2``. Without a usable error (missing, zero, NaN) a number is
printed with four significant digits; a missing value (``null`` in JSON, e.g. the purity of a
class nothing was assigned to) as an em dash.

This lives apart from :mod:`nucvn.report.stats` because every stage depends on that module, so a
formatting change there would rerun the whole pipeline.
"""

from __future__ import annotations

import math
from typing import TypeGuard

__all__ = ["error_decimals", "format_number", "format_with_error", "format_interval", "format_change", "format_error",
           "MISSING"]

MISSING = "—"
"""How a value that does not exist (``null``, NaN) is printed."""


def _usable(x: object) -> TypeGuard[int | float]:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def error_decimals(error: float) -> int:
    """Decimal places to which a value with statistical error ``error`` (> 0) is quoted (PDG rule;
    negative means rounding to tens, hundreds, ...)."""
    if not _usable(error) or error <= 0:
        raise ValueError(f"error must be a positive finite number, got {error!r}")
    exponent = math.floor(math.log10(error))
    leading = round(error / 10.0 ** (exponent - 2))  # three leading digits, 100..1000
    if leading >= 950:  # 950-999 (or 1000 after rounding): up to 1000, two digits
        return 1 - (exponent + 1)
    return (2 if leading <= 354 else 1) - 1 - exponent


def _fixed(x: float, decimals: int) -> str:
    if decimals >= 0:
        return f"{x:.{decimals}f}"
    step = 10.0 ** (-decimals)
    return f"{math.floor(x / step + 0.5) * step:.0f}"


def format_number(value: object, *, digits: int = 4, signed: bool = False) -> str:
    """``value`` with ``digits`` significant digits (integers as they are); :data:`MISSING` if absent."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:+,d}" if signed else f"{value:,d}"
    if not _usable(value):
        return MISSING if value is None or isinstance(value, float) else str(value)
    if value == 0:
        return "0"
    text = f"{value:{'+' if signed else ''}.{digits}g}"
    return text.replace("e-0", "e-").replace("e+0", "e")


def format_with_error(value: object, error: object, *, signed: bool = False) -> str:
    """``"value ± error"`` rounded to the error's precision (PDG rule)."""
    if not _usable(value):
        return MISSING
    if not _usable(error) or error <= 0:
        return format_number(value, signed=signed) + (" ± 0" if error == 0 else "")
    d = error_decimals(error)
    sign = "+" if signed and value >= 0 else ""
    return f"{sign}{_fixed(value, d)} ± {_fixed(error, d)}"


def format_interval(value: object, lo: object, hi: object) -> str:
    """``"value [lo, hi]"`` to the precision of the interval's half-width."""
    if not (_usable(lo) and _usable(hi)):
        return format_number(value)
    half = (hi - lo) / 2
    d = error_decimals(half) if half > 0 else 4
    shown = _fixed(value, d) if _usable(value) else MISSING
    return f"{shown} [{_fixed(lo, d)}, {_fixed(hi, d)}]"


def format_change(change: object, sigma: float | None, *, signed: bool = True) -> str:
    """A number (a difference new − old: ``signed``) to the precision of the error ``sigma`` when
    there is one, else with four significant digits."""
    if not _usable(change):
        return MISSING
    if _usable(sigma) and sigma > 0:
        return f"{'+' if signed and change >= 0 else ''}{_fixed(change, error_decimals(sigma))}"
    return format_number(float(change), signed=signed)


def format_error(error: object) -> str:
    """An error alone, rounded by the PDG rule (``0.0030``, ``0.0023``)."""
    if not _usable(error) or error <= 0:
        return format_number(error)
    return _fixed(error, error_decimals(error))
