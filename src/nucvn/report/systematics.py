"""Detector systematics of the νμ CC selection: how it moves when the simulated response is shifted.

NOvA evaluates every selection on simulation made with systematically varied detector response
(calibration scale, light level, fibre attenuation, Birks quenching, noise) and takes the change
of the selected sample as the detector systematic uncertainty. Here the same is done with the fast
simulation: a *nominal* sample and one *varied* sample per variation are simulated with the same
seed, so they hold **the same generator events and the same particle transport** (per-event random
streams, :mod:`nucvn.sim.simulate`); only the readout of the deposited energy differs. Each sample
is scored by the same model and cut at the same threshold (chosen on the validation split) after
the same preselection; an event is *selected* when it is preselected and ``score >= threshold``.

Three quantities of each sample, computed from counts (:mod:`nucvn.report.stats` conventions):

* νμ CC **efficiency** = selected signal / all signal of the sample (the preselection is part of the
  selection, so a response change that moves events across a preselection cut counts);
* **purity** = selected signal / selected;
* **NC mis-identification** = selected NC / all NC.

The nominal values carry Clopper-Pearson intervals (the statistics of the sample). The *shift*
varied − nominal is measured on the same events, so only events whose selection flips contribute
to its statistical error, which is therefore much smaller than the error of either value:

* for the two rates (fixed denominator, the same events in both samples), the shift is
  ``(b - c) / n`` with ``b`` the events of the class selected only in the varied sample, ``c``
  those selected only in the nominal one and ``n`` the events of the class; its variance is the
  exact variance of a difference of paired proportions,
  ``var = (b + c - (b - c)² / n) / n²`` (McNemar, Psychometrika 12 (1947) 153; Agresti,
  Categorical Data Analysis, 3rd ed. 2013, §11.1), zero when no event flips;
* for the purity (a ratio whose denominator moves too), a paired bootstrap over events
  (:func:`nucvn.report.uncertainty.paired_bootstrap`, fixed seed, 400 resamples by default).

The shift in units of its error (``*_shift_nsigma``) says whether the response change moves the
selection beyond the statistics of the simulated sample; the shift itself is the systematic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine

from nucvn.core.errors import NucvnError
from nucvn.report import stats
from nucvn.report.plots import add_footer
from nucvn.report.uncertainty import paired_bootstrap

__all__ = [
    "EVENT_KEYS",
    "QUANTITIES",
    "Quantity",
    "SelectionCounts",
    "Shift",
    "SystematicShift",
    "check_same_events",
    "nominal_block",
    "selected_events",
    "selection_counts",
    "shift_summary",
    "shifts_figure",
    "shifts_table",
    "systematic_shifts",
    "variation_label",
]

Quantity = Literal["efficiency", "purity", "nc_misid"]
QUANTITIES: tuple[Quantity, ...] = ("efficiency", "purity", "nc_misid")
QUANTITY_LABELS: dict[str, str] = {"efficiency": r"$\nu_\mu$ CC efficiency", "purity": "purity",
                                   "nc_misid": "NC mis-identification"}
EVENT_KEYS: tuple[str, ...] = ("file", "index", "run", "subrun", "evt", "cycle", "subevt", "interaction",
                               "nuenergy", "lepenergy", "vtxx", "vtxy", "vtxz")
"""Columns that must agree between a nominal and a varied sample (those both carry): the event
identity and the generator truth, which a detector variation leaves untouched."""
FIELD_LABELS: dict[str, str] = {"gain_counts_per_pe": "gain", "pe_per_mip_far": "light",
                                "attenuation_length_cm": "attenuation length", "birks_kb_cm_mev": "Birks kB",
                                "noise_pe": "noise", "noise_hits_per_view": "noise hits"}
"""Short names of the readout fields in figure labels (others appear under their own name)."""

BoolArray = npt.NDArray[np.bool_]


def _mask(values: npt.ArrayLike, name: str, n: int | None = None) -> BoolArray:
    a = np.asarray(values).reshape(-1)
    if a.dtype != np.bool_:
        if a.size and not np.all((a == 0) | (a == 1)):
            raise NucvnError(f"systematics: {name} must be boolean or 0/1")
        a = a.astype(bool)
    if n is not None and a.shape[0] != n:
        raise NucvnError(f"systematics: {name} has {a.shape[0]} events, expected {n}; "
                         "the samples must hold the same events")
    return a


def selected_events(preselected: npt.ArrayLike, scores: npt.ArrayLike, threshold: float) -> BoolArray:
    """Events selected as νμ CC: preselected and ``score >= threshold``."""
    pre = _mask(preselected, "preselected")
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if s.shape[0] != pre.shape[0]:
        raise NucvnError(f"systematics: {s.shape[0]} scores for {pre.shape[0]} preselection flags; they must match")
    return pre & (s >= threshold)


@dataclass(frozen=True)
class SelectionCounts:
    """The counts one sample's three quantities are made of."""

    n_events: int
    n_signal: int
    n_nc: int
    n_selected: int
    selected_signal: int
    selected_nc: int

    def fraction(self, quantity: Quantity) -> tuple[int, int]:
        """``(k, n)`` of a quantity: the rate is ``k / n``."""
        return {"efficiency": (self.selected_signal, self.n_signal), "purity": (self.selected_signal, self.n_selected),
                "nc_misid": (self.selected_nc, self.n_nc)}[quantity]

    def value(self, quantity: Quantity) -> float:
        k, n = self.fraction(quantity)
        return k / n if n else float("nan")

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def selection_counts(selected: npt.ArrayLike, is_signal: npt.ArrayLike, is_nc: npt.ArrayLike) -> SelectionCounts:
    """Counts of a sample from its selection mask and the true class of each event."""
    sel = _mask(selected, "selected")
    sig, nc = _mask(is_signal, "is_signal", len(sel)), _mask(is_nc, "is_nc", len(sel))
    return SelectionCounts(n_events=len(sel), n_signal=int(sig.sum()), n_nc=int(nc.sum()), n_selected=int(sel.sum()),
                           selected_signal=int((sel & sig).sum()), selected_nc=int((sel & nc).sum()))


