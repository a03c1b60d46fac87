"""nucvn.report.systematics: shifts of the selection between a nominal and a varied sample of the
same events, with paired statistical errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nucvn.core.errors import NucvnError
from nucvn.report import plots as P
from nucvn.report import systematics as S


def _sample(n: int, rng: np.random.Generator, *, flip_in: float, flip_out: float) -> tuple[np.ndarray, ...]:
    """Events drawn i.i.d.: 80 % signal (selected at 85 %), 10 % NC (5 %), 10 % other (10 %); the
    varied selection loses ``flip_out`` of the selected events and gains ``flip_in`` of the others."""
    u = rng.random(n)
    sig, nc = u < 0.8, (u >= 0.8) & (u < 0.9)
    nominal = rng.random(n) < np.where(sig, 0.85, np.where(nc, 0.05, 0.10))
    r = rng.random(n)
    varied = np.where(nominal, r >= flip_out, r < flip_in)
    return nominal, varied, sig, nc


def test_a_known_shift_is_recovered_with_its_paired_error() -> None:
    """Signal events flipped by hand give the exact shift; the error is the paired formula, far
    smaller than the nominal sample's own error."""
    n = 5000
    sig = np.zeros(n, bool)
    sig[:4000] = True
    nc = np.zeros(n, bool)
    nc[4000:4500] = True
    nominal = np.zeros(n, bool)
    nominal[:3200] = True      # efficiency 0.8
    nominal[4000:4050] = True  # NC mis-id 0.1
    varied = nominal.copy()
    varied[3200:3300] = True   # b = 100 signal gained
    varied[:20] = False        # c = 20 signal lost
    varied[4050:4075] = True   # 25 NC gained
    r = S.systematic_shifts(nominal, varied, sig, nc, n_boot=300)
    eff = r.shifts["efficiency"]
    assert eff.value == pytest.approx(80 / 4000)
    assert eff.error == pytest.approx(math.sqrt(120 - 80**2 / 4000) / 4000)
    assert r.flips["signal"] == (100, 20)
    assert r.shifts["nc_misid"].value == pytest.approx(25 / 500)
    assert r.shifts["nc_misid"].error == pytest.approx(math.sqrt(25 - 25**2 / 500) / 500)
    lo, hi = S.nominal_block(r.nominal)["efficiency_lo"], S.nominal_block(r.nominal)["efficiency_hi"]
    assert eff.error < 0.5 * (hi - lo)  # the same events: much smaller than the nominal's own error
    assert eff.nsigma == pytest.approx(eff.value / eff.error)
    purity_shift = 3280 / 3355 - 3200 / 3250
    assert r.shifts["purity"].value == pytest.approx(purity_shift)
    assert 0 < r.shifts["purity"].error < abs(purity_shift)
    m = r.metrics()
    assert m["efficiency"] == pytest.approx(3280 / 4000) and m["efficiency_shift"] == pytest.approx(0.02)


def test_errors_match_the_spread_of_repeated_samples() -> None:
    """Over many independent samples, the spread of each shift agrees with the error the method
    reports on one sample (closed form for the rates, bootstrap for the purity)."""
    rng = np.random.default_rng(7)
    shifts: dict[str, list[float]] = {q: [] for q in S.QUANTITIES}
    errors: dict[str, list[float]] = {q: [] for q in S.QUANTITIES}
    for i in range(120):
        r = S.systematic_shifts(*_sample(3000, rng, flip_in=0.03, flip_out=0.01), n_boot=150, seed=i)
        for q in S.QUANTITIES:
            shifts[q].append(r.shifts[q].value)
            errors[q].append(r.shifts[q].error)
    for q in S.QUANTITIES:
        spread, reported = float(np.std(shifts[q], ddof=1)), float(np.mean(errors[q]))
        assert reported == pytest.approx(spread, rel=0.25), q
    assert np.mean(shifts["efficiency"]) == pytest.approx(0.15 * 0.03 - 0.85 * 0.01, abs=0.001)


