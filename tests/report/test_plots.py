"""Tests for nucvn.report.plots and nucvn.report.gallery: figures from synthetic evaluations, checked by their
contents (axes labels, plotted data, footer), not only by the file they write."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from conftest import random_events
from nucvn.report import evaluation as E
from nucvn.report import plots as P
from nucvn.report.gallery import gallery_figure, most_confidently_wrong
from nucvn.report.stats import threshold_scan

FOOTER = "data: sim (test fixture) | model: tiny"
BINS = {"nuenergy": [0.0, 2.0, 5.0, 10.0, 20.0], "lepenergy": [0.0, 2.0, 20.0]}


@pytest.fixture(scope="module")
def evaluation() -> tuple[E.Evaluation, np.ndarray, np.ndarray, np.ndarray]:
    images, meta = random_events(600, seed=5)
    df = pd.DataFrame(meta)
    y = E.signal_labels(df)
    s = np.clip(np.random.default_rng(0).normal(np.where(y, 0.75, 0.3), 0.2), 0, 1)
    return E.evaluate(s, df, threshold=0.5, bins=BINS, score_bins=25), images, y, s


@pytest.fixture(autouse=True)
def _close_all() -> None:
    yield
    plt.close("all")


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.texts]


def test_roc_figure(evaluation) -> None:
    ev = evaluation[0]
    fig = P.roc_figure(ev.tables["roc"], auc=ev.metrics["auc"], footer=FOOTER, working_point=(0.2, 0.8))
    ax = fig.axes[0]
    assert "false-positive rate" in ax.get_xlabel() and "efficiency" in ax.get_ylabel()
    curve = ax.lines[0]
    np.testing.assert_allclose(curve.get_xdata(), ev.tables["roc"]["fpr"])
    assert f"{ev.metrics['auc']:.4f}" in ax.get_legend().get_texts()[0].get_text()
    assert FOOTER in _texts(fig)


def test_score_figure_has_every_category(evaluation) -> None:
    ev = evaluation[0]
    fig = P.score_figure(ev.tables["scores"], threshold=0.5, footer=FOOTER)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    present = [c for c in E.CATEGORIES if c in ev.tables["scores"].columns]
    assert len([lbl for lbl in labels if "events" in lbl]) == len(present) >= 5
    assert any("threshold" in lbl for lbl in labels)
    assert ax.get_yscale() == "log" and "score" in ax.get_xlabel()


def test_confusion_figure_counts(evaluation) -> None:
    ev, _, y, s = evaluation
    fig = P.confusion_figure(ev.tables["confusion"], footer=FOOTER)
    ax = fig.axes[0]
    cells = [t.get_text() for t in ax.texts]
    n_sig_sel, n_sig_rej = int(np.sum(y & (s >= 0.5))), int(np.sum(y & (s < 0.5)))
    assert cells[0] == f"{n_sig_sel}\n({n_sig_sel / y.sum():.1%})"
    assert cells[1] == f"{n_sig_rej}\n({n_sig_rej / y.sum():.1%})"
    assert ax.get_ylabel() == "true category" and ax.get_xlabel() == "predicted class"


def test_rate_vs_figure_points_and_errors(evaluation) -> None:
    ev = evaluation[0]
    tab = ev.tables["eff_vs_nuenergy"]
    fig = P.rate_vs_figure(tab, "nuenergy", footer=FOOTER)
    ax = fig.axes[0]
    assert ax.get_xlabel() == P.VARIABLE_LABELS["nuenergy"] and "(GeV)" in ax.get_xlabel()
    assert ax.get_ylabel() == "efficiency / purity"
    eff_line = ax.containers[0].lines[0]
    ok = tab["efficiency"].notna()
    np.testing.assert_allclose(eff_line.get_ydata(), tab["efficiency"][ok])
    # the error bar of the first point spans exactly the Clopper-Pearson interval
    seg = ax.containers[0].lines[2][-1].get_segments()[0]
    assert seg[0][1] == pytest.approx(tab["efficiency_lo"][ok].iloc[0])
    assert seg[1][1] == pytest.approx(tab["efficiency_hi"][ok].iloc[0])
    assert len(fig.axes) == 2 and "events" in fig.axes[1].get_ylabel()


def test_category_and_finalstate_figures(evaluation) -> None:
    ev = evaluation[0]
    fig = P.category_figure(ev.tables["eff_by_mode"], "mode", xlabel="true interaction mode", title="by mode",
                            footer=FOOTER)
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert [t.split("\n")[0] for t in ticks] == ["QE", "RES", "DIS", "MEC", "COH", "other"]
    assert "efficiency" in fig.axes[0].get_ylabel()
    fig2 = P.finalstate_figure(ev.tables["eff_by_finalstate"], footer=FOOTER)
    assert fig2.axes[0].get_xlabel() == "number of true final-state tracks"
    assert len(fig2.axes[0].get_legend().get_texts()) == 4


def test_misid_and_threshold_figures(evaluation) -> None:
    ev, _, y, s = evaluation
    fig = P.misid_figure(ev.tables["misid_vs_nuenergy"], "nuenergy", which=E.MISID_CATEGORIES, footer=FOOTER)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == [P.CATEGORY_LABELS[c] for c in E.MISID_CATEGORIES]
    assert "mis-identification" in fig.axes[0].get_ylabel()
    assert fig.axes[0].get_xscale() == "linear"  # edges 2..20 GeV: one decade
    wide = E.misid_table(np.geomspace(0.1, 79, 200), np.array(["nc"] * 200, dtype=object), np.ones(200, bool),
                         [0, 0.5, 1, 10, 80], variable="nuenergy")
    assert P.misid_figure(wide, "nuenergy", which=["nc"]).axes[0].get_xscale() == "symlog"
    scan = threshold_scan(y, s, np.linspace(0, 1, 51))
    fig2 = P.threshold_scan_figure(scan, chosen=0.5, criterion="balanced_accuracy", footer=FOOTER)
    assert len(fig2.axes[0].lines) == 5 and "threshold" in fig2.axes[0].get_xlabel()


def test_gallery_layout_and_save(evaluation, tmp_path: Path) -> None:
    _, images, y, s = evaluation
    wrong = most_confidently_wrong(y, s, threshold=0.5, n=2)
    imgs = images[wrong["position"].to_numpy()]
    fig = gallery_figure(imgs, [f"{k} {v:.2f}" for k, v in zip(wrong["kind"], wrong["score"], strict=True)],
                         title="wrong", footer=FOOTER)
    view_axes = [a for a in fig.axes if a.images]
    assert len(view_axes) == 2 * len(wrong)
    # view 0 of the first event drawn with planes horizontal: the image array is (cell, plane) = (80, 100)
    drawn = view_axes[0].images[0].get_array()
    assert drawn.shape == (80, 100)
    np.testing.assert_array_equal(np.ma.filled(drawn, 0), imgs[0, 0].T)
    assert "plane" in view_axes[0].get_xlabel()
    # A long caption stays inside the figure, and the footer below every axis label.
    long_caption = "false positive: true nutau_cc, E_nu 13.04 GeV, E_lep 10.86 GeV, score 1.000"
    wide = gallery_figure(imgs, [long_caption] * len(imgs), title="wrong", footer=FOOTER)
    wide.canvas.draw()  # the constrained layout runs at drawing time
    renderer = wide.canvas.get_renderer()
    caption = next(t for a in wide.axes for t in (a.title, a._left_title) if t.get_text() == long_caption)
    assert caption.get_window_extent(renderer).x0 >= 0
    footer_top = wide.texts[-1].get_window_extent(renderer).y1
    assert all(a.xaxis.label.get_window_extent(renderer).y0 > footer_top for a in wide.axes if a.images)
    plt.close(wide)
    with pytest.raises(ValueError, match=r"\[view\]\[plane\]\[cell\]"):
        gallery_figure(imgs.reshape(len(imgs), 100, 80, 2), ["a"] * len(imgs))
    out = P.save_figure(fig, tmp_path / "g.png")
    img = plt.imread(out)
    assert img.shape[0] > 300 and img[..., :3].std() > 0.05  # a drawn, non-blank image
    assert not list(tmp_path.glob(".*"))


def test_evaluation_figures_cover_every_table(evaluation) -> None:
    ev = evaluation[0]
    figs = dict(P.evaluation_figures(ev.tables, auc=ev.metrics["auc"], threshold=0.5, working_point=None, footer=FOOTER,
                                misid_categories=E.MISID_CATEGORIES))
    assert set(figs) == set(ev.tables)
    for name, fig in figs.items():
        assert FOOTER in _texts(fig), name
        assert fig.axes[0].get_xlabel() and fig.axes[0].get_ylabel(), name


def test_footer_says_simulation_only_for_simulated_events() -> None:
    assert P.provenance("sim", "cvn2v", "test split, 10 events") == \
        "simulation | data: sim | model: cvn2v | test split, 10 events"
    assert P.provenance("url", "cvn2v", "validation split, 5 events") == \
        "data: url | model: cvn2v | validation split, 5 events"
