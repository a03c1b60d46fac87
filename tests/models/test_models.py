"""Models: registry, shapes, gradients, cvn2v's view separation and the ports' layer structure."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from nucvn.core.errors import NucvnError
from nucvn.core.events import IMAGE_SHAPE
from nucvn.models import create_model, list_models, register_model, scale_pixels
from nucvn.models.cvn2v import CVN2V
from nucvn.models.seed_notebook import KerasInception, SeedNotebook, SeparableConv2d
from nucvn.models.seed_report import SeedReport

SMALL = {"cvn2v": {"width": 4, "head": 8}, "seed_notebook": {}, "seed_report": {"hidden": 8}}


def _x(n: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.rand((n, *IMAGE_SHAPE), generator=torch.Generator().manual_seed(seed))


def test_registry_lists_the_three_models() -> None:
    assert list_models() == ["cvn2v", "seed_notebook", "seed_report"]
    assert isinstance(create_model("cvn2v", width=4), CVN2V)


def test_unknown_model_lists_known_names() -> None:
    with pytest.raises(NucvnError, match=r"unknown model 'resnet'.*cvn2v, seed_notebook, seed_report"):
        create_model("resnet")


def test_bad_size_argument_is_a_nucvn_error() -> None:
    with pytest.raises(NucvnError, match="widht"):
        create_model("cvn2v", widht=8)


def test_registering_a_name_twice_fails() -> None:
    with pytest.raises(ValueError, match="twice"):
        register_model("cvn2v")(SeedReport)


@pytest.mark.parametrize("name", ["cvn2v", "seed_notebook", "seed_report"])
def test_forward_backward_shapes(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, **SMALL[name])
    x = _x(4)
    logits = model(x)
    assert logits.shape == (4,) and logits.dtype == torch.float32
    logits.sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0
    multi = create_model(name, num_outputs=3, **SMALL[name])
    assert multi(x).shape == (4, 3)


@pytest.mark.parametrize("name", ["cvn2v", "seed_notebook", "seed_report"])
def test_every_model_is_a_backbone(name: str) -> None:
    """forward_features gives (n, num_features); the last layer maps them to logits; without a last
    layer (num_outputs=0) the model returns the features and holds no output parameters."""
    torch.manual_seed(0)
    model = create_model(name, **SMALL[name]).eval()
    x = _x(3)
    with torch.no_grad():
        features = model.forward_features(x)
        assert features.shape == (3, model.num_features)
        torch.testing.assert_close(model(x), model.fc(features).squeeze(1))
    bare = create_model(name, num_outputs=0, **SMALL[name])
    assert isinstance(bare.fc, nn.Identity) and bare.num_features == model.num_features
    assert sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in bare.parameters()) == \
        model.num_features + 1
    with pytest.raises(NucvnError):
        create_model(name, num_outputs=-1, **SMALL[name])


@pytest.mark.parametrize("name", ["cvn2v", "seed_notebook", "seed_report"])
def test_eval_mode_is_deterministic_and_batch_independent(name: str) -> None:
    torch.manual_seed(1)
    model = create_model(name, **SMALL[name]).eval()
    x = _x(5)
    with torch.no_grad():
        full = model(x)
        single = torch.cat([model(x[i : i + 1]) for i in range(5)])
    torch.testing.assert_close(full, single, rtol=1e-4, atol=1e-5)


def test_cvn2v_towers_see_only_their_own_view() -> None:
    torch.manual_seed(0)
    model = create_model("cvn2v", width=4, head=8).eval()
    x = _x(3)
    changed = x.clone()
    changed[:, 1] = torch.rand(changed[:, 1].shape)
    with torch.no_grad():
        f0, f1 = model.tower_features(x)
        g0, g1 = model.tower_features(changed)
        zeroed = x.clone()
        zeroed[:, 0] = 0
        h0, h1 = model.tower_features(zeroed)
    torch.testing.assert_close(f0, g0)  # view 1 changed: tower 0 untouched
    assert not torch.allclose(f1, g1)
    torch.testing.assert_close(f1, h1)  # view 0 zeroed: tower 1 untouched
    assert not torch.allclose(f0, h0)
    assert model.towers[0] is not model.towers[1]
    assert model.towers[0].features[0][0].weight.data_ptr() != model.towers[1].features[0][0].weight.data_ptr()


def test_cvn2v_swapping_views_changes_the_output() -> None:
    """Separate weights per view: the model knows which view is X-Z."""
    torch.manual_seed(0)
    model = create_model("cvn2v", width=4, head=8).eval()
    x = _x(3)
    with torch.no_grad():
        assert not torch.allclose(model(x), model(x.flip(1)))


def test_cvn2v_width_and_depth_scale_the_model() -> None:
    def n(m: nn.Module) -> int:
        return sum(p.numel() for p in m.parameters())

    assert n(create_model("cvn2v", width=8)) > n(create_model("cvn2v", width=4))
    assert n(create_model("cvn2v", width=4, depth=2)) > n(create_model("cvn2v", width=4, depth=1))
    with pytest.raises(NucvnError):
        create_model("cvn2v", width=0)


def test_seed_notebook_layers_match_the_notebook() -> None:
    m = SeedNotebook()
    sep = m.features[0]
    assert isinstance(sep, SeparableConv2d)
    depthwise, pointwise = sep.depthwise, sep.pointwise
    conv2, conv3 = [c for c in m.features if isinstance(c, nn.Conv2d)]
    assert (depthwise.in_channels, depthwise.out_channels, depthwise.groups, depthwise.kernel_size) == (2, 2, 2, (7, 7))
    assert depthwise.bias is None and pointwise.kernel_size == (1, 1) and pointwise.out_channels == 32
    assert (conv2.out_channels, conv2.kernel_size, conv2.padding) == (64, (3, 3), (0, 0))
    assert (conv3.in_channels, conv3.out_channels, conv3.kernel_size) == (208, 64, (3, 3))
    dropouts = [(type(d).__name__, d.p) for d in [*m.features, *m.trunk] if isinstance(d, nn.Dropout | nn.Dropout2d)]
    assert dropouts == [("Dropout2d", 0.4), ("Dropout", 0.4), ("Dropout", 0.7), ("Dropout", 0.8), ("Dropout", 0.8)]
    inc = next(c for c in m.features if isinstance(c, KerasInception))
    channels = [inc.b1.out_channels, inc.b3[2].out_channels, inc.b5[2].out_channels, inc.bp.out_channels]
    assert channels == [64, 96, 16, 32]
    assert inc.b3[0].out_channels == 96 and inc.b5[0].out_channels == 16
    assert inc.b3[2].kernel_size == (3, 3) and inc.b5[2].kernel_size == (5, 5)
    dense = [lin for lin in [*m.trunk, m.fc] if isinstance(lin, nn.Linear)]
    # valid convs and 2x2 pools: 100x80 -> 94x74 -> 47x37 -> 45x35 -> 22x17 -> (inception, same) -> 20x15
    assert [(d.in_features, d.out_features) for d in dense] == [(64 * 20 * 15, 128), (128, 64), (64, 1)]


def test_separable_conv_equals_depthwise_then_pointwise() -> None:
    torch.manual_seed(0)
    sep = SeparableConv2d(2, 5, 7)
    x = _x(2)
    reference = sep.pointwise(sep.depthwise(x))
    torch.testing.assert_close(sep(x), reference, rtol=1e-4, atol=1e-5)
    assert sum(p.numel() for p in sep.parameters()) == 2 * 49 + 2 * 5 + 5


def test_keras_inception_pool_branch_pads_bottom_right() -> None:
    """Keras MaxPooling2D(2, strides=1, padding='same') pads after, not before."""
    inc = KerasInception(1, 1, 1, 1, 1)
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 3, 3] = 5.0
    pooled = torch.nn.functional.max_pool2d(torch.nn.functional.pad(x, (0, 1, 0, 1), value=float("-inf")), 2, 1)
    assert pooled.shape == x.shape and pooled[0, 0, 2, 2] == 5.0 and pooled[0, 0, 3, 3] == 5.0
    assert inc(x).shape == (1, 4, 4, 4)


def test_seed_report_has_one_branch_per_view() -> None:
    torch.manual_seed(0)
    m = SeedReport().eval()
    assert len(m.branches) == 2 and m.branches[0] is not m.branches[1]
    for branch in m.branches:
        convs = [c for c in branch if isinstance(c, nn.Conv2d)]
        assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [(1, 16, (3, 3)), (16, 32, (5, 5))]
        assert [d.p for d in branch if isinstance(d, nn.Dropout)] == [0.25, 0.25]
        assert sum(isinstance(p, nn.MaxPool2d) for p in branch) == 2
    dense = [lin for lin in [*m.trunk, m.fc] if isinstance(lin, nn.Linear)]
    # 100x80 -> 98x78 -> 49x39 -> 45x35 -> 22x17, 32 channels per view
    assert [(d.in_features, d.out_features) for d in dense] == [(2 * 32 * 22 * 17, 64), (64, 1)]
    x = _x(2)
    y = x.clone()
    y[:, 1] = 0
    with torch.no_grad():
        a = m.branches[0](x[:, 0:1])
        b = m.branches[0](y[:, 0:1])
    torch.testing.assert_close(a, b)


def test_scale_pixels() -> None:
    raw = torch.tensor([0, 1, 255], dtype=torch.uint8)
    torch.testing.assert_close(scale_pixels(raw, "div255"), torch.tensor([0.0, 1 / 255, 1.0]))
    log = scale_pixels(raw, "log1p")
    assert log[0] == 0 and abs(float(log[2]) - 1.0) < 1e-6 and 0 < log[1] < 0.2
    with pytest.raises(NucvnError, match=re.escape("train.scale")):
        scale_pixels(raw, "sqrt")  # type: ignore[arg-type]


def test_cvn2v_squeeze_excitation_gates_channels_per_event() -> None:
    """``se=True`` adds one gate per residual block; each scales a block's channels by a factor in
    (0, 1) computed from that event's own feature maps, so events do not affect each other."""
    from nucvn.models.cvn2v import SqueezeExcite

    plain, se = create_model("cvn2v", width=4, head=8), create_model("cvn2v", width=4, head=8, se=True)
    gates = [m for m in se.modules() if isinstance(m, SqueezeExcite)]
    assert len(gates) == 2 * 3 and not any(isinstance(m, SqueezeExcite) for m in plain.modules())
    gate = SqueezeExcite(8)
    x = torch.rand(2, 8, 5, 4) + 0.1
    y = gate(x)
    ratio = y / x
    assert torch.all((ratio > 0) & (ratio < 1))
    assert torch.allclose(ratio, ratio[:, :, :1, :1].expand_as(ratio))  # one factor per channel and event
    assert torch.allclose(gate(x[:1]), y[:1])
    se.eval()
    out = se(_x())
    assert out.shape == (3,) and torch.isfinite(out).all()


def test_cvn2v_spatial_features_keep_where_a_track_ends() -> None:
    """``spatial=k`` adds k channels of each tower's 7x5 map, cell by cell, to the global pools:
    the features of a track then depend on where it ends, which the pooled features barely see."""
    from nucvn.models.cvn2v import Tower

    torch.manual_seed(0)
    tower = Tower(width=4, depth=1, spatial=3).eval()
    assert tower.out_features == 2 * 4 * 4 + 3 * 7 * 5
    short, long = torch.zeros(1, 1, 100, 80), torch.zeros(1, 1, 100, 80)
    short[0, 0, 10:40, 40] = 0.5
    long[0, 0, 10:90, 40] = 0.5
    f_short, f_long = tower(short), tower(long)
    assert f_short.shape == (1, tower.out_features)
    spatial_diff = (f_short[:, 32:] - f_long[:, 32:]).abs()
    assert spatial_diff.reshape(3, 7, 5).sum(dim=(0, 2)).nonzero().numel() >= 3  # several plane rows differ
    with pytest.raises(NucvnError):
        create_model("cvn2v", spatial=-1)
    assert create_model("cvn2v", width=4, head=8, spatial=2)(_x()).shape == (3,)
