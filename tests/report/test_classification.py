"""Tests for nucvn.report.classification: metrics and tables of known confusion matrices, and the
figures drawn from them."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from nucvn.core.errors import NucvnError
from nucvn.report import classification as C
from nucvn.report.stats import clopper_pearson
from nucvn.report.task_figures import SIMULATION_LABEL

CLASSES = ["numu", "nue", "nc"]
BINS = [0.5, 1.0, 2.0, 5.0, 10.0, 50.0]


@pytest.fixture(autouse=True)
def _close_all() -> None:
    yield
    plt.close("all")


def _known() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """numu: 3 of 4 right (1 called nue); nue: 2 of 2 right; nc: 1 of 2 (1 called nue)."""
    true = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    pred = np.array([0, 0, 0, 1, 1, 1, 2, 1])
    energy = np.array([0.7, 0.7, 3.0, 3.0, 0.7, 20.0, 3.0, 20.0])
    return true, pred, energy


def test_known_confusion_matrix() -> None:
    true, pred, _ = _known()
    np.testing.assert_array_equal(C.confusion_matrix_counts(true, pred, 3), [[3, 1, 0], [0, 2, 0], [0, 1, 1]])


def test_metrics_of_known_predictions() -> None:
    true, pred, energy = _known()
    metrics, _ = C.classification_report(true, pred, CLASSES, energy=energy, energy_bins=BINS)
    assert metrics["n"] == 8 and metrics["accuracy"] == pytest.approx(6 / 8)
    lo, hi = clopper_pearson(6, 8)
    assert (metrics["accuracy_lo"], metrics["accuracy_hi"]) == pytest.approx((lo, hi))
    numu, nue, nc = (metrics["per_class"][c] for c in CLASSES)
    assert numu["efficiency"] == pytest.approx(0.75) and numu["purity"] == 1.0 and numu["purity_hi"] == 1.0
    assert nue["efficiency"] == 1.0 and nue["purity"] == pytest.approx(0.5)
    assert (nue["n_true"], nue["n_predicted"], nue["n_correct"]) == (2, 4, 2)
    assert nc["efficiency"] == pytest.approx(0.5)
    for c in metrics["per_class"].values():
        assert c["efficiency_lo"] <= c["efficiency"] <= c["efficiency_hi"]
        assert c["purity_lo"] <= c["purity"] <= c["purity_hi"]


def test_perfect_prediction_gives_efficiency_and_purity_one() -> None:
    true = np.repeat([0, 1, 2], 50)
    metrics, tables = C.classification_report(true, true, CLASSES, energy=np.full(150, 3.0), energy_bins=BINS)
    assert metrics["accuracy"] == 1.0 and metrics["accuracy_hi"] == 1.0 and metrics["accuracy_lo"] < 1.0
    assert all(c["efficiency"] == 1.0 and c["purity"] == 1.0 for c in metrics["per_class"].values())
    cm = tables["confusion_matrix"]
    assert cm.loc[cm["true_class"] == cm["predicted_class"], "fraction"].tolist() == [1.0, 1.0, 1.0]


def test_class_never_predicted_has_undefined_purity() -> None:
    true, pred = np.array([0, 1, 2]), np.array([0, 0, 0])
    metrics, tables = C.classification_report(true, pred, CLASSES, energy=np.ones(3), energy_bins=BINS)
    assert metrics["per_class"]["nue"]["purity"] is None
    assert metrics["per_class"]["nue"]["efficiency"] == 0.0
    assert np.isnan(tables["per_class"].loc[1, "purity"])


def test_tables() -> None:
    true, pred, energy = _known()
    _, t = C.classification_report(true, pred, CLASSES, energy=energy, energy_bins=BINS)
    assert list(t) == ["confusion", "confusion_matrix", "per_class", "efficiency_vs_nuenergy"]
    conf = t["confusion"]
    assert list(conf.columns) == ["actual", "predicted", "count"] and len(conf) == 9 and conf["count"].sum() == 8
    assert conf[(conf["actual"] == "numu") & (conf["predicted"] == "nue")]["count"].item() == 1
    cm = t["confusion_matrix"]
    assert list(cm.columns) == ["true_class", "predicted_class", "count", "fraction"] and len(cm) == 9
    row = cm[(cm["true_class"] == "numu") & (cm["predicted_class"] == "nue")].iloc[0]
    assert row["count"] == 1 and row["fraction"] == pytest.approx(0.25)
    np.testing.assert_allclose(cm.groupby("true_class")["fraction"].sum(), 1.0)
    pc = t["per_class"]
    assert pc["class"].tolist() == CLASSES and pc["n_true"].tolist() == [4, 2, 2]
    ev = t["efficiency_vs_nuenergy"]
    assert ev["n"].tolist() == [3, 0, 3, 0, 2]
    assert ev["numu_efficiency"].iloc[0] == 1.0 and ev["numu_efficiency"].iloc[2] == pytest.approx(0.5)
    assert np.isnan(ev["numu_efficiency"].iloc[1])  # empty bin: NaN, interval [0, 1]
    assert (ev["numu_efficiency_lo"].iloc[1], ev["numu_efficiency_hi"].iloc[1]) == (0.0, 1.0)
    assert ev["nc_efficiency_n"].tolist() == [0, 0, 1, 0, 1]


def test_efficiency_interval_shrinks_with_n() -> None:
    rng = np.random.default_rng(0)
    widths = []
    for n in (400, 1600, 6400):
        true = rng.integers(0, 3, n)
        pred = np.where(rng.random(n) < 0.8, true, (true + 1) % 3)
        m, _ = C.classification_report(true, pred, CLASSES, energy=np.full(n, 2.0), energy_bins=BINS)
        c = m["per_class"]["numu"]
        assert abs(c["efficiency"] - 0.8) < 3 * (c["efficiency_hi"] - c["efficiency_lo"]) / 2  # within 3 sigma
        widths.append(c["efficiency_hi"] - c["efficiency_lo"])
    assert widths[0] / widths[1] == pytest.approx(2, rel=0.2) and widths[1] / widths[2] == pytest.approx(2, rel=0.2)


def test_empty_input_gives_none_not_a_crash() -> None:
    m, t = C.classification_report(np.array([], int), np.array([], int), CLASSES, energy=np.array([]), energy_bins=BINS)
    assert m["n"] == 0 and m["accuracy"] is None
    assert t["efficiency_vs_nuenergy"]["n"].sum() == 0


@pytest.mark.parametrize(
    ("true", "pred", "classes", "match"),
    [
        ([0, 3], [0, 0], CLASSES, r"lie in \[0, 2\]"),
        ([0, 1], [0], CLASSES, "match one to one"),
        ([0.5], [0], CLASSES, "integers"),
        ([0], [0], ["a", "a"], "distinct"),
    ],
)
def test_bad_input_is_refused(true, pred, classes, match) -> None:
    with pytest.raises(NucvnError, match=match):
        C.classification_report(np.array(true), np.array(pred), classes, energy=np.ones(len(true)), energy_bins=BINS)


def test_figures() -> None:
    rng = np.random.default_rng(1)
    true = rng.integers(0, 3, 3000)
    pred = np.where(rng.random(3000) < 0.7, true, rng.integers(0, 3, 3000))
    energy = rng.uniform(0.5, 50, 3000)
    _, tables = C.classification_report(true, pred, CLASSES, energy=energy, energy_bins=BINS)
    figs = dict(C.classification_figures(tables, classes=CLASSES, title="Flavour", footer="data: sim (test)"))
    assert list(figs) == ["confusion_matrix", "per_class", "efficiency_vs_nuenergy"]
    for fig in figs.values():
        texts = [t.get_text() for t in fig.texts] + [t.get_text() for ax in fig.axes for t in ax.texts]
        assert "data: sim (test)" in texts and SIMULATION_LABEL in texts
    cm_ax = figs["confusion_matrix"].axes[0]
    n00 = int(np.sum((true == 0) & (pred == 0)))
    assert cm_ax.texts[0].get_text().startswith(f"{n00}\n(")
    assert cm_ax.get_ylabel() == "true class"
    eff_ax = figs["efficiency_vs_nuenergy"].axes[0]
    assert eff_ax.get_xscale() == "log" and "GeV" in eff_ax.get_xlabel()
    assert len(eff_ax.containers) == 3  # one error-bar series per class
    assert len(figs["per_class"].axes[0].containers) == 2  # efficiency and purity


def test_linear_energy_axis_for_narrow_bins() -> None:
    true = np.array([0, 1, 2, 0])
    _, tables = C.classification_report(true, true, CLASSES, energy=np.array([1.0, 2.0, 3.0, 4.0]),
                                        energy_bins=[1, 2, 3, 4, 5])
    figs = dict(C.classification_figures(tables, classes=CLASSES, title="t", footer=""))
    assert figs["efficiency_vs_nuenergy"].axes[0].get_xscale() == "linear"