def check_same_events(nominal: pd.DataFrame, varied: pd.DataFrame, *, name: str = "varied") -> None:
    """Refuse (one :class:`NucvnError` line) a varied sample whose events are not the nominal
    sample's, in the same order: same length and equal :data:`EVENT_KEYS` columns (at least one
    must be shared)."""
    if len(nominal) != len(varied):
        raise NucvnError(f"systematics: sample {name!r} has {len(varied)} events, the nominal {len(nominal)}; "
                         "simulate both with the same seed, files and events")
    keys = [k for k in EVENT_KEYS if k in nominal.columns and k in varied.columns]
    if not keys:
        raise NucvnError(f"systematics: sample {name!r} shares no identity column ({', '.join(EVENT_KEYS[:7])}) "
                         "with the nominal one; cannot check they hold the same events")
    for k in keys:
        a, b = nominal[k].to_numpy(), varied[k].to_numpy()
        floats = a.dtype.kind == "f" and b.dtype.kind == "f"
        same = np.array_equal(a, b, equal_nan=True) if floats else np.array_equal(a, b)
        if not same:
            first = int(np.flatnonzero(a != b)[0]) if a.shape == b.shape and np.any(a != b) else 0
            raise NucvnError(f"systematics: sample {name!r} differs from the nominal one in {k!r} (first at event "
                             f"{first}); the samples must hold the same events in the same order (same seed)")


@dataclass(frozen=True)
class Shift:
    """varied − nominal of one quantity with its statistical error (same events in both)."""

    value: float
    error: float

    @property
    def nsigma(self) -> float:
        """The shift in units of its error (NaN when the error is 0 or unknown)."""
        return self.value / self.error if self.error > 0 else float("nan")


