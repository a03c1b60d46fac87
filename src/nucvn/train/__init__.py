"""Training: the one loop (single process or DDP under torchrun), its typed configuration, the
checkpoint and the distributed helpers."""

from __future__ import annotations

from nucvn.train.config import TrainConfig
from nucvn.train.loop import (
    HISTORY_COLUMNS, INFO_KEYS, LABEL, LABEL_DEFINITION, METRIC_KEYS, TrainResult, batch_loader, train,
)

__all__ = ["TrainConfig", "TrainResult", "train", "batch_loader", "LABEL", "LABEL_DEFINITION", "HISTORY_COLUMNS",
           "METRIC_KEYS", "INFO_KEYS"]
