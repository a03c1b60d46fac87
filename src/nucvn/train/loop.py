"""The training loop for the binary νμ CC classifier (single process or DDP under torchrun).

:func:`train` fits a registered model (:func:`nucvn.models.create_model`) on the ``train`` split
of a shard directory, validates on ``val`` after every epoch, keeps the weights of the epoch with
the lowest validation loss (early stopping after ``patience`` epochs without improvement) and
writes ``model.safetensors`` + ``model.json`` into ``model_dir``.

Reproducibility and interruption:

* the model is initialised from ``seed``; the order of epoch ``e`` comes from a generator seeded
  ``seed + e`` (:class:`nucvn.train.distributed.EpochSampler`) and the global torch RNG (dropout) is
  reseeded from ``(seed, epoch, rank)`` at the start of every epoch, so an epoch's randomness
  depends on nothing that happened before it;
* after every epoch a checkpoint (model, optimiser, scheduler, RNG states, history, best weights)
  is written atomically to ``checkpoint_dir`` with its sha256 beside it (:mod:`nucvn.train.checkpoint`);
  it holds tensors and plain containers only and is read back with ``torch.load(weights_only=True)``.
  A rerun with the same configuration, data and parameter shapes resumes after the last finished
  epoch and, on a CPU, ends with the same weights as an uninterrupted run. A checkpoint from
  another configuration is ignored (and replaced); a damaged one (hash mismatch) is refused. The
  checkpoint is deleted only after every output is written, and the outputs (history, model
  directory, result) are written from the checkpointed state after the loop, so a run killed
  after its last epoch completes them on the rerun instead of training again.

The model directory format (``model.safetensors`` + ``model.json`` with the weights' sha256) is
:mod:`nucvn.artifact`'s; the parameters are :class:`nucvn.train.config.TrainConfig`'s.
:func:`train` returns a :class:`TrainResult`: the quality numbers of the best epoch (``metrics``,
for ``metrics/train.json`` and ``dvc exp show``) apart from the bookkeeping (``info``: throughput,
device, counts), which would otherwise show up as metric changes; both are kept in ``model.json``.

``augment`` mirrors the cell axis of each view at random (:func:`_mirror_cells`).

Class imbalance (``balance``): ``weights`` scales each event's loss by ``n / (2 n_class)`` (the
public report's eq. 2); ``sampler`` draws classes equally often with replacement; ``none`` does
neither. The validation loss uses the same weighting (with the validation split's class counts),
so early stopping follows the training objective. Validation accuracy is taken at score 0.5 and
the AUC from score histograms (:func:`nucvn.report.stats.auc_from_histograms`), which add across DDP
ranks like every other count.
"""

from __future__ import annotations

import csv
import math
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import BatchSampler, DataLoader, Dataset

from nucvn import __version__

from nucvn.report import stats as metrics
from nucvn.artifact import MODEL_FORMAT, write_model_dir
from nucvn.core.atomic import atomic_write
from nucvn.train.checkpoint import CHECKPOINT, load_checkpoint, remove_checkpoint, restore_rng_state, rng_state, save_atomic
from nucvn.train.distributed import DistContext, EpochSampler, all_reduce_sum, init_distributed
from nucvn.core.errors import NucvnError
from nucvn.models import create_model, scale_pixels
from nucvn.core.progress import progress_bar
from nucvn.data.shards import ShardDataset
from nucvn.train.config import BalanceName, OptimizerName, ScheduleName, TrainConfig

__all__ = ["TrainConfig", "TrainResult", "train", "batch_loader", "OptimizerName", "ScheduleName", "BalanceName", "LABEL",
           "LABEL_DEFINITION", "HISTORY_COLUMNS", "METRIC_KEYS", "INFO_KEYS", "MODEL_FORMAT"]

