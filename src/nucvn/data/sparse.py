"""A batch of sparse events (:mod:`nucvn.data.hits`) in torch, decoded into dense maps on any device.

:class:`SparseBatch` carries a batch's hits and decodes them with one scatter (``index_put``) on
whatever device holds it, so a CUDA run copies 3 bytes per hit to the GPU (about 0.7 kB per event)
instead of 16,000 bytes per event, and builds the dense maps there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nucvn.core.events import IMAGE_SHAPE, N_PIXELS

__all__ = ["SparseBatch", "dense_on"]


@dataclass(frozen=True)
class SparseBatch:
    """The hits of ``size`` events: ``pixel`` (int16, the flat pixel index) and ``value`` (uint8) hit
    by hit, grouped by event; ``lengths`` (int64) the hits of each group's event and ``rows``
    (int64) its position in the batch. Rows need not be in order (a batch is gathered shard by shard)."""

    pixel: torch.Tensor
    value: torch.Tensor
    lengths: torch.Tensor
    rows: torch.Tensor
    size: int

    def to(self, device: torch.device | str, non_blocking: bool = False) -> SparseBatch:
        """The same batch on ``device`` (``non_blocking`` from pinned memory)."""
        pixel, value, lengths, rows = (t.to(device, non_blocking=non_blocking)
                                       for t in (self.pixel, self.value, self.lengths, self.rows))
        return SparseBatch(pixel, value, lengths, rows, size=self.size)

    def pin_memory(self) -> SparseBatch:
        """Page-locked copies, so that the copy to a GPU can overlap computation (DataLoader's
        ``pin_memory=True`` calls this)."""
        pixel, value, lengths, rows = (t.pin_memory() for t in (self.pixel, self.value, self.lengths, self.rows))
        return SparseBatch(pixel, value, lengths, rows, size=self.size)

    @property
    def device(self) -> torch.device:
        return self.pixel.device

    def decode(self) -> torch.Tensor:
        """The dense uint8 maps ``(size, 2, 100, 80)``, built on this batch's device."""
        dense = torch.zeros(self.size * N_PIXELS, dtype=torch.uint8, device=self.device)
        if len(self.pixel):
            base = torch.repeat_interleave(self.rows * N_PIXELS, self.lengths, output_size=len(self.pixel))
            dense.index_put_((base + self.pixel.long(),), self.value)
        return dense.view(self.size, *IMAGE_SHAPE)


def dense_on(images: torch.Tensor | SparseBatch, device: torch.device) -> torch.Tensor:
    """Dense uint8 maps on ``device`` from a dense batch (copied) or a sparse one (its hits copied,
    then decoded there)."""
    if isinstance(images, SparseBatch):
        return images.to(device, non_blocking=True).decode()
    return images.to(device, non_blocking=True)
