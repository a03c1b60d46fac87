"""Checkpoints: atomic, weights_only-loadable, ignored when stale, refused when damaged (sha256)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import torch

from nucvn.core.errors import NucvnError
from nucvn.train.checkpoint import (
    hash_path,
    load_checkpoint,
    remove_checkpoint,
    restore_rng_state,
    rng_state,
    save_atomic,
)


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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt", "ckpt.sha256.json"]  # no temporary file left
    ckpt = load_checkpoint(path, "abc")
    assert ckpt is not None and ckpt["history"][0]["val_loss"] == 0.5
    restore_rng_state(ckpt["rng"])
    assert torch.equal(torch.rand(4), expected)
    torch.optim.AdamW(model.parameters()).load_state_dict(ckpt["optimizer"])


def test_stale_or_unverifiable_checkpoints_are_ignored(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ckpt.pt"
    assert load_checkpoint(path, "abc") is None
    save_atomic({"fingerprint": "old"}, path)
    assert load_checkpoint(path, "new") is None
    assert "another configuration" in capsys.readouterr().out
    hash_path(path).unlink()  # e.g. a checkpoint from before hashes were recorded
    assert load_checkpoint(path, "old") is None
    assert "no recorded sha256" in capsys.readouterr().out


def test_damaged_checkpoint_is_refused_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    save_atomic({"fingerprint": "abc", "w": torch.arange(1000.0)}, path)
    assert json.loads(hash_path(path).read_text())["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    raw = bytearray(path.read_bytes())
    raw[-600:-500] = bytes(100)  # same size, different bytes
    path.write_bytes(bytes(raw))
    with pytest.raises(NucvnError) as err:
        load_checkpoint(path, "abc")
    assert str(err.value).startswith(f"{path}: sha256") and "delete it to start training afresh" in str(err.value)
    assert "\n" not in str(err.value)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(NucvnError, match="delete it"):
        load_checkpoint(path, "abc")


def test_kill_between_hash_record_and_rename_still_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hash record is renamed into place before the checkpoint and keeps the previous hash:
    a kill between the two renames leaves the old checkpoint, which still matches."""
    path = tmp_path / "checkpoint.pt"
    save_atomic({"fingerprint": "abc", "epoch": 0}, path)
    replace = os.replace

    def killed(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(dst) == path:
            raise KeyboardInterrupt
        replace(src, dst)

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        save_atomic({"fingerprint": "abc", "epoch": 1}, path)
    monkeypatch.undo()
    ckpt = load_checkpoint(path, "abc")
    assert ckpt is not None and ckpt["epoch"] == 0
    save_atomic({"fingerprint": "abc", "epoch": 1}, path)
    save_atomic({"fingerprint": "abc", "epoch": 2}, path)
    assert load_checkpoint(path, "abc")["epoch"] == 2  # type: ignore[index]
    remove_checkpoint(path)
    assert list(tmp_path.iterdir()) == []


def test_a_pickled_object_is_refused(tmp_path: Path) -> None:
    """weights_only=True: a checkpoint holding an arbitrary class is treated as unreadable."""
    path = tmp_path / "ckpt.pt"
    save_atomic({"fingerprint": "abc", "obj": Path("x")}, path)
    assert load_checkpoint(path, "abc") is None


def test_cuda_rng_states_are_restored_for_the_devices_there_are(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run saved on 3 GPUs and resumed on 1 restores device 0's state instead of failing."""
    restored: list[tuple[int, torch.Tensor]] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, device: restored.append((device, s)))
    saved = [torch.full((8,), k, dtype=torch.uint8) for k in range(3)]
    restore_rng_state({"torch": torch.get_rng_state(), "cuda": saved})
    assert len(restored) == 1 and restored[0][0] == 0 and torch.equal(restored[0][1], saved[0])
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    restored.clear()
    restore_rng_state({"torch": torch.get_rng_state(), "cuda": saved})
    assert [d for d, _ in restored] == [0, 1, 2]