@dataclass(frozen=True)
class SystematicShift:
    """One variation against the nominal sample: both samples' counts and the three shifts."""

    nominal: SelectionCounts
    varied: SelectionCounts
    shifts: dict[str, Shift]
    flips: dict[str, tuple[int, int]]
    """Per class (``signal``, ``nc``, ``all``): events selected only in the varied sample, only in the nominal one."""

    def metrics(self) -> dict[str, float]:
        """The varied values, shifts, errors and shifts in units of error, as flat metrics."""
        out: dict[str, float] = {}
        for q in QUANTITIES:
            s = self.shifts[q]
            out |= {q: self.varied.value(q), f"{q}_shift": s.value, f"{q}_shift_err": s.error,
                    f"{q}_shift_nsigma": s.nsigma}
        return out


def _paired_rate_shift(nominal: BoolArray, varied: BoolArray, member: BoolArray) -> tuple[Shift, tuple[int, int]]:
    """Shift of ``selected & member / member`` with the exact paired-proportion variance."""
    n = int(member.sum())
    b = int((varied & ~nominal & member).sum())
    c = int((nominal & ~varied & member).sum())
    if n == 0:
        return Shift(float("nan"), float("nan")), (b, c)
    var = (b + c - (b - c) ** 2 / n) / n**2
    return Shift((b - c) / n, math.sqrt(max(var, 0.0))), (b, c)


def _purity_shift(nominal: BoolArray, varied: BoolArray, signal: BoolArray, *, n_boot: int, seed: int) -> Shift:
    def purity(sel: BoolArray, idx: npt.NDArray[np.intp] | slice) -> float:
        s = sel[idx]
        n = int(s.sum())
        return int((s & signal[idx]).sum()) / n if n else float("nan")

    value = purity(varied, slice(None)) - purity(nominal, slice(None))
    if len(signal) == 0 or not math.isfinite(value):
        return Shift(value, float("nan"))
    _, err = paired_bootstrap(lambda idx: (purity(varied, idx), purity(nominal, idx)), len(signal), n_boot=n_boot,
                              seed=seed)
    return Shift(value, err)


def systematic_shifts(nominal_selected: npt.ArrayLike, varied_selected: npt.ArrayLike, is_signal: npt.ArrayLike,
                      is_nc: npt.ArrayLike, *, nominal_events: pd.DataFrame | None = None,
                      varied_events: pd.DataFrame | None = None, name: str = "varied", n_boot: int = 400,
                      seed: int = 0) -> SystematicShift:
    """The shift of efficiency, purity and NC mis-identification from the nominal to a varied
    sample of the same events (masks in the same event order; ``is_signal``/``is_nc`` are the true
    classes, shared by both). With ``nominal_events``/``varied_events`` (their metadata) the events
    are first checked to be the same (:func:`check_same_events`)."""
    nom = _mask(nominal_selected, "nominal_selected")
    var = _mask(varied_selected, f"the selection of {name!r}", len(nom))
    sig, nc = _mask(is_signal, "is_signal", len(nom)), _mask(is_nc, "is_nc", len(nom))
    if nominal_events is not None and varied_events is not None:
        check_same_events(nominal_events, varied_events, name=name)
        if len(nominal_events) != len(nom):
            raise NucvnError(f"systematics: {len(nom)} selection flags for {len(nominal_events)} events; "
                             "they must match")
    eff, eff_flips = _paired_rate_shift(nom, var, sig)
    misid, nc_flips = _paired_rate_shift(nom, var, nc)
    pur = _purity_shift(nom, var, sig, n_boot=n_boot, seed=seed)
    everyone = np.ones(len(nom), dtype=bool)
    return SystematicShift(nominal=selection_counts(nom, sig, nc), varied=selection_counts(var, sig, nc),
                           shifts={"efficiency": eff, "purity": pur, "nc_misid": misid},
                           flips={"signal": eff_flips, "nc": nc_flips,
                                  "all": _paired_rate_shift(nom, var, everyone)[1]})


