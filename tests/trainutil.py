"""Helpers for the training and inference tests: tiny, learnable shard directories and params."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors.torch
import torch
import yaml

from conftest import random_events
from nucvn.core.events import numu_cc
from nucvn.data.h5write import write_events
from nucvn.data.shards import ShardDataset, build_shards

__all__ = ["learnable_events", "make_shards", "write_params", "TINY_TRAIN", "DDP_TRAIN", "STAGE", "even_shards",
           "stage_command", "stage_env", "model_weights", "assert_matches_one_process"]

STAGE = Path(__file__).resolve().parents[1] / "stages" / "train.py"

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


DDP_TRAIN: dict[str, Any] = {"model": "seed_report", "model_kwargs": {"seed_report": {"hidden": 16, "dropout": 0.0}},
                             "lr": 0.003, "batch_size": 16}
"""Overrides of :data:`TINY_TRAIN` under which N processes must reproduce 1: seed_report without
dropout has no batch norm (on a CPU each rank normalises its own part of the batch) and no dropout
masks to differ between ranks; 16 splits evenly over 1, 2 and 4 processes."""


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


def even_shards(directory: Path, ranks: int) -> Path:
    """Tiny shards (2 files of 100 events) whose train split divides evenly among ``ranks``
    processes, so that no rank pads its share with a repeated event and N ranks see exactly the
    events of one; the first such seed from 0."""
    for seed in range(20):
        shards = make_shards(directory / f"data{seed}", n_per_file=100, files=2, seed=seed)
        if len(ShardDataset(shards, "train")) % ranks == 0:
            return shards
    raise AssertionError(f"no seed below 20 gives a train split divisible by {ranks}")


def stage_command(params: Path, shards: Path, out: Path) -> list[str]:
    """``python stages/train.py`` reading ``params``, training on ``shards`` and writing every
    output (model, checkpoint, info, DVCLive history and metrics in ``live``) under ``out``; run it
    with ``cwd`` the repository."""
    return [sys.executable, str(STAGE), "--params", str(params), "--shards", str(shards), "--model-dir",
            str(out / "model"), "--checkpoint-dir", str(out / "ckpt"), "--live-dir", str(out / "live"), "--info",
            str(out / "info.json"), "--no-progress"]


def stage_env() -> dict[str, str]:
    """The environment for a stage subprocess: one intra-op thread per process, since several
    processes share the two cores of CI."""
    return os.environ | {"OMP_NUM_THREADS": "1"}


def model_weights(out: Path) -> dict[str, torch.Tensor]:
    """The weights a stage run wrote under ``out`` (:func:`stage_command`)."""
    return safetensors.torch.load_file(str(out / "model" / "model.safetensors"))


def assert_matches_one_process(one: Path, many: Path, processes: int) -> None:
    """The run under ``many`` (``processes`` DDP ranks) reached the weights and validation numbers of
    the single-process run under ``one`` (both :func:`stage_command` output folders): same global
    batches and averaged gradients, so equal up to float summation order."""
    w1, wn = model_weights(one), model_weights(many)
    assert w1.keys() == wn.keys()
    for k in w1:
        torch.testing.assert_close(w1[k], wn[k], rtol=1e-4, atol=1e-5)
    m1 = json.loads((one / "live" / "metrics.json").read_text())
    mn = json.loads((many / "live" / "metrics.json").read_text())
    counts = [json.loads((run / "model" / "model.json").read_text())["result"]["info"]["processes"]
              for run in (one, many)]
    assert counts == [1, processes] and m1["best_epoch"] == mn["best_epoch"]
    assert m1["val_auc"] > 0.8
    for key in ("val_loss", "val_auc", "val_accuracy"):
        assert mn[key] == pytest.approx(m1[key], rel=1e-4, abs=1e-5), key
