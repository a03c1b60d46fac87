"""``seed_report``: the two-input Keras CNN of the public report (Oodit 2024), ported to PyTorch.

The report (reference study ``004``, section 3.1, figure 2) feeds the top and side views to two
branches of identical structure::

    Conv2D(16, 3x3, relu) -> MaxPool 2x2 -> Dropout(0.25) -> Conv2D(32, 5x5, relu) -> MaxPool 2x2
    -> Dropout(0.25)

concatenates the branches, flattens, and ends with one ReLU dense layer and a sigmoid output; it
is trained with class weights ``n / (2 n_class)`` (``balance: weights``). The report does not
state the dense layer's width: ``hidden`` (default 64) is our choice. Keras semantics kept:
``valid`` padding, Glorot-uniform weights and zero biases; the sigmoid is left to the loss.
"""

from __future__ import annotations

import torch
from torch import nn

from nucvn.core.events import N_CELLS, N_PLANES, N_VIEWS
from nucvn.models.registry import register_model
from nucvn.models.seed_notebook import glorot_init

__all__ = ["SeedReport"]


def _branch(dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3),
        nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Dropout(dropout),
        nn.Conv2d(16, 32, 5),
        nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Dropout(dropout),
    )


@register_model("seed_report")
class SeedReport(nn.Module):
    """One convolutional branch per view, concatenated, flattened, dense (the features), output; returns logits.

    Args:
        hidden: units of the dense layer (not given in the report).
        dropout: dropout rate after each pooling (0.25 in the report).
        num_outputs: 1: logits ``(n,)``; k > 1: ``(n, k)``; 0: no last layer, the features
            ``(n, hidden)`` (``num_features``) are returned.
    """

    def __init__(self, hidden: int = 64, dropout: float = 0.25, num_outputs: int = 1) -> None:
        super().__init__()
        if num_outputs < 0 or hidden < 1:
            raise ValueError(f"hidden must be >= 1 and num_outputs >= 0, "
                             f"got hidden={hidden}, num_outputs={num_outputs}")
        self.num_outputs = num_outputs
        self.branches = nn.ModuleList(_branch(dropout) for _ in range(N_VIEWS))
        h = ((N_PLANES - 2) // 2 - 4) // 2
        w = ((N_CELLS - 2) // 2 - 4) // 2
        self.trunk = nn.Sequential(nn.Flatten(), nn.Linear(N_VIEWS * 32 * h * w, hidden), nn.ReLU())
        self.num_features = hidden
        self.fc: nn.Module = nn.Linear(hidden, num_outputs) if num_outputs else nn.Identity()
        glorot_init(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The features ``(n, hidden)``: both branches, concatenated, through the dense layer."""
        merged = torch.cat([branch(x[:, v : v + 1]) for v, branch in enumerate(self.branches)], dim=1)
        return self.trunk(merged)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.fc(self.forward_features(x))
        return logits.squeeze(1) if self.num_outputs == 1 else logits
