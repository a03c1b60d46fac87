"""Event displays: the two views of one event, z (planes) horizontal, with a colour bar.

Drawn straight from the ``[view][plane][cell]`` array (FORMAT.md): view 0 is X-Z, view 1 is Y-Z;
the plane axis runs along the beam and is drawn horizontally, the cell axis vertically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from nucvn.core.events import IMAGE_SHAPE
from nucvn.report.plots import save_figure

__all__ = ["VIEW_NAMES", "draw_views", "event_figure", "save_event_display"]

VIEW_NAMES: tuple[str, str] = ("X-Z view", "Y-Z view")


def draw_views(axes: Sequence[Axes], image: npt.ArrayLike, *, vmax: float = 255.0, cmap: str = "viridis") -> AxesImage:
    """Draw both views of one ``(2, 100, 80)`` event on two axes; returns the last image artist
    (for a colour bar). Empty pixels are left white so the hits stand out."""
    img = np.asarray(image)
    if img.shape != IMAGE_SHAPE:
        raise ValueError(f"event image must have shape {IMAGE_SHAPE} ([view][plane][cell]), got {img.shape}")
    artist: AxesImage | None = None
    for view, ax in enumerate(axes):
        data = np.ma.masked_equal(img[view].T.astype(np.float32), 0)
        artist = ax.imshow(data, origin="lower", aspect="auto", cmap=cmap, vmin=0, vmax=vmax, interpolation="nearest")
        ax.set_title(VIEW_NAMES[view])
        ax.set_xlabel("plane (along beam, z)")
        ax.set_ylabel("cell (x)" if view == 0 else "cell (y)")
    if artist is None:
        raise ValueError("draw_views needs an axis per view, got none")
    return artist


def event_figure(image: npt.ArrayLike, *, title: str = "", footer: str = "") -> Figure:
    """A figure with both views side by side and a shared colour bar in ADC counts."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    artist = draw_views(axes, image)
    fig.colorbar(artist, ax=list(axes), label="pixel value (ADC counts, 8 bit)")
    if title:
        fig.suptitle(title)
    if footer:
        fig.text(0.01, 0.005, footer, fontsize=7, color="0.4")
    return fig


def save_event_display(image: npt.ArrayLike, out: str | Path, *, title: str = "", footer: str = "") -> Path:
    """Draw one event and write it as PNG, atomically."""
    return save_figure(event_figure(image, title=title, footer=footer), out)
