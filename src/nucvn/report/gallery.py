"""A gallery of events: both views of each, z (planes) horizontal, one row per event.

Used for the most confidently wrong events of an evaluation, so a physicist can see what fools
the network. Images are ``[view][plane][cell]`` (FORMAT.md) and are drawn by
:func:`nucvn.report.display.draw_views`, the project's one event display.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.layout_engine import ConstrainedLayoutEngine

from nucvn.core.events import IMAGE_SHAPE
from nucvn.report.display import VIEW_NAMES, draw_views
from nucvn.report.plots import add_footer

__all__ = ["gallery_figure", "most_confidently_wrong"]


def gallery_figure(
    images: npt.ArrayLike,
    captions: Sequence[str],
    *,
    title: str = "",
    footer: str = "",
    vmax: float | None = None,
) -> Figure:
    """One row per event, X-Z and Y-Z views side by side, each row titled with its caption
    (e.g. true category, energies and score). ``images`` is ``(n, 2, 100, 80)``."""
    imgs = np.asarray(images)
    if imgs.ndim != 4 or imgs.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"gallery images must have shape (n, {', '.join(map(str, IMAGE_SHAPE))}) [view][plane][cell], "
                         f"got {imgs.shape}")
    n = imgs.shape[0]
    if n == 0:
        fig = plt.figure(figsize=(8, 2))
        fig.text(0.5, 0.5, "no misclassified events", ha="center", va="center")
        add_footer(fig, footer)
        return fig
    if len(captions) != n:
        raise ValueError(f"{len(captions)} captions for {n} events")
    top = float(vmax) if vmax is not None else float(max(int(imgs.max()), 1))
    height = 2.9 * n + 0.8
    fig, axes = plt.subplots(n, 2, figsize=(10, height), layout="constrained", squeeze=False)
    engine = fig.get_layout_engine()
    if isinstance(engine, ConstrainedLayoutEngine):  # keep the bottom 0.25 inch for the footer
        engine.set(rect=(0.0, 0.25 / height, 1.0, 1.0 - 0.25 / height))
    artist: AxesImage | None = None
    for i in range(n):
        artist = draw_views(axes[i], imgs[i], vmax=top)
        # The caption is wider than a panel: it starts at the left panel's edge and runs on over
        # the gap (centred, it was cut at the figure's edge); the views are named inside the panels.
        for ax, view in zip(axes[i], VIEW_NAMES, strict=True):
            ax.set_title("")
            ax.text(0.98, 0.96, view, transform=ax.transAxes, ha="right", va="top", fontsize=7,
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})
        axes[i][0].set_title(captions[i], fontsize=8, loc="left")
    assert artist is not None  # n > 0 (the n == 0 case returned above)
    fig.colorbar(artist, ax=axes.ravel().tolist(), label="pixel value (ADC counts, 8 bit)", shrink=0.6)
    if title:
        fig.suptitle(title)
    add_footer(fig, footer)
    return fig


def most_confidently_wrong(is_signal: npt.ArrayLike, scores: npt.ArrayLike, *, threshold: float,
                           n: int) -> pd.DataFrame:
    """Positions of the ``n`` background events with the highest scores above ``threshold`` and the
    ``n`` signal events with the lowest scores below it: what fools the network most."""
    y = np.asarray(is_signal, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    fp = np.flatnonzero(~y & (s >= threshold))
    fn = np.flatnonzero(y & (s < threshold))
    fp = fp[np.argsort(-s[fp], kind="stable")][:n]
    fn = fn[np.argsort(s[fn], kind="stable")][:n]
    return pd.DataFrame(
        {"position": np.concatenate([fp, fn]).astype(np.int64),
         "kind": ["false positive"] * len(fp) + ["false negative"] * len(fn),
         "score": s[np.concatenate([fp, fn]).astype(np.int64)]}
    )
