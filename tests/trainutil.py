"""Helpers for the training and inference tests: tiny, learnable shard directories and params."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from conftest import random_events
from nucvn.core.events import numu_cc
from nucvn.data.h5write import write_events
from nucvn.data.shards import build_shards

__all__ = ["learnable_events", "make_shards", "write_params", "TINY_TRAIN"]

TINY_TRAIN: dict[str, Any] = {
    "model": "cvn2v",
    "model_kwargs": {"cvn2v": {"width": 4, "head": 8}, "seed_notebook": {}, "seed_report": {}},
    "epochs": 2,
    "batch_size": 32,
    "optimizer": "adamw",
    "lr": 0.01,
    "schedule": "onecycle",
    "weight_decay": 0.0001,
    "momentum": 0.9,
    "seed": 0,
    "scale": "log1p",
    "balance": "weights",
    "patience": 3,
    "augment": False,
    "workers": 0,
    "device": "cpu",
    "gpus": 1,
    "tasks": "auto",
    "task_weights": {"numu_cc": 1.0, "flavour": 0.1, "mode": 0.1, "nuenergy": 0.1, "lepton_fraction": 0.1,
                     "nproton": 0.1, "npion": 0.1, "npizero": 0.1},
    "loss_weighting": "fixed",
}
"""Tiny training parameters. The images of :func:`learnable_events` tell only νμ CC apart (the other
labels are noise there), so the auxiliary tasks weigh 0.1 and do not drown the νμ CC signal in a
2-epoch, 8-feature network."""


def learnable_events(n: int, seed: int, *, counts: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Random events (conftest) with a pattern that tells the classes apart: every νμ CC event
    gets a long straight track in both views, every other event a compact blob. ``counts`` adds
    the simulated-only ``nproton``, ``npion`` and ``npizero`` columns and ties every label to the
    pattern (track events: about 10 GeV, lepton energy fraction 0.8, 0 protons, 1 pion, 0 π0;
    blob events: about 1.5 GeV, 0.2, 2, 3, 1), so that every task has something to learn."""
    images, meta = random_events(n, seed)
    rng = np.random.default_rng(seed + 1000)
    images[:] = 0
    signal = numu_cc(meta["interaction"])
    if counts:
        meta["nuenergy"] = np.where(signal, rng.uniform(8, 12, n), rng.uniform(1, 2, n)).astype(np.float32)
        meta["lepenergy"] = (meta["nuenergy"] * np.where(signal, 0.8, 0.2)).astype(np.float32)
        for key, (yes, no) in {"nproton": (0, 2), "npion": (1, 3), "npizero": (0, 1)}.items():
            meta[key] = np.where(signal, yes, no).astype(np.uint16)
    for i in range(n):
        for v in range(2):
            p0, c0 = int(rng.integers(5, 30)), int(rng.integers(10, 70))
            if signal[i]:
                planes = np.arange(p0, p0 + 60)
                cells = np.clip(c0 + ((planes - p0) * rng.uniform(-0.3, 0.3)).astype(int), 0, 79)
                images[i, v, planes, cells] = rng.integers(60, 200, planes.size)
            else:
                images[i, v, p0 : p0 + 6, c0 : c0 + 5] = rng.integers(60, 250, (6, 5))
    return images, meta


def make_shards(directory: Path, n_per_file: int = 200, files: int = 2, seed: int = 0, *, counts: bool = False) -> Path:
    """Write ``files`` learnable event files (``counts``: with particle counts) and shard them
    (70/15/15) into ``directory/shards``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(files):
        images, meta = learnable_events(n_per_file, seed + k, counts=counts)
        paths.append(write_events(directory / f"neutrino{k + 1}.h5", images, meta))
    build_shards(paths, directory / "shards", split={"train": 0.7, "val": 0.15, "test": 0.15}, seed=seed,
                 shard_size=128, progress=False)
    return directory / "shards"


def write_params(path: Path, **overrides: Any) -> Path:
    """A params.yaml with a ``train`` section: :data:`TINY_TRAIN` updated with ``overrides``."""
    path.write_text(yaml.safe_dump({"train": TINY_TRAIN | overrides}))
    return path
