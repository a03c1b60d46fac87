"""Tests for nucvn.report.evaluation: tables from scores and metadata, checked against direct counts."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd
import pytest

from conftest import random_events
from nucvn.core.errors import NucvnError
from nucvn.core.events import mode, numu_cc
from nucvn.report import evaluation as E
from nucvn.report.gallery import most_confidently_wrong

BINS = {
    "nuenergy": [0.0, 2.0, 5.0, 10.0, 20.0],
    "lepenergy": [0.0, 1.0, 5.0, 20.0],
    "lepton_fraction": [0.0, 0.25, 0.5, 0.75, 1.0],
    "inelasticity": [0.0, 0.5, 1.0],
    "vtxz": [0.0, 3000.0, 6000.0],
    "nhits": [0.0, 300.0, 400.0, 2000.0],
}


@pytest.fixture(scope="module")
def sample() -> tuple[np.ndarray, pd.DataFrame, np.ndarray]:
    images, meta = random_events(1500, seed=11)
    df = pd.DataFrame(meta)
    y = numu_cc(df["interaction"])
    rng = np.random.default_rng(2)
    scores = np.clip(rng.normal(np.where(y, 0.7, 0.35), 0.2), 0, 1)
    return images, df, scores


def test_signal_and_categories_follow_events_module(sample) -> None:
    _, df, _ = sample
    y = E.signal_labels(df)
    np.testing.assert_array_equal(y, numu_cc(df["interaction"]))
    cats = E.categories(df)
    assert set(cats[y]) == {"numu_cc"}
    assert set(cats[df["interaction"].isin([12, 13]).to_numpy()]) == {"nc"}
    assert set(cats[(df["interaction"] == 15).to_numpy()]) == {"other"}
    # the shards' stored label columns take precedence over recomputation
    df2 = df.assign(numu_cc=0)
    assert not E.signal_labels(df2).any()


def test_count_hits() -> None:
    imgs = np.zeros((3, 2, 100, 80), np.uint8)
    imgs[0, 0, 5, 5] = 1
    imgs[1, 1, 99, 79] = 7
    imgs[1, 0, 0, 0] = 255
    np.testing.assert_array_equal(E.count_hits([imgs[:2], imgs[2:]]), [1, 2, 0])


def test_rate_vs_table_matches_direct_counts(sample) -> None:
    _, df, s = sample
    y = E.signal_labels(df)
    sel = s >= 0.5
    tab = E.rate_vs_table(df["nuenergy"], y, sel, BINS["nuenergy"], variable="nuenergy")
    assert list(tab["nuenergy"]) == [1.0, 3.5, 7.5, 15.0]
    x = df["nuenergy"].to_numpy()
    for i, (lo, hi) in enumerate(itertools.pairwise(BINS["nuenergy"])):
        inbin = (x >= lo) & ((x < hi) if i < 3 else (x <= hi))
        assert tab["efficiency_n"][i] == np.sum(inbin & y)
        assert tab["efficiency_k"][i] == np.sum(inbin & y & sel)
        assert tab["purity_n"][i] == np.sum(inbin & sel)
        assert tab["purity_k"][i] == np.sum(inbin & sel & y)
        assert tab["efficiency_lo"][i] <= tab["efficiency"][i] <= tab["efficiency_hi"][i]
    with pytest.raises(NucvnError, match=re.escape("bins.yaml: nuenergy")):
        E.rate_vs_table(x, y, sel, [5, 1], variable="nuenergy")


def test_evaluate_tables_and_metrics(sample) -> None:
    images, df, s = sample
    ev = E.evaluate(s, df, threshold=0.5, bins=BINS, nhits=E.count_hits([images]), score_bins=20, roc_points=200)
    met = ev.metrics
    y = E.signal_labels(df)
    sel = s >= 0.5
    assert met["n_test"] == 1500 and met["n_signal"] == int(y.sum())
    assert met["efficiency"] == pytest.approx(np.sum(sel & y) / y.sum())
    assert met["purity"] == pytest.approx(np.sum(sel & y) / sel.sum())
    assert met["efficiency_lo"] < met["efficiency"] < met["efficiency_hi"]
    assert 0.8 < met["auc"] < 0.95
    assert ev.skipped_variables == []
    expected = {"roc", "scores", "confusion", "eff_by_mode", "eff_by_finalstate", "misid_vs_nuenergy"}
    expected |= {f"eff_vs_{v}" for v in BINS}
    assert set(ev.tables) == expected
    roc = ev.tables["roc"]
    assert len(roc) <= 200 and roc["fpr"].iloc[0] == 0 and roc["tpr"].iloc[-1] == 1
    hist = ev.tables["scores"]
    assert len(hist) == 20
    for c in ("numu_cc", "nue_cc", "nc"):
        assert hist[c].sum() == pytest.approx(1.0)
    assert set(E.CATEGORIES) <= set(hist.columns)
    assert hist["numu_cc_count"].sum() == y.sum()
    # mode efficiencies add up to the overall signal efficiency
    by_mode = ev.tables["eff_by_mode"]
    assert list(by_mode["mode"]) == ["QE", "RES", "DIS", "MEC", "COH", "other"]
    assert by_mode["efficiency_k"].sum() == np.sum(sel & y)
    # files without the generator's mode: MEC and coherent stay together in "other"
    assert list(by_mode["efficiency_n"][3:5]) == [0, 0]
    assert by_mode["efficiency_n"][5] == np.sum(y & (mode(df["interaction"]) == 3))
    qe = y & (mode(df["interaction"]) == 0)
    assert by_mode["efficiency_n"][0] == qe.sum()
    fs = ev.tables["eff_by_finalstate"]
    assert len(fs) == 16 and fs["efficiency_n"].sum() == y.sum()
    mis = ev.tables["misid_vs_nuenergy"]
    nc = df["interaction"].isin([12, 13]).to_numpy()
    assert mis["nc_n"].sum() == nc.sum() and mis["nc_k"].sum() == np.sum(nc & sel)
    conf = ev.tables["confusion"]
    assert conf["count"].sum() == 1500 and set(conf["predicted"]) == {"numu_cc", "not_numu_cc"}
    numu = conf[conf["actual"] == "numu_cc"].set_index("predicted")["count"]
    assert numu["numu_cc"] == np.sum(y & sel) and numu["not_numu_cc"] == np.sum(y & ~sel)


def test_missing_variables_are_skipped_and_derived_ones_computed(sample) -> None:
    _, df, s = sample
    # the random fixture files carry no inelasticity: it is computed as 1 - lepenergy / nuenergy
    y = E.variable_values(df, "inelasticity")
    np.testing.assert_allclose(y, 1 - df["lepenergy"].astype(float) / df["nuenergy"].astype(float), atol=1e-9)
    with_col = df.assign(inelasticity=0.25)
    assert np.all(E.variable_values(with_col, "inelasticity") == 0.25)  # the file's own values win
    ev = E.evaluate(s, df.drop(columns=["vtxz"]), threshold=0.5, bins=BINS)
    assert ev.skipped_variables == ["vtxz", "nhits"]
    assert "eff_vs_vtxz" not in ev.tables and "eff_vs_inelasticity" in ev.tables
    only_signal = E.score_histograms(s[:3], np.array(["numu_cc"] * 3, dtype=object), n_bins=4)
    assert only_signal["nc"].sum() == 0 and only_signal["numu_cc"].sum() == pytest.approx(1.0)


def test_evaluate_errors(sample) -> None:
    _, df, s = sample
    with pytest.raises(NucvnError, match="scores"):
        E.evaluate(s[:10], df, threshold=0.5, bins=BINS)
    with pytest.raises(NucvnError, match="misid_variables"):
        E.evaluate(s, df, threshold=0.5, bins={"lepenergy": [0, 1, 2]})


def test_most_confidently_wrong_events(sample) -> None:
    _, df, s = sample
    wrong = most_confidently_wrong(E.signal_labels(df), s, threshold=0.5, n=4)
    assert list(wrong["kind"]) == ["false positive"] * 4 + ["false negative"] * 4
    y = E.signal_labels(df)
    fp_scores = np.sort(s[~y & (s >= 0.5)])[::-1][:4]
    np.testing.assert_allclose(wrong["score"][:4], fp_scores)
    assert np.all(~y[wrong["position"][:4]]) and np.all(y[wrong["position"][4:]])



def test_summary_metrics_carry_the_errors_of_auc_and_balanced_accuracy() -> None:
    """Every headline number has its uncertainty: DeLong for the AUC, binomial for the balanced
    accuracy; both shrink as 1/sqrt(n) when the sample grows."""
    from nucvn.report.evaluation import summary_metrics

    rng = np.random.default_rng(0)
    errs = []
    for n in (1000, 16000):
        y = rng.random(n) < 0.88
        s = np.clip(np.where(y, rng.normal(0.7, 0.2, n), rng.normal(0.3, 0.2, n)), 0, 1)
        out = summary_metrics(y, s, threshold=0.5)
        eff, rej = out["efficiency"], out["background_rejection"]
        assert out["balanced_accuracy_err"] == pytest.approx(
            0.5 * np.sqrt(eff * (1 - eff) / y.sum() + rej * (1 - rej) / (~y).sum()), rel=0.15)
        assert 0 < out["auc_err"] < 0.05
        errs.append((out["auc_err"], out["balanced_accuracy_err"]))
    assert errs[0][0] / errs[1][0] == pytest.approx(4, rel=0.25)
    assert errs[0][1] / errs[1][1] == pytest.approx(4, rel=0.25)
    everything = summary_metrics(y, np.ones(y.size), threshold=0.5)  # a cut that keeps all: rates 1 and 0
    assert everything["balanced_accuracy"] == 0.5 and 0 < everything["balanced_accuracy_err"] < 0.01


def test_generator_mode_splits_other_into_mec_and_coherent(sample) -> None:
    _, df, s = sample
    df = df.copy()
    other = mode(df["interaction"]) == 3
    rng = np.random.default_rng(0)
    df["raw_mode"] = np.where(other, rng.choice([3, 4], size=len(df)), mode(df["interaction"]))  # 3 COH, 4 MEC
    names = E.cc_mode_names(df)
    assert set(names[other]) == {"MEC", "COH"}
    assert np.all((names[other] == "COH") == (df["raw_mode"].to_numpy()[other] == 3))
    by_mode = E.evaluate(s, df, threshold=0.5, bins=BINS).tables["eff_by_mode"].set_index("mode")
    y = E.signal_labels(df)
    assert by_mode.loc["other", "efficiency_n"] == 0
    assert by_mode.loc["MEC", "efficiency_n"] + by_mode.loc["COH", "efficiency_n"] == np.sum(y & other)
