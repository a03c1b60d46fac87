"""DVC stage ``train``: fit the classifier on ``data/shards`` and write ``data/model``.

Reads ``params.yaml: train``; all logic lives in :func:`nucvn.train.train`. With ``train.gpus > 1``
the stage relaunches itself under ``torchrun --nproc_per_node=gpus`` (DDP). The paths can be
overridden on the command line (tests use that to run the stage on tiny data). Checkpoints live
in ``data/checkpoints/train`` (not a DVC output, so an interrupted ``dvc repro`` resumes).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from nucvn.atomic import write_json
from nucvn.distributed import in_torchrun, launch_torchrun
from nucvn.errors import NucvnError
from nucvn.shards import ShardDataset
from nucvn.train import TrainConfig, train


def _args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.add_argument("--shards", type=Path, default=Path("data/shards"))
    p.add_argument("--model-dir", type=Path, default=Path("data/model"))
    p.add_argument("--checkpoint-dir", type=Path, default=Path("data/checkpoints/train"))
    p.add_argument("--metrics", type=Path, default=Path("metrics/train.json"))
    p.add_argument("--history", type=Path, default=Path("plots/train_history.csv"))
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def _config(p: dict[str, Any]) -> TrainConfig:
    return TrainConfig(
        model=str(p["model"]),
        model_kwargs=dict(p.get("model_kwargs") or {}),
        epochs=int(p["epochs"]),
        batch_size=int(p["batch_size"]),
        optimizer=p["optimizer"],
        lr=float(p["lr"]),
        schedule=p["schedule"],
        weight_decay=float(p["weight_decay"]),
        momentum=float(p["momentum"]),
        seed=int(p["seed"]),
        scale=p["scale"],
        balance=p["balance"],
        patience=int(p["patience"]),
        augment=bool(p["augment"]),
        workers=int(p["workers"]),
        device=p["device"],
        gpus=int(p["gpus"]),
    )


def main(argv: list[str]) -> int:
    args = _args(argv)
    params = yaml.safe_load(args.params.read_text()) or {}
    if not isinstance(params.get("train"), dict):
        raise NucvnError(f"{args.params}: no 'train' section")
    try:
        config = _config(params["train"])
    except KeyError as exc:
        raise NucvnError(f"{args.params}: train.{exc.args[0]} is missing") from exc
    config.validate()
    if config.gpus > 1 and not in_torchrun():
        return launch_torchrun(__file__, argv, config.gpus)
    result = train(
        ShardDataset(args.shards, "train"),
        ShardDataset(args.shards, "val"),
        model_dir=args.model_dir,
        checkpoint_dir=args.checkpoint_dir,
        history_path=args.history,
        config=config,
        progress=not args.no_progress,
    )
    if int(os.environ.get("RANK", "0")) == 0:
        write_json(result, args.metrics)
        print(f"train: best epoch {result['best_epoch']}: val AUC {result['val_auc']:.4f}, "
              f"val loss {result['val_loss']:.4f} ({result['events_per_s']:.0f} events/s on {result['device']})")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except NucvnError as exc:
        print(f"stage train: error: {exc}", file=sys.stderr)
        sys.exit(2)