LABEL = "numu_cc"
LABEL_DEFINITION = "numu_cc = interaction in {0,1,2,3} (nucvn.core.events.numu_cc)"
HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "val_accuracy", "val_balanced_accuracy", "val_auc")
METRIC_KEYS = ("best_epoch", "val_loss", "val_auc", "val_accuracy", "val_balanced_accuracy")
INFO_KEYS = ("model", "epochs_run", "events_per_s", "device", "processes", "n_train", "n_val", "n_parameters")
AUC_BINS = 10_000
_EVAL_BATCH = 512


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns: ``metrics`` (:data:`METRIC_KEYS`, the quality of the best epoch:
    what ``metrics/train.json`` and ``dvc exp show`` compare) and ``info`` (:data:`INFO_KEYS`,
    bookkeeping such as throughput and device, which varies between identical runs)."""

    metrics: dict[str, float | int]
    info: dict[str, Any]


class _Batches(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """A shard split indexed by lists of events: one read per batch, images stay uint8."""

    def __init__(self, data: ShardDataset) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        images, labels = self.data.batch(indices)
        return images, labels[LABEL]


def batch_loader(data: ShardDataset, sampler: Any, batch: int, *, workers: int = 0,
                 pin_memory: bool = False) -> DataLoader[Any]:
    """The loader training uses: ``(uint8 images (b, 2, 100, 80), numu_cc float (b,))`` per batch of
    ``sampler``'s indices, read with one fancy index per shard (no per-event collation)."""
    return DataLoader(_Batches(data), batch_size=None, sampler=BatchSampler(sampler, batch, drop_last=False),
                      num_workers=workers, pin_memory=pin_memory, persistent_workers=workers > 0)


def _loader(data: ShardDataset, sampler: Any, batch: int, cfg: TrainConfig, ctx: DistContext) -> DataLoader[Any]:
    return batch_loader(data, sampler, batch, workers=cfg.workers, pin_memory=ctx.device.type == "cuda")


def _class_weights(labels: np.ndarray) -> torch.Tensor:
    """``n / (2 n_c)`` for c = background, signal (1 for an absent class)."""
    n_c = np.bincount(labels.astype(np.int64), minlength=2).astype(np.float64)
    return torch.tensor(np.where(n_c > 0, len(labels) / (2.0 * np.maximum(n_c, 1)), 1.0), dtype=torch.float32)


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                           nesterov=cfg.momentum > 0)


def _scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Stepped once per batch; ``onecycle`` is Smith & Topin (2018), ``cosine`` decays to 0."""
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total_steps, pct_start=0.25)
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    return torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0)


def _epoch_seed(seed: int, epoch: int, rank: int) -> int:
    return (seed * 1_000_003 + epoch * 1_009 + rank) % (2**63)


def _loss(logits: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Per-event binary cross-entropy, times the class weight of each event's true class."""
    per_event = F.binary_cross_entropy_with_logits(logits.float(), y, reduction="none")
    return per_event if weights is None else per_event * weights[y.long()]


def _evaluate(model: nn.Module, loader: DataLoader[Any], weights: torch.Tensor | None, cfg: TrainConfig,
              ctx: DistContext) -> dict[str, float]:
    """Validation loss, accuracy, balanced accuracy and AUC, from sums and counts over all ranks.

    Runs the unwrapped model (no DDP collectives inside), so ranks may hold different numbers of
    validation batches; only the final sums are reduced.
    """
    model.eval()
    sums = np.zeros(2)
    counts = metrics.Counts(*(np.int64(0),) * 4)
    hist = np.zeros((2, AUC_BINS))
    with torch.inference_mode(), _autocast(ctx):
        for images, y in loader:
            x = _inputs(images, cfg, ctx)
            logits = model(x).float()
            yd = y.to(ctx.device)
            sums += [float(_loss(logits, yd, weights).double().sum()), len(y)]
            p = torch.sigmoid(logits).cpu().numpy().astype(np.float64)
            lab = y.numpy().astype(bool)
            counts = counts + metrics.confusion_counts(lab, p, 0.5)
            bins = np.minimum((p * AUC_BINS).astype(np.int64), AUC_BINS - 1)
            hist += np.stack([np.bincount(bins[~lab], minlength=AUC_BINS), np.bincount(bins[lab], minlength=AUC_BINS)])
    total = all_reduce_sum(np.concatenate([sums, counts.to_array().astype(np.float64), hist.ravel()]), ctx)
    c = metrics.Counts.from_array(np.rint(total[2:6]).astype(np.int64))
    h = total[6:].reshape(2, AUC_BINS)
    return {"val_loss": float(total[0] / max(total[1], 1)), "val_accuracy": float(metrics.accuracy(c)),
            "val_balanced_accuracy": float(metrics.balanced_accuracy(c)), "val_auc": metrics.auc_from_histograms(h[1], h[0])}


def _autocast(ctx: DistContext) -> torch.autocast:
    return torch.autocast(device_type=ctx.device.type, dtype=torch.bfloat16, enabled=ctx.device.type == "cuda")


def _inputs(images: torch.Tensor, cfg: TrainConfig, ctx: DistContext) -> torch.Tensor:
    x = scale_pixels(images.to(ctx.device, non_blocking=True), cfg.scale)
    return x.contiguous(memory_format=torch.channels_last)


