"""``cvn2v``: a two-view convolutional classifier with one tower per detector view.

NOvA's CVN (Aurisano et al., JINST 11 (2016) P09001) processes the X-Z and Y-Z views in separate
branches and merges them late, because the same pixel in the two views is not the same point in
space. ``cvn2v`` keeps that structure and replaces the GoogLeNet branches with modern blocks:

* per view (``x[:, 0:1]`` and ``x[:, 1:2]``, separate weights): a stride-2 3x3 stem with batch norm
  and a 2x2 max pool (the images are sparse: max pooling keeps isolated hits), then three stages
  of residual blocks (He et al., CVPR 2016: two 3x3 convolutions with batch norm and an identity
  or 1x1 projection shortcut) at strides 1, 2, 2, ending at 7x5 cells;
* global average and global max pooling of each tower (the max keeps a thin bright track visible
  that averaging would wash out);
* the two towers' features concatenated, then a small MLP trunk (linear, ReLU, dropout) whose
  ``head`` outputs are the backbone's features (:meth:`CVN2V.forward_features`, ``num_features``);
  the last linear layer gives logits (``num_outputs``; 0: none, :meth:`CVN2V.forward` returns the
  features, as the task heads of :class:`nucvn.tasks.MultiTaskNet` use them).

``se=True`` adds squeeze-and-excitation to every residual block (Hu, Shen & Sun, "Squeeze-and-
Excitation Networks", CVPR 2018; as in DUNE's CVN, Abi et al., Phys. Rev. D 102 (2020) 092003): the
block's output channels are rescaled by a gate computed from their global average, so the network
can weigh, say, track-like against shower-like feature maps per event, for ~1 % more compute.

``spatial=k > 0`` also keeps *where* things are: a 1x1 convolution reduces each tower's last
feature map (7x5 cells) to ``k`` channels, which are flattened into the features beside the global
pools. Global pooling alone cannot tell where a track ends relative to the window (a muon leaving
it, a pion stopping inside) or how far it reaches — the quantities the classifiers of the public
studies see through their flattened maps.

Dense 3x3 residual blocks rather than depthwise inverted-residual ones: on a CPU, PyTorch's
depthwise convolutions are several times slower per FLOP, and the default must train on 2 cores.
``width`` sets the channel count (stage channels ``width * (1, 2, 4)``) and ``depth`` the number
of blocks per stage; the defaults train on a 2-core CPU in minutes and scale up on a GPU.
"""

from __future__ import annotations

import torch
from torch import nn

from nucvn.core.events import N_CELLS, N_PLANES, N_VIEWS
from nucvn.models.registry import register_model

__all__ = ["SqueezeExcite", "ResidualBlock", "Tower", "CVN2V"]

_STAGE_MULT = (1, 2, 4)
_STAGE_STRIDE = (1, 2, 2)


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Channel gate of Hu et al. (CVPR 2018): ``x * sigmoid(W2 relu(W1 mean_hw(x)))``, reduction 4."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.gate = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels),
                                  nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x.mean(dim=(2, 3)))[:, :, None, None]


class ResidualBlock(nn.Module):
    """ResNet basic block: conv3x3(stride)-BN-ReLU-conv3x3-BN (then, with ``se``, a squeeze-and-
    excitation gate), plus shortcut, then ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int, se: bool = False) -> None:
        super().__init__()
        body: list[nn.Module] = [_conv_bn(c_in, c_out, 3, stride), _conv_bn(c_out, c_out, 3, act=False)]
        if se:
            body.append(SqueezeExcite(c_out))
        self.body = nn.Sequential(*body)
        self.shortcut: nn.Module = (
            nn.Identity() if stride == 1 and c_in == c_out else _conv_bn(c_in, c_out, 1, stride, act=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class Tower(nn.Module):
    """The feature extractor of one view: ``(n, 1, 100, 80)`` -> ``(n, 2 * 4 * width + spatial * 35)``."""

    def __init__(self, width: int, depth: int, se: bool = False, spatial: int = 0) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv_bn(1, width, 3, stride=2), nn.MaxPool2d(2)]
        c_in = width
        for mult, stride in zip(_STAGE_MULT, _STAGE_STRIDE, strict=True):
            c_out = width * mult
            for i in range(depth):
                layers.append(ResidualBlock(c_in, c_out, stride if i == 0 else 1, se))
                c_in = c_out
        self.features = nn.Sequential(*layers)
        self.spatial: nn.Module | None = _conv_bn(c_in, spatial, 1) if spatial else None
        with torch.no_grad():
            cells = self.features.eval()(torch.zeros(1, 1, N_PLANES, N_CELLS)).shape[2:].numel()
        self.features.train()
        self.out_features = 2 * c_in + spatial * cells

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        pooled = [f.mean(dim=(2, 3)), f.amax(dim=(2, 3))]
        if self.spatial is not None:
            pooled.append(self.spatial(f).flatten(1))
        return torch.cat(pooled, dim=1)


@register_model("cvn2v")
class CVN2V(nn.Module):
    """Two towers (one per view, separate weights), merged, an MLP trunk, then a linear output.

    Args:
        width: channels of the first stage (stages have ``width * (1, 2, 4)``).
        depth: residual blocks per stage.
        head: hidden units of the merged trunk (= ``num_features``).
        dropout: dropout before the last layer.
        se: squeeze-and-excitation in every residual block.
        spatial: channels of each tower's last map kept cell by cell (0: global pooling only).
        num_outputs: 1: logits of shape ``(n,)``; k > 1: ``(n, k)``; 0: no last layer, the
            features ``(n, head)`` are returned.
    """

    def __init__(
        self,
        width: int = 16,
        depth: int = 1,
        head: int = 64,
        dropout: float = 0.1,
        se: bool = False,
        spatial: int = 0,
        num_outputs: int = 1,
    ) -> None:
        super().__init__()
        if width < 1 or depth < 1 or head < 1 or num_outputs < 0 or spatial < 0 or not 0.0 <= dropout < 1.0:
            raise ValueError(
                "width, depth and head must be >= 1, num_outputs and spatial >= 0 and dropout in [0, 1); "
                f"got width={width}, depth={depth}, head={head}, spatial={spatial}, "
                f"num_outputs={num_outputs}, dropout={dropout}"
            )
        self.num_outputs = num_outputs
        towers = [Tower(width, depth, se, spatial) for _ in range(N_VIEWS)]
        self.towers = nn.ModuleList(towers)
        merged = sum(t.out_features for t in towers)
        self.trunk = nn.Sequential(nn.Linear(merged, head), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.num_features = head
        self.fc: nn.Module = nn.Linear(head, num_outputs) if num_outputs else nn.Identity()

    def tower_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Per-view features before merging: tower ``v`` sees only ``x[:, v:v+1]``."""
        return [tower(x[:, v : v + 1]) for v, tower in enumerate(self.towers)]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The shared features ``(n, num_features)``: both towers, merged, through the trunk."""
        return self.trunk(torch.cat(self.tower_features(x), dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.fc(self.forward_features(x))
        return logits.squeeze(1) if self.num_outputs == 1 else logits
