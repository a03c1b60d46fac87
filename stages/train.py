"""DVC stage ``train``: fit the classifier on ``data/shards`` and write ``data/model``.

Reads ``params.yaml: train`` into :class:`nucvn.train.TrainConfig` (the one typed definition of
the training parameters, holding their defaults); all logic lives in :func:`nucvn.train.train`.
The training history goes through DVCLive into ``dvclive/`` (:mod:`nucvn.train.live`): the
parameters (``params.yaml``), one TSV per metric and epoch (``plots/metrics/``) and the quality
numbers of the best epoch (``metrics.json``, what ``dvc exp show`` lists); the bookkeeping
(events/s, device, counts) goes to ``info/train.json``. With ``train.gpus > 1`` the stage relaunches
itself under ``torchrun --nproc_per_node=gpus`` (DDP). With ``train.nodes > 1`` the batch system
starts the stage on every machine and each start relaunches itself under ``torchrun
--nnodes=nodes`` meeting at ``train.rdzv_endpoint``; only the global rank 0 writes the outputs
(README: "Training on several machines"). The paths can be overridden on the command
line (tests use that to run the stage on tiny data). Checkpoints live in ``data/checkpoints/train``
(not a DVC output, so an interrupted ``dvc repro`` resumes).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from _stage import read_params, run_stage
from nucvn.core.atomic import write_json
from nucvn.data.shards import ShardDataset
from nucvn.train import TrainConfig, train
from nucvn.train.distributed import in_torchrun, launch_torchrun


def _args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.add_argument("--shards", type=Path, default=Path("data/shards"))
    p.add_argument("--model-dir", type=Path, default=Path("data/model"))
    p.add_argument("--checkpoint-dir", type=Path, default=Path("data/checkpoints/train"))
    p.add_argument("--live-dir", type=Path, default=Path("dvclive"))
    p.add_argument("--info", type=Path, default=Path("info/train.json"))
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = _args(argv)
    config = read_params(TrainConfig, "train", args.params)
    config.validate()
    if config.nodes * config.gpus > 1 and not in_torchrun():
        return launch_torchrun(__file__, argv, config.gpus, nodes=config.nodes, rdzv_endpoint=config.rdzv_endpoint,
                               rdzv_id=config.rdzv_id)
    result = train(
        ShardDataset(args.shards, "train"),
        ShardDataset(args.shards, "val"),
        model_dir=args.model_dir,
        checkpoint_dir=args.checkpoint_dir,
        live_dir=args.live_dir,
        config=config,
        progress=not args.no_progress,
    )
    if int(os.environ.get("RANK", "0")) == 0:
        write_json(result.info, args.info)
        m, i = result.metrics, result.info
        shown = ", ".join(f"{k} {v:.4f}" for k, v in m.items() if k.startswith("val_") and isinstance(v, float))
        print(f"train: best epoch {m['best_epoch']}: {shown} ({i['events_per_s']:.0f} events/s on {i['device']}); "
              f"history and metrics in {args.live_dir}")
    return 0


if __name__ == "__main__":
    run_stage("train", main)
