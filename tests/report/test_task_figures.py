"""Tests for nucvn.report.task_figures: axis scale choice, point placement in bins, labels."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from nucvn.report import task_figures as T


@pytest.fixture(autouse=True)
def _close_all() -> None:
    yield
    plt.close("all")


@pytest.mark.parametrize(
    ("edges", "scale"),
    [
        ([0.5, 1, 2, 5, 10, 50], "log"),
        ([0, 1, 2, 5, 10, 50], "symlog"),
        ([1, 2, 3, 5], "linear"),
        ([1, 10], "linear"),  # exactly one decade is not more than one
        ([-1, 1, 100], "linear"),
        ([0.0, 1.0], "linear"),
    ],
)
def test_axis_scale(edges, scale) -> None:
    assert T.axis_scale(edges) == scale
    _, (ax,) = T.new_figure("footer")
    assert T.scale_axis(ax, edges) == scale and ax.get_xscale() == scale


def test_spacing_scale() -> None:
    assert T.spacing_scale(np.geomspace(0.5, 100, 9)) == "log"
    assert T.spacing_scale(np.linspace(0.5, 100, 9)) == "linear"
    assert T.spacing_scale(np.geomspace(1, 5, 9)) == "linear"  # under a decade


def test_bin_positions() -> None:
    low, high = np.array([0.0, 1.0, 10.0]), np.array([1.0, 10.0, 100.0])
    np.testing.assert_allclose(T.bin_positions(low, high, "linear"), [0.5, 5.5, 55.0])
    np.testing.assert_allclose(T.bin_positions(low, high, "log"), [0.5, np.sqrt(10), np.sqrt(1000)])
    shifted = T.bin_positions(low, high, "log", offset=0.25)
    np.testing.assert_allclose(shifted[1:], [10**0.75, 10**1.75])
    assert np.all((shifted >= low) & (shifted <= high))


def test_labels_and_footer() -> None:
    assert T.with_unit("true energy", "GeV") == "true energy (GeV)"
    assert T.with_unit("lepton fraction", "") == "lepton fraction"
    fig, (ax,) = T.new_figure("data: sim")
    T.label_simulation(ax)
    assert [t.get_text() for t in fig.texts] == ["data: sim"]
    assert [t.get_text() for t in ax.texts] == [T.SIMULATION_LABEL]


def test_errorbar_points_skip_nan_and_use_interval() -> None:
    _, (ax,) = T.new_figure("")
    T.errorbar_points(ax, [1, 2, 3], [0.5, np.nan, 0.9], lo=[0.4, np.nan, 0.8], hi=[0.7, np.nan, 1.0], label="eff",
                      colour="C0")
    line = ax.containers[0].lines[0]
    np.testing.assert_allclose(line.get_xdata(), [1, 3])
    np.testing.assert_allclose(line.get_ydata(), [0.5, 0.9])
