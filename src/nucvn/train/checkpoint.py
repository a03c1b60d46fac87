"""Training checkpoints: written atomically with their sha256, read back with ``torch.load(weights_only=True)``.

A checkpoint is a dict of tensors, state dicts and plain containers (no custom classes, RNG states
as uint8 tensors), so loading it never unpickles code. It carries a fingerprint of the training
configuration and data; :func:`load_checkpoint` returns ``None`` for a checkpoint with another
fingerprint, one that cannot be read or one without a recorded hash, so that the run starts
afresh and replaces it.

Beside ``checkpoint.pt`` lies ``checkpoint.sha256.json`` with the file's sha256. A checkpoint whose
bytes do not match is damaged (a disk or copy error): resuming from it would silently continue
from corrupted weights, and starting over would silently throw away the run, so
:func:`load_checkpoint` refuses it with one line saying to delete it. The hash file is written
*before* the checkpoint is renamed into place and also lists the hash of the checkpoint it
replaces, so a kill between the two renames leaves a pair that still matches.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import torch

from nucvn.core.atomic import atomic_write, write_json
from nucvn.core.errors import NucvnError

__all__ = ["CHECKPOINT", "rng_state", "restore_rng_state", "save_atomic", "load_checkpoint", "remove_checkpoint",
           "hash_path"]

CHECKPOINT = "checkpoint.pt"


def hash_path(path: Path) -> Path:
    """Where the sha256 of checkpoint ``path`` is recorded: ``checkpoint.pt`` -> ``checkpoint.sha256.json``."""
    return Path(path).with_suffix(".sha256.json")


def rng_state() -> dict[str, Any]:
    """The CPU (and CUDA) RNG states as uint8 tensors."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _recorded(path: Path) -> set[str]:
    """The hashes the record beside checkpoint ``path`` accepts (empty: none recorded)."""
    try:
        record = json.loads(hash_path(path).read_text())
    except (OSError, ValueError):
        return set()
    if not isinstance(record, dict):
        return set()
    return {h for h in (record.get("sha256"), record.get("previous_sha256")) if isinstance(h, str)}


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary name beside ``path``, record its sha256, rename onto ``path``.

    A full disk becomes one :class:`NucvnError` naming the file.
    """
    path = Path(path)
    previous = None
    if path.is_file():
        in_place = _sha256(path)
        previous = in_place if in_place in _recorded(path) else None

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a Python file: a full disk raises OSError (ENOSPC), not a RuntimeError
            torch.save(obj, f)
        write_json({"file": path.name, "sha256": _sha256(tmp), "previous_sha256": previous}, hash_path(path))

    atomic_write(path, write)


def load_checkpoint(path: Path, fingerprint: str) -> dict[str, Any] | None:
    """The checkpoint at ``path`` if it exists, has a recorded hash, is readable and matches
    ``fingerprint``; else None. Raises :class:`NucvnError` if its bytes do not match the hash."""
    path = Path(path)
    if not path.is_file():
        return None
    accepted = _recorded(path)
    if not accepted:
        print(f"train: {path} has no recorded sha256 ({hash_path(path).name}); starting from scratch")
        return None
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() not in accepted:
        raise NucvnError(f"{path}: sha256 differs from the one recorded in {hash_path(path).name} (the checkpoint "
                         f"is damaged); delete it to start training afresh (rm {path})")
    try:
        ckpt = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - an unreadable checkpoint is replaced, never trusted
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        print(f"train: ignoring unreadable checkpoint {path} ({reason})")
        return None
    if not isinstance(ckpt, dict) or ckpt.get("fingerprint") != fingerprint:
        print(f"train: {path} is from another configuration or data; starting from scratch")
        return None
    return ckpt


def remove_checkpoint(path: Path) -> None:
    """Delete checkpoint ``path`` and its hash record (a finished run does not resume)."""
    Path(path).unlink(missing_ok=True)
    hash_path(path).unlink(missing_ok=True)


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`. CUDA states are restored where CUDA is available, device by
    device for the devices both runs saw: a run resumed on a machine with fewer (or more) GPUs
    than it was saved on restores what it can instead of failing."""
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        for device, cuda_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state, device)