def test_identical_samples_have_zero_shift_and_zero_error() -> None:
    nominal, _, sig, nc = _sample(2000, np.random.default_rng(1), flip_in=0, flip_out=0)
    r = S.systematic_shifts(nominal, nominal.copy(), sig, nc)
    for q in S.QUANTITIES:
        assert r.shifts[q].value == 0.0 and r.shifts[q].error == 0.0, q
        assert math.isnan(r.shifts[q].nsigma)
    assert r.nominal == r.varied


def _events(n: int) -> pd.DataFrame:
    return pd.DataFrame({"run": np.full(n, 1001, np.uint32), "subrun": np.ones(n, np.uint32),
                         "evt": np.arange(n, dtype=np.uint32), "nuenergy": np.linspace(0.5, 10, n).astype(np.float32)})


def test_samples_of_other_events_are_refused() -> None:
    nominal, varied, sig, nc = _sample(200, np.random.default_rng(2), flip_in=0.1, flip_out=0.1)
    ok = S.systematic_shifts(nominal, varied, sig, nc, nominal_events=_events(200), varied_events=_events(200))
    assert ok.nominal.n_events == 200
    other = _events(200)
    other.loc[17, "nuenergy"] = 3.0
    with pytest.raises(NucvnError,
                       match=r"sample 'birks_up' differs from the nominal one in 'nuenergy' \(first at event 17\)"):
        S.systematic_shifts(nominal, varied, sig, nc, nominal_events=_events(200), varied_events=other, name="birks_up")
    with pytest.raises(NucvnError, match="has 150 events, the nominal 200"):
        S.check_same_events(_events(200), _events(150))
    with pytest.raises(NucvnError, match="the samples must hold the same events"):
        S.systematic_shifts(nominal, varied[:150], sig, nc)
    with pytest.raises(NucvnError, match="shares no identity column"):
        S.check_same_events(_events(5)[["evt"]].rename(columns={"evt": "x"}),
                            _events(5)[["evt"]].rename(columns={"evt": "y"}))


def test_selection_counts_and_nominal_intervals() -> None:
    sel = S.selected_events([1, 1, 0, 1, 1], [0.9, 0.2, 0.95, 0.5, 0.7], 0.5)
    assert sel.tolist() == [True, False, False, True, True]
    c = S.selection_counts(sel, [1, 1, 1, 0, 0], [0, 0, 0, 1, 0])
    assert (c.n_signal, c.n_nc, c.n_selected, c.selected_signal, c.selected_nc) == (3, 1, 3, 1, 1)
    block = S.nominal_block(c)
    for q, value in (("efficiency", 1 / 3), ("purity", 1 / 3), ("nc_misid", 1.0)):
        assert block[q] == pytest.approx(value)
        assert block[f"{q}_lo"] <= block[q] <= block[f"{q}_hi"]


def test_table_labels_and_figure(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    factors = {"calibration_up": {"gain_counts_per_pe": 1.05},
               "light_yield_down": {"pe_per_mip_far": 0.9, "gain_counts_per_pe": 1.1111}}
    results = {name: S.systematic_shifts(*_sample(1000, rng, flip_in=0.02, flip_out=0.01),
                                         n_boot=50) for name in factors}
    table = S.shifts_table(results, factors)
    assert list(table["label"]) == ["calibration up: gain +5 %", "light yield down: light -10 %, gain +11.1 %"]
    assert table.loc[0,
                     "efficiency_shift_pp"] == pytest.approx(100 * results["calibration_up"].shifts["efficiency"].value)
    nominal = S.nominal_block(results["calibration_up"].nominal)
    fig = S.shifts_figure(table, nominal, footer="simulation | test")
    assert len(fig.axes) == 3
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == list(table["label"])
    assert "simulation" in fig._suptitle.get_text()  # type: ignore[union-attr]
    assert P.save_figure(fig, tmp_path / "shifts.png").stat().st_size > 10_000