def _mirror_cells(x: torch.Tensor) -> torch.Tensor:
    """Augmentation: mirror each view's cell axis with probability 1/2, independently per view.

    The detector is symmetric under x -> -x and y -> -y (beam along the planes), and each is a
    symmetry of one view alone, so every flip gives a physically possible event.
    """
    flip = torch.rand(x.shape[0], x.shape[1], 1, 1, device=x.device) < 0.5
    return torch.where(flip, x.flip(-1), x)


def _write_history(history: list[dict[str, float]], path: Path) -> None:
    def write(p: Path) -> None:
        with open(p, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=HISTORY_COLUMNS, extrasaction="ignore")
            w.writeheader()
            for row in history:
                w.writerow({k: (int(row[k]) if k == "epoch" else f"{row[k]:.6g}") for k in HISTORY_COLUMNS})

    atomic_write(path, write)


def _versions() -> dict[str, str]:
    return {"nucvn": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "safetensors": safetensors.__version__, "python": platform.python_version()}


def train(train_data: ShardDataset, val_data: ShardDataset, *, model_dir: Path, checkpoint_dir: Path,
          history_path: Path, config: TrainConfig, progress: bool = True) -> TrainResult:
    """Train, validate, write ``history_path`` and ``model_dir``; return the best epoch's quality
    numbers and the run's bookkeeping (rank 0's view).

    Under torchrun (``WORLD_SIZE > 1``) every rank calls this; only rank 0 writes files.
    """
    cfg = config
    cfg.validate()
    ctx = init_distributed(cfg.device)
    if cfg.gpus > 1 and not ctx.distributed:
        raise NucvnError(f"train.gpus={cfg.gpus} needs {cfg.gpus} processes: run stages/train.py, which relaunches "
                         "itself with torchrun, or set train.gpus: 1")
    if cfg.batch_size % ctx.world:
        raise NucvnError(f"train.batch_size={cfg.batch_size} must be divisible by the {ctx.world} processes")
    if len(train_data) == 0 or len(val_data) == 0:
        raise NucvnError(f"{train_data.root}: the train and val splits must both hold events "
                         f"(have {len(train_data)} and {len(val_data)}); check preprocess.split")
    data_sha = {"train": train_data.shard_sha256, "val": val_data.shard_sha256}
    model_dir, checkpoint_dir = Path(model_dir), Path(checkpoint_dir)

    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, **cfg.kwargs).to(ctx.device)
    fingerprint = cfg.fingerprint(data_sha, {k: list(v.shape) for k, v in model.state_dict().items()})
    model = model.to(memory_format=torch.channels_last)  # faster with oneDNN (CPU) and cuDNN (GPU) alike
    if ctx.device.type == "cuda" and ctx.distributed:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    net: nn.Module = DistributedDataParallel(model, device_ids=[ctx.device] if ctx.device.type == "cuda" else None) \
        if ctx.distributed else model

    y_train = train_data.labels(LABEL).astype(np.int64)
    y_val = val_data.labels(LABEL).astype(np.int64)
    w_train = _class_weights(y_train).to(ctx.device) if cfg.balance != "none" else None
    w_val = _class_weights(y_val).to(ctx.device) if cfg.balance != "none" else None
    loss_weights = w_train if cfg.balance == "weights" else None
    sample_w = _class_weights(y_train)[torch.from_numpy(y_train)] if cfg.balance == "sampler" else None
    sampler = EpochSampler(train_data, seed=cfg.seed, rank=ctx.rank, world=ctx.world, weights=sample_w)
    local_batch = cfg.batch_size // ctx.world
    train_loader = _loader(train_data, sampler, local_batch, cfg, ctx)
    val_loader = _loader(val_data, range(ctx.rank, len(val_data), ctx.world), _EVAL_BATCH, cfg, ctx)
    steps = math.ceil(len(sampler) / local_batch)
    opt = _optimizer(net, cfg)
    sched = _scheduler(opt, cfg, steps * cfg.epochs)

    history: list[dict[str, float]] = []
    best = {"epoch": -1, "val_loss": math.inf, "bad_epochs": 0}
    best_state: dict[str, torch.Tensor] = {}
    start = 0
    ckpt_path = checkpoint_dir / CHECKPOINT
    ckpt = load_checkpoint(ckpt_path, fingerprint)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        restore_rng_state(ckpt["rng"])
        history, best, best_state = ckpt["history"], ckpt["best"], ckpt["best_state"]
        start = int(ckpt["epoch"]) + 1
        if ctx.is_main:
            done = start >= cfg.epochs or best["bad_epochs"] >= cfg.patience > 0
            print(f"train: resuming from {ckpt_path} after epoch {start - 1}"
                  + ("; training had finished, writing the outputs" if done else ""))

    rates: list[float] = [row["train_events_per_s"] for row in history]
    for epoch in range(start, cfg.epochs):
        if best["bad_epochs"] >= cfg.patience > 0:
            break
        torch.manual_seed(_epoch_seed(cfg.seed, epoch, ctx.rank))
        sampler.set_epoch(epoch)
        net.train()
        loss_acc = torch.zeros((), dtype=torch.float64, device=ctx.device)
        seen = 0
        bar = progress_bar(total=len(sampler) * ctx.world, unit="event", unit_scale=True,
                           desc=f"train {cfg.model} epoch {epoch + 1}/{cfg.epochs}", disable=not (progress and ctx.is_main))
        t0 = time.perf_counter()
        for step, (images, y) in enumerate(train_loader):
            x = _inputs(images, cfg, ctx)
            if cfg.augment:
                x = _mirror_cells(x)
            yd = y.to(ctx.device, non_blocking=True)
            with _autocast(ctx):
                logits = net(x)
            per_event = _loss(logits, yd, loss_weights)
            loss = per_event.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_acc += per_event.detach().double().sum()
            seen += len(y)
            bar.update(len(y) * ctx.world)
            if step % 20 == 0:  # reading the loss waits for the GPU: not every step
                bar.set_postfix(loss=f"{float(loss_acc) / seen:.4f}", refresh=False)
        bar.close()
        seconds = time.perf_counter() - t0
        total = all_reduce_sum([float(loss_acc), seen], ctx)
        train_loss = float(total[0] / total[1])
        if not math.isfinite(train_loss):
            raise NucvnError(f"train: the loss became {train_loss} in epoch {epoch + 1}; lower train.lr")
        rates.append(float(total[1]) / seconds)
        row = {"epoch": float(epoch + 1), "train_loss": train_loss,
               **_evaluate(model, val_loader, w_val, cfg, ctx), "train_events_per_s": rates[-1]}
        history.append(row)
        if row["val_loss"] < best["val_loss"]:
            best = {"epoch": epoch + 1, "val_loss": row["val_loss"], "bad_epochs": 0}
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            best["bad_epochs"] += 1
        if ctx.is_main:
            print(f"epoch {epoch + 1}: train_loss {train_loss:.4f} val_loss {row['val_loss']:.4f} "
                  f"val_auc {row['val_auc']:.4f} val_bacc {row['val_balanced_accuracy']:.4f} ({rates[-1]:.0f} events/s)")
            _write_history(history, Path(history_path))
            save_atomic({"fingerprint": fingerprint, "epoch": epoch, "model": model.state_dict(),
                          "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "rng": rng_state(),
                          "history": history, "best": best, "best_state": best_state}, ckpt_path)
        if ctx.distributed:
            dist.barrier()

    best_row = history[best["epoch"] - 1]
    result = TrainResult(
        metrics={"best_epoch": int(best["epoch"]), "val_loss": best_row["val_loss"], "val_auc": best_row["val_auc"],
                 "val_accuracy": best_row["val_accuracy"], "val_balanced_accuracy": best_row["val_balanced_accuracy"]},
        info={"model": cfg.model, "epochs_run": len(history), "events_per_s": float(np.mean(rates)),
              "device": str(ctx.device.type), "processes": ctx.world, "n_train": len(train_data), "n_val": len(val_data),
              "n_parameters": sum(p.numel() for p in model.parameters())})
    if ctx.is_main:  # also after a resumed finished run: every output comes from the checkpointed state
        _write_history(history, Path(history_path))
        write_model_dir(model_dir, best_state, model=cfg.model, model_kwargs=cfg.kwargs, scale=cfg.scale,
                        record=_model_record(cfg, data_sha, train_data, result))
        remove_checkpoint(ckpt_path)  # only now: a later run (e.g. after a code change) starts afresh
    if ctx.distributed:
        dist.barrier()
    return result


def _model_record(cfg: TrainConfig, data_sha: dict[str, Any], train_data: ShardDataset,
                  result: TrainResult) -> dict[str, Any]:
    """What ``model.json`` records beside the format's own keys: label, parameters, data, versions, result."""
    return {
        "label": {"name": LABEL, "definition": LABEL_DEFINITION},
        "train_params": asdict(cfg),
        "data": {"shards": str(train_data.root), "sha256": data_sha, "sources": train_data.index.get("sources", []),
                 "n_train": result.info["n_train"], "n_val": result.info["n_val"]},
        "versions": _versions(),
        "result": {"metrics": result.metrics, "info": result.info},
    }
