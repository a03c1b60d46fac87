"""Tests for nucvn.report.regression: report of known residuals, the 2-D histogram, and figures."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import QuadMesh

from nucvn.core.errors import NucvnError
from nucvn.report import regression as G
from nucvn.report.resolution import STAT_COLUMNS
from nucvn.report.task_figures import SIMULATION_LABEL

BINS = [0.5, 1.0, 2.0, 5.0, 10.0, 50.0]
METRIC_KEYS = ["bias", "bias_err", "resolution_rms", "resolution_rms_err", "resolution_68", "resolution_68_err"]


@pytest.fixture(autouse=True)
def _close_all() -> None:
    yield
    plt.close("all")


def _events(n: int = 8000, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    true = np.exp(rng.uniform(np.log(0.5), np.log(50), n))
    flavour = np.array(["numu", "nue", "nc"])[rng.integers(0, 3, n)]
    mode = np.array(["QE", "RES", "DIS"])[rng.integers(0, 3, n)]
    return {
        "true": true,
        "reco": true * (1 + rng.normal(0.05, 0.1, n)),
        "base": true * (1 + rng.normal(0.0, 0.25, n)),
        "flavour": flavour,
        "mode": mode,
    }


def _report(ev: dict[str, np.ndarray], **kw):
    return G.regression_report(ev["reco"], ev["true"], residual="relative", energy=ev["true"], energy_bins=BINS,
                               groups={"flavour": ev["flavour"], "mode": ev["mode"]}, baseline=ev["base"],
                               quantity="neutrino energy", unit="GeV", n_boot=100, **kw)


def test_perfect_reconstruction_has_zero_bias_and_resolution() -> None:
    true = np.linspace(1, 10, 200)
    m, t = G.regression_report(true, true, residual="absolute", energy=true, energy_bins=BINS, groups={},
                               quantity="E", unit="GeV", n_boot=20)
    assert m["n"] == 200
    assert all(m[k] == 0.0 for k in METRIC_KEYS)
    assert "calorimetric_bias" not in m
    assert int(t["reco_vs_true"]["count"].sum()) == 200 and m["n_outside_reco_vs_true"] == 0
    diag = t["reco_vs_true"][t["reco_vs_true"]["true_lo"] == t["reco_vs_true"]["reco_lo"]]
    assert int(diag["count"].sum()) == 200  # every event on the diagonal


def test_known_gaussian_residuals_and_baseline() -> None:
    m, _ = _report(_events())
    assert set(METRIC_KEYS) <= set(m) and {f"calorimetric_{k}" for k in METRIC_KEYS} <= set(m)
    assert abs(m["bias"] - 0.05) < 4 * m["bias_err"]
    assert abs(m["resolution_rms"] - 0.1) < 4 * m["resolution_rms_err"]
    assert abs(m["resolution_68"] - 0.1) < 4 * m["resolution_68_err"]
    assert abs(m["calorimetric_bias"]) < 4 * m["calorimetric_bias_err"]
    assert abs(m["calorimetric_resolution_68"] - 0.25) < 4 * m["calorimetric_resolution_68_err"]
    assert (m["quantity"], m["unit"], m["residual"], m["n_bootstrap"]) == ("neutrino energy", "GeV", "relative", 100)


def test_tables_and_columns() -> None:
    m, t = _report(_events())
    assert list(t) == ["resolution_vs_nuenergy", "resolution_by_flavour", "resolution_by_mode", "reco_vs_true",
                       "reco_vs_true_calorimetric"]
    stats = list(STAT_COLUMNS) + [f"calorimetric_{c}" for c in STAT_COLUMNS]
    assert list(t["resolution_vs_nuenergy"].columns) == ["bin_low", "bin_high", "bin_centre", "n", *stats]
    assert list(t["resolution_by_flavour"].columns) == ["flavour", "n", *stats]
    assert t["resolution_by_mode"]["mode"].tolist() == ["DIS", "QE", "RES"]
    assert t["resolution_vs_nuenergy"]["n"].sum() == m["n"] == t["resolution_by_flavour"]["n"].sum()
    h = t["reco_vs_true"]
    assert list(h.columns) == ["true_lo", "true_hi", "reco_lo", "reco_hi", "count"]
    edges = np.unique(h["true_lo"])
    ratio = edges[1:] / edges[:-1]
    np.testing.assert_allclose(ratio, ratio[0])  # log-spaced energy bins
    assert int(h["count"].sum()) + m["n_outside_reco_vs_true"] == m["n"]


def test_errors_shrink_with_n() -> None:
    small, _ = _report(_events(1000, seed=1))
    large, _ = _report(_events(16000, seed=1))
    for key in ("bias_err", "resolution_rms_err", "resolution_68_err"):
        assert small[key] / large[key] == pytest.approx(4.0, rel=0.3), key


def test_empty_energy_bins_are_nan_rows() -> None:
    ev = _events(500)
    _, t = G.regression_report(ev["reco"], ev["true"], residual="relative", energy=ev["true"],
                               energy_bins=[0.5, 50, 100, 200],
                               groups={}, quantity="E", unit="GeV", n_boot=10)
    table = t["resolution_vs_nuenergy"]
    assert table["n"].tolist() == [500, 0, 0]
    assert table.loc[1:, list(STAT_COLUMNS)].isna().all().all()


def test_absolute_residual_and_explicit_bins() -> None:
    true = np.array([0.0, 0.5, 1.0])
    m, t = G.regression_report(true + 0.1, true, residual="absolute", energy=np.array([1.0, 2.0, 3.0]),
                               energy_bins=BINS,
                               groups={}, quantity="lepton fraction", unit="", reco_bins=[0.0, 0.5, 1.0], n_boot=0)
    assert m["bias"] == pytest.approx(0.1) and m["resolution_rms"] == pytest.approx(0.0, abs=1e-12)
    assert m["resolution_68_err"] is None  # no bootstrap: NaN -> None for JSON
    assert len(t["reco_vs_true"]) == 4 and m["n_outside_reco_vs_true"] == 1  # 1.1 is beyond the last edge


def test_relative_residual_refuses_zero_true() -> None:
    with pytest.raises(NucvnError, match="residual='absolute'"):
        G.regression_report(np.ones(2), np.array([1.0, 0.0]), residual="relative", energy=np.ones(2), energy_bins=BINS,
                            groups={}, quantity="E", unit="GeV")


def test_default_bins() -> None:
    edges = G.default_bins(np.array([1.0, 100.0]), n_bins=4, scale="log")
    np.testing.assert_allclose(edges, [1, 10**0.5, 10, 10**1.5, 100])
    np.testing.assert_allclose(G.default_bins(np.array([1.0, 100.0]), n_bins=2, scale="linear"), [1, 50.5, 100])
    rng = np.random.default_rng(0)
    spectrum = 0.3 + rng.exponential(2.0, 5000)  # falling energy spectrum: auto gives log bins
    auto = G.default_bins(spectrum, n_bins=10)
    np.testing.assert_allclose(auto[1:] / auto[:-1], auto[1] / auto[0])
    fraction = rng.uniform(0.001, 1.0, 5000)  # spread evenly: auto gives linear bins
    np.testing.assert_allclose(np.diff(G.default_bins(fraction, n_bins=10)), (fraction.max() - fraction.min()) / 10)
    np.testing.assert_allclose(G.default_bins(np.array([0.0, 1.0]), n_bins=2), [0, 0.5, 1])
    np.testing.assert_allclose(G.default_bins(np.array([2.0, 2.0]), n_bins=2), [1.5, 2.0, 2.5])
    assert G.default_bins(np.array([1.0, 2.0]), np.array([0.5, 40.0]), n_bins=3)[-1] > 30  # widened to the estimates


def _all_texts(fig) -> list[str]:
    return [t.get_text() for t in fig.texts] + [t.get_text() for ax in fig.axes for t in ax.texts]


def test_figures_log_axes_labels_and_series() -> None:
    _, tables = _report(_events())
    figs = dict(G.regression_figures(tables, quantity="neutrino energy", unit="GeV", footer="data: sim (test)"))
    assert list(figs) == ["resolution_vs_nuenergy", "resolution_by_flavour", "resolution_by_mode", "reco_vs_true"]
    for fig in figs.values():
        assert "data: sim (test)" in _all_texts(fig) and SIMULATION_LABEL in _all_texts(fig)
    bias_ax, res_ax = figs["resolution_vs_nuenergy"].axes
    assert bias_ax.get_xscale() == "log" and "GeV" in res_ax.get_xlabel()
    assert len(bias_ax.containers) == 2 and len(res_ax.containers) == 4  # CNN and baseline; w68 and RMS each
    assert [t.get_text() for t in bias_ax.get_legend().get_texts()] == ["CNN", "calorimetric"]
    assert "(reco − true) / true" in bias_ax.get_ylabel()
    hist_axes = [ax for ax in figs["reco_vs_true"].axes if ax.get_label() != "<colorbar>"]
    assert len(hist_axes) == 2  # CNN and the baseline side by side
    for ax in hist_axes:
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
        mesh = next(c for c in ax.collections if isinstance(c, QuadMesh))
        assert mesh.norm.__class__.__name__ == "LogNorm"
        assert any(line.get_label() == "reco = true" for line in ax.lines)
        assert "(GeV)" in ax.get_xlabel()
    assert len(figs["resolution_by_flavour"].axes[0].patches) == 6  # 3 flavours x (CNN, baseline)


def test_figures_of_absolute_dimensionless_quantity_are_linear() -> None:
    rng = np.random.default_rng(2)
    true = rng.uniform(0, 1, 1000)
    _, tables = G.regression_report(true + rng.normal(0, 0.05, 1000), true, residual="absolute",
                                    energy=rng.uniform(1, 5, 1000),
                                    energy_bins=[1, 2, 3, 5], groups={}, quantity="lepton fraction", unit="", n_boot=10)
    figs = dict(G.regression_figures(tables, quantity="lepton fraction", unit="", footer="", residual="absolute"))
    assert figs["resolution_vs_nuenergy"].axes[0].get_xscale() == "linear"
    assert figs["reco_vs_true"].axes[0].get_xscale() == "linear"
    assert figs["resolution_vs_nuenergy"].axes[0].get_ylabel() == "bias of reco − true"


def test_figures_with_empty_bins_do_not_crash() -> None:
    true = np.array([1.0, 1.5])
    _, tables = G.regression_report(true, true, residual="relative", energy=true, energy_bins=[0, 1, 2, 20, 100],
                                    groups={"g": ["a", "b"]},
                                    quantity="E", unit="GeV", n_boot=5)
    figs = dict(G.regression_figures(tables, quantity="E", unit="GeV", footer=""))
    assert figs["resolution_vs_nuenergy"].axes[0].get_xscale() == "symlog"  # bins start at 0


def test_empty_input_gives_none_and_figures_still_draw() -> None:
    empty = np.array([])
    m, t = G.regression_report(empty, empty, residual="relative", energy=empty, energy_bins=BINS,
                               groups={"flavour": empty.astype(str)},
                               baseline=empty, quantity="E", unit="GeV")
    assert m["n"] == 0 and m["bias"] is None and m["calorimetric_resolution_68"] is None
    assert len(t["resolution_by_flavour"]) == 0 and t["resolution_vs_nuenergy"]["n"].sum() == 0
    assert [name for name, _ in G.regression_figures(t, quantity="E", unit="GeV", footer="")] == [
        "resolution_vs_nuenergy", "resolution_by_flavour", "reco_vs_true"]
