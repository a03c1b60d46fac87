"""``seed_notebook``: the final Keras model of the public UCL PHAS0056 notebook, ported to PyTorch.

The notebook (reference study ``000``, "Neutrino event classification", its last architecture)
stacks the two views as the two channels of one 100x80 image and trains::

    SeparableConv2D(32, 7, relu)  -> MaxPool 2x2 -> SpatialDropout2D(0.4)
    Conv2D(64, 3, relu)           -> MaxPool 2x2 -> Dropout(0.4)
    inception(1x1 64; 1x1 96 -> 3x3 96; 1x1 16 -> 5x5 16; maxpool 2x2/1 -> 1x1 32)
    Conv2D(64, 3, relu)           -> Dropout(0.7)
    Flatten -> Dense(128, relu) -> Dropout(0.8) -> Dense(64, relu) -> Dropout(0.8) -> Dense(1, sigmoid)

Keras semantics kept: ``valid`` padding outside the inception module, ``same`` inside it (the
2x2 stride-1 ``same`` max pool pads one row/column at the bottom/right), a separable convolution
as a bias-free depthwise 7x7 followed by a pointwise 1x1 with bias (:class:`SeparableConv2d`),
Glorot-uniform weights and zero biases. Differences: the final sigmoid is left to the loss (this
returns logits), and the input is ``(n, 2, 100, 80)`` channels-first instead of Keras'
``(n, 100, 80, 2)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nucvn.core.events import N_CELLS, N_PLANES, N_VIEWS
from nucvn.models.registry import register_model

__all__ = ["KerasInception", "SeparableConv2d", "SeedNotebook", "glorot_init"]


def glorot_init(module: nn.Module) -> None:
    """Keras' default initialisation: Glorot-uniform kernels, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class SeparableConv2d(nn.Module):
    """Keras ``SeparableConv2D`` (depth multiplier 1, ``valid``): a bias-free depthwise ``k x k``
    convolution followed by a pointwise ``1 x 1`` with bias.

    The two linear maps are applied as one dense convolution with the composed kernel
    ``W[o, c] = pointwise[o, c] * depthwise[c]``: the same function of the same parameters (and so
    the same gradients), but PyTorch's CPU backward of a depthwise convolution is many times slower
    than of a dense one.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(c_in, c_in, kernel, groups=c_in, bias=False)
        self.pointwise = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = self.pointwise.weight * self.depthwise.weight.transpose(0, 1)
        return F.conv2d(x, kernel, self.pointwise.bias)


class KerasInception(nn.Module):
    """The notebook's ``inception_module(layer_in, k1, k3, k5, kp)`` (GoogLeNet with 1x1 reductions)."""

    def __init__(self, c_in: int, k1: int, k3: int, k5: int, kp: int) -> None:
        super().__init__()
        self.b1 = nn.Conv2d(c_in, k1, 1)
        self.b3 = nn.Sequential(nn.Conv2d(c_in, k3, 1), nn.ReLU(), nn.Conv2d(k3, k3, 3, padding=1))
        self.b5 = nn.Sequential(nn.Conv2d(c_in, k5, 1), nn.ReLU(), nn.Conv2d(k5, k5, 5, padding=2))
        self.bp = nn.Conv2d(c_in, kp, 1)
        self.out_channels = k1 + k3 + k5 + kp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.max_pool2d(F.pad(x, (0, 1, 0, 1), value=float("-inf")), 2, stride=1)
        branches = [self.b1(x), self.b3(x), self.b5(x), self.bp(pooled)]
        return torch.cat([F.relu(b) for b in branches], dim=1)


@register_model("seed_notebook")
class SeedNotebook(nn.Module):
    """The notebook's 2-channel separable-conv + inception network; returns logits.

    Args:
        num_outputs: 1: logits ``(n,)``; k > 1: ``(n, k)``; 0: no last layer, the features
            ``(n, 64)`` (``num_features``) are returned.
        dropout_scale: multiplies every dropout rate (1.0 = the notebook; 0.0 disables dropout,
            for deterministic tests).
    """

    def __init__(self, num_outputs: int = 1, dropout_scale: float = 1.0) -> None:
        super().__init__()
        if num_outputs < 0:
            raise ValueError(f"num_outputs must be >= 0, got {num_outputs}")
        self.num_outputs = num_outputs
        d = dropout_scale
        self.features = nn.Sequential(
            SeparableConv2d(N_VIEWS, 32, 7),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Dropout2d(0.4 * d),
            nn.Conv2d(32, 64, 3),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Dropout(0.4 * d),
            KerasInception(64, 64, 96, 16, 32),
            nn.Conv2d(208, 64, 3),
            nn.ReLU(),
            nn.Dropout(0.7 * d),
            nn.Flatten(),
        )
        h = ((N_PLANES - 6) // 2 - 2) // 2 - 2
        w = ((N_CELLS - 6) // 2 - 2) // 2 - 2
        self.trunk = nn.Sequential(
            nn.Linear(64 * h * w, 128),
            nn.ReLU(),
            nn.Dropout(0.8 * d),
            nn.Linear(128, 64),
            nn.ReLU(),
            nn.Dropout(0.8 * d),
        )
        self.num_features = 64
        self.fc: nn.Module = nn.Linear(64, num_outputs) if num_outputs else nn.Identity()
        glorot_init(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The features ``(n, 64)``: convolutions and the dense layers up to the last one."""
        return self.trunk(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.fc(self.forward_features(x))
        return logits.squeeze(1) if self.num_outputs == 1 else logits
