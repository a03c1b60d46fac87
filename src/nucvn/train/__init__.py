"""Training: the one loop (single process or DDP under torchrun), its typed configuration, the
multi-task objective, validation, the checkpoint, the DVCLive history and the distributed helpers."""

from __future__ import annotations

from nucvn.train.config import TrainConfig
from nucvn.train.loop import INFO_KEYS, METRIC_KEYS, TrainResult, batch_loader, train

__all__ = ["TrainConfig", "TrainResult", "train", "batch_loader", "METRIC_KEYS", "INFO_KEYS"]
