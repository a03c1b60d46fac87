"""Training checkpoints: written atomically, read back with ``torch.load(weights_only=True)``.

A checkpoint is a dict of tensors, state dicts and plain containers (no custom classes, RNG states
as uint8 tensors), so loading it never unpickles code. It carries a fingerprint of the training
configuration and data; :func:`load_checkpoint` returns ``None`` for a checkpoint with another
fingerprint or one that cannot be read, so a stale or damaged file is replaced, never trusted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from nucvn.atomic import atomic_write

__all__ = ["CHECKPOINT", "rng_state", "restore_rng_state", "save_atomic", "load_checkpoint"]

CHECKPOINT = "checkpoint.pt"


def rng_state() -> dict[str, Any]:
    """The CPU (and CUDA) RNG states as uint8 tensors."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary name in the same directory, then rename onto ``path``."""
    atomic_write(path, lambda p: torch.save(obj, p))


def load_checkpoint(path: Path, fingerprint: str) -> dict[str, Any] | None:
    """The checkpoint at ``path`` if it exists, is readable and matches ``fingerprint``; else None."""
    if not path.is_file():
        return None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged checkpoint is replaced, never trusted
        print(f"train: ignoring unreadable checkpoint {path} ({exc})")
        return None
    if ckpt.get("fingerprint") != fingerprint:
        print(f"train: {path} is from another configuration or data; starting from scratch")
        return None
    return ckpt


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state` (CUDA states only where CUDA is available)."""
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
