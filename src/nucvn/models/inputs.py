"""The model input: pixel layout and pixel scaling, shared by training and inference.

Images arrive as ``uint8`` arrays ``(n, 2, 100, 80)`` = ``[view][plane][cell]``; a model sees
``float32`` of the same shape after one of the scalings below. Training records the scaling in
``model.json`` and inference reads it from there, so the two can never disagree.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch

from nucvn.core.errors import NucvnError

__all__ = ["INPUT_LAYOUT", "Scale", "SCALES", "scale_pixels"]

INPUT_LAYOUT = "view,plane,cell"
"""Axis order of one event, as stored in the event files and the shards (docs/format.md)."""

Scale = Literal["div255", "log1p"]
SCALES: tuple[str, ...] = get_args(Scale)

_LOG256 = math.log(256.0)


def scale_pixels(images: torch.Tensor, scale: Scale) -> torch.Tensor:
    """Convert raw ``uint8`` pixels to model input in ``[0, 1]``.

    ``div255``: ``x / 255`` (linear in deposited charge, as the public studies do).
    ``log1p``: ``log(1 + x) / log(256)`` (compresses the bright end, so faint hits next to a
    bright vertex still register).
    """
    x = images.float()
    if scale == "div255":
        return x.div_(255.0)
    if scale == "log1p":
        return x.log1p_().div_(_LOG256)
    raise NucvnError(f"unknown pixel scaling {scale!r} (train.scale); choose one of {', '.join(SCALES)}")