def nominal_block(counts: SelectionCounts, *, cl: float = stats.ONE_SIGMA) -> dict[str, float]:
    """The nominal sample's three quantities with Clopper-Pearson ``_lo``/``_hi`` bounds."""
    out: dict[str, float] = {}
    for q in QUANTITIES:
        k, n = counts.fraction(q)
        lo, hi = stats.clopper_pearson(k, n, cl=cl)
        out |= {q: counts.value(q), f"{q}_lo": float(lo), f"{q}_hi": float(hi)}
    return out


def variation_label(name: str, factors: Mapping[str, float]) -> str:
    """A readable label, e.g. ``calibration up: gain +5 %``."""
    parts = [f"{FIELD_LABELS.get(f, f)} {(x - 1) * 100:+.3g} %" for f, x in factors.items()]
    return f"{name.replace('_', ' ')}: {', '.join(parts)}"


def shifts_table(results: Mapping[str, SystematicShift], factors: Mapping[str, Mapping[str, float]]) -> pd.DataFrame:
    """One row per variation: label, factors, and each quantity's shift, error (percentage points)
    and shift in units of its error."""
    rows = []
    for name, r in results.items():
        row: dict[str, object] = {"variation": name, "label": variation_label(name, factors[name]),
                                  "factors": " ".join(f"{f}=x{x:g}" for f, x in factors[name].items())}
        for q in QUANTITIES:
            s = r.shifts[q]
            row |= {f"{q}_shift_pp": 100 * s.value, f"{q}_shift_err_pp": 100 * s.error, f"{q}_shift_nsigma": s.nsigma}
        rows.append(row)
    return pd.DataFrame(rows)


def shifts_figure(table: pd.DataFrame, nominal: Mapping[str, float], *, footer: str = "",
                  title: str = r"Detector systematics of the $\nu_\mu$ CC selection (simulation)") -> Figure:
    """One panel per quantity: the shift (percentage points) of each variation, with its
    statistical error, against a vertical line at 0; the nominal value is in each panel's title."""
    n = len(table)
    fig, axes = plt.subplots(1, len(QUANTITIES), figsize=(12.5, 2.0 + 0.42 * max(n, 1)), sharey=True,
                             layout="constrained")
    engine = fig.get_layout_engine()
    assert isinstance(engine, ConstrainedLayoutEngine)  # layout="constrained" above
    engine.set(h_pad=0.12)
    y = np.arange(n)[::-1].astype(np.float64)
    for i, (ax, q) in enumerate(zip(axes, QUANTITIES, strict=True)):
        x = table[f"{q}_shift_pp"].to_numpy(dtype=np.float64)
        err = table[f"{q}_shift_err_pp"].to_numpy(dtype=np.float64)
        ok = np.isfinite(x)
        ax.errorbar(x[ok], y[ok], xerr=np.where(np.isfinite(err), err, 0.0)[ok], fmt="o", ms=4, capsize=2,
                    color=f"C{i}", lw=1)
        ax.axvline(0.0, color="k", lw=0.8, ls="--")
        value = nominal.get(q, float("nan"))
        ax.set_title(f"{QUANTITY_LABELS[q]}\n(nominal {100 * value:.2f} %)", fontsize=10)
        ax.set_xlabel(f"Δ {QUANTITY_LABELS[q]} (percentage points)")
        ax.grid(alpha=0.3, axis="x")
        lim = float(np.nanmax(np.abs(np.concatenate([x[ok] + err[ok], x[ok] - err[ok]]))) if ok.any() else 0.0)
        if math.isfinite(lim) and lim > 0:
            ax.set_xlim(-1.15 * lim, 1.15 * lim)
    axes[0].set_yticks(y, list(table["label"]) if n else [])
    axes[0].set_ylim(-0.6, n - 0.4)
    fig.suptitle(title)
    add_footer(fig, footer)
    return fig


def shift_summary(result: SystematicShift, quantities: Sequence[Quantity] = QUANTITIES) -> str:
    """One line of shifts with errors in percentage points, for a stage's log."""
    return ", ".join(f"Δ{q} {100 * result.shifts[q].value:+.2f} ± {100 * result.shifts[q].error:.2f} pp"
                     for q in quantities)
