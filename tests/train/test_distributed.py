"""The device choices of nucvn.train.distributed that need no GPU to check."""

from __future__ import annotations

import pytest
import torch

from nucvn.train.distributed import autocast, bf16_autocast


@pytest.mark.parametrize(("capability", "expected"), [((7, 0), False), ((7, 5), False), ((8, 0), True), ((9, 0), True)])
def test_bf16_only_on_gpus_that_have_it(monkeypatch: pytest.MonkeyPatch, capability: tuple[int, int],
                                        expected: bool) -> None:
    """V100 (7.0) and T4 (7.5) train in fp32; A100 (8.0) and H100/H200 (9.0) in bf16 autocast."""
    asked: list[torch.device] = []
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d: asked.append(d) or capability)
    assert bf16_autocast(torch.device("cuda", 1)) is expected
    assert asked == [torch.device("cuda", 1)]  # the device's own capability, not the current device's


def test_no_autocast_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d: pytest.fail("asked a GPU on the CPU"))
    assert not bf16_autocast(torch.device("cpu"))
    with autocast(torch.device("cpu")):
        y = torch.nn.Linear(4, 2)(torch.ones(1, 4))
    assert y.dtype == torch.float32
