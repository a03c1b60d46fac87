"""Helpers shared by the evaluation-side tests: tiny shards and a tiny model trained by the real
training code (nucvn.train), so the threshold/evaluate stages and the predict command run on
exactly what the pipeline produces, in a few seconds."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from conftest import random_events
from nucvn.data.h5write import write_events
from nucvn.data.manifest import write_manifest
from nucvn.data.shards import ShardDataset, build_shards
from nucvn.train import TrainConfig, train

EVAL_PARAMS = {
    "threshold": {"criterion": "balanced_accuracy", "target": 0.9, "points": 101, "batch_size": 64, "device": "cpu"},
    "evaluate": {
        "batch_size": 64,
        "device": "cpu",
        "misid_variables": ["nuenergy", "visible_energy"],
        "score_bins": 20,
        "roc_points": 200,
        "gallery_events": 2,
        "confidence_level": 0.6827,
        "preselection": {"min_hits": 15, "downstream_planes": 0,
                         "downstream_max_hits": 2,  # random images light every plane
                         "fiducial": {"x": [-700, 700], "y": [-700, 700], "z": [100, 5700]}},
    },
}
EVAL_BINS = {
    "nuenergy": [0, 2, 5, 10, 20],
    "lepenergy": [0, 1, 5, 20],
    "lepton_fraction": [0, 0.5, 1],
    "inelasticity": [0, 0.5, 1],
    "vtxx": [-800, 0, 800],
    "vtxz": [0, 3000, 6000],
    "nhits": [0, 300, 400, 16000],
    "visible_energy": [0, 1, 5, 20],
}


def make_raw(raw: Path, *, files: int = 2, events: int = 160) -> list[Path]:
    """Random event files plus a MANIFEST.json saying they are simulated."""
    paths = []
    for i in range(files):
        images, meta = random_events(events, seed=100 + i)
        paths.append(write_events(raw / f"neutrino{i + 1}.h5", images, meta, attrs={"generator": "test fixture"}))
    write_manifest(raw, {"source": "sim", "complete": True, "files": [{"name": p.name} for p in paths]})
    return paths


def make_shards(root: Path, *, files: int = 2, events: int = 160) -> Path:
    """``root/raw`` event files and ``root/shards`` (40 % val, 40 % test so both hold events)."""
    paths = make_raw(root / "raw", files=files, events=events)
    build_shards(paths, root / "shards", split={"train": 0.2, "val": 0.4, "test": 0.4}, seed=0, shard_size=64,
                 progress=False)
    return root / "shards"


def make_model(root: Path, shards: Path) -> Path:
    """A 1-epoch, width-2 cvn2v trained by nucvn.train on ``shards``; returns the model directory."""
    cfg = TrainConfig(model="cvn2v", model_kwargs={"cvn2v": {"width": 2, "depth": 1, "head": 8}}, epochs=1,
                      batch_size=32, lr=2e-3, weight_decay=1e-4, augment=False, patience=1, device="cpu", seed=0)
    train(ShardDataset(shards, "train"), ShardDataset(shards, "val"), model_dir=root / "model",
          checkpoint_dir=root / "ckpt", config=cfg, progress=False)
    assert json.loads((root / "model" / "model.json").read_text())["model"] == "cvn2v"
    return root / "model"


def write_params(path: Path, **overrides: dict) -> Path:
    """``params.yaml`` holding the threshold and evaluate sections (with per-section overrides), and
    ``bins.yaml`` beside it (where the evaluate stage looks for it by default)."""
    params = {k: dict(v) for k, v in EVAL_PARAMS.items()}
    for section, values in overrides.items():
        params[section].update(values)
    path.write_text(yaml.safe_dump(params))
    (path.parent / "bins.yaml").write_text(yaml.safe_dump(EVAL_BINS))
    return path
