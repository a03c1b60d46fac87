"""Checkpoints: atomic, weights_only-loadable, refused when stale or damaged."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nucvn.checkpoint import load_checkpoint, restore_rng_state, rng_state, save_atomic


def test_round_trip_with_weights_only(tmp_path: Path) -> None:
    torch.manual_seed(3)
    state = rng_state()
    expected = torch.rand(4)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    path = tmp_path / "ckpt.pt"
    save_atomic({"fingerprint": "abc", "rng": state, "model": model.state_dict(), "optimizer": opt.state_dict(),
                 "history": [{"epoch": 1.0, "val_loss": 0.5}]}, path)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temporary file left
    ckpt = load_checkpoint(path, "abc")
    assert ckpt is not None and ckpt["history"][0]["val_loss"] == 0.5
    restore_rng_state(ckpt["rng"])
    assert torch.equal(torch.rand(4), expected)
    torch.optim.AdamW(model.parameters()).load_state_dict(ckpt["optimizer"])


def test_stale_or_damaged_checkpoints_are_ignored(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ckpt.pt"
    assert load_checkpoint(path, "abc") is None
    save_atomic({"fingerprint": "old"}, path)
    assert load_checkpoint(path, "new") is None
    assert "another configuration" in capsys.readouterr().out
    path.write_bytes(b"not a checkpoint")
    assert load_checkpoint(path, "new") is None
    assert "unreadable" in capsys.readouterr().out


def test_a_pickled_object_is_refused(tmp_path: Path) -> None:
    """weights_only=True: a checkpoint holding an arbitrary class is treated as unreadable."""
    path = tmp_path / "ckpt.pt"
    torch.save({"fingerprint": "abc", "obj": Path("x")}, path)
    assert load_checkpoint(path, "abc") is None
