"""The training loop for a backbone with several task heads (single process or DDP under torchrun).

:func:`train` builds the registered backbone (:func:`nucvn.models.create_model`) with one head per
task (:func:`nucvn.tasks.build_network`; ``train.tasks``, resolved against the shards' columns at the
start, before any training), fits it on the ``train`` split of a shard directory, validates on
``val`` after every epoch, keeps the weights of the epoch with the lowest weighted validation
loss (early stopping after ``patience`` epochs without improvement) and writes
``model.safetensors`` + ``model.json`` into ``model_dir``. The loop names no task: targets,
losses, counts and metrics come from the tasks (:mod:`nucvn.tasks`), the objective from
:mod:`nucvn.train.objective`, validation from :mod:`nucvn.train.validate`.

Reproducibility and interruption:

* the model is initialised from ``seed``; the order of epoch ``e`` comes from a generator seeded
  ``seed + e`` (:class:`nucvn.train.distributed.EpochSampler`) and the global torch RNG (dropout) is
  reseeded from ``(seed, epoch, rank)`` at the start of every epoch, so an epoch's randomness
  depends on nothing that happened before it;
* after every epoch a checkpoint (model, loss weights, optimiser, scheduler, RNG states, history,
  best weights) is written atomically to ``checkpoint_dir`` with its sha256 beside it
  (:mod:`nucvn.train.checkpoint`); it holds tensors and plain containers only and is read back with
  ``torch.load(weights_only=True)``. A rerun with the same configuration, data and parameter
  shapes resumes after the last finished epoch and, on a CPU, ends with the same weights as an
  uninterrupted run. A checkpoint from another configuration is ignored (and replaced); a damaged
  one (hash mismatch) is refused. The checkpoint is deleted only after every output is written,
  and the outputs (history, model directory, result) are written from the checkpointed state
  after the loop, so a run killed after its last epoch completes them on the rerun; a resumed run
  re-logs the checkpointed history first (:mod:`nucvn.train.live`), so its history files equal
  those of an uninterrupted run.

The model directory format is :mod:`nucvn.artifact`'s; the parameters are
:class:`nucvn.train.config.TrainConfig`'s. :func:`train` returns a :class:`TrainResult`: the
quality numbers of the best epoch (``metrics``) apart from the bookkeeping (``info``).

History and metrics: every epoch gives one row (:func:`nucvn.train.records.history_row`), kept in
the checkpoint and, with ``live_dir``, logged through DVCLive by rank 0 (:mod:`nucvn.train.live`:
``params.yaml``, one TSV per metric with the epoch as ``step``, ``metrics.json`` = the best epoch's
numbers); DVCLive is the only writer of the history. The *primary* task
(:func:`nucvn.tasks.primary_task`: the first binary task, numu_cc by default) keeps the unprefixed
names of the single-task trainer (``val_loss``, ``val_auc``, ``val_accuracy``,
``val_balanced_accuracy``) in ``metrics``; ``total_val_loss`` is the weighted objective (early
stopping follows it); every task has its own numbers, and with learned weighting its
``log_variance``.

``augment`` mirrors the cell axis of each view at random (:func:`_mirror_cells`). ``ema > 0`` keeps an
exponential moving average of the weights (:mod:`nucvn.train.averaging`): validation, early stopping
and the written model use it. ``train_events > 0`` trains on the first ``train_events`` events of
the train split only (learning curves on one data set); the val split is always used whole.
``max_steps > 0`` ends training after that many optimiser steps in all (the learning-rate schedule
spans them), mid-epoch if need be: a run of fixed cost on a large sample.

Class imbalance (``balance``) concerns the tasks that define class weights (binary tasks:
``n / (2 n_class)``, the public report's eq. 2): ``weights`` scales their per-event loss;
``sampler`` draws the primary task's classes equally often with replacement; ``none`` does
neither. The validation loss uses the same weighting (with the validation split's class counts),
so early stopping follows the training objective.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import BatchSampler, DataLoader, Dataset

from nucvn.artifact import MODEL_FORMAT, write_model_dir
from nucvn.core.errors import NucvnError
from nucvn.core.progress import progress_bar
from nucvn.data.shards import ShardDataset
from nucvn.data.sparse import SparseBatch, dense_on
from nucvn.models import scale_pixels
from nucvn.tasks import MultiTaskNet, Task, build_network, primary_task
from nucvn.train.averaging import WeightAverage
from nucvn.train.checkpoint import (
    CHECKPOINT,
    load_checkpoint,
    remove_checkpoint,
    restore_rng_state,
    rng_state,
    save_atomic,
)
from nucvn.train.config import BalanceName, LossWeighting, OptimizerName, ScheduleName, TrainConfig
from nucvn.train.distributed import (
    DistContext,
    EpochSampler,
    all_reduce_sum,
    check_same_on_all_ranks,
    check_world,
    init_distributed,
)
from nucvn.train.live import TrainLive
from nucvn.train.objective import Objective, SplitTargets, TrainStep
from nucvn.train.records import best_metrics, history_row, metric_names, model_record
from nucvn.train.validate import evaluate

__all__ = ["TrainConfig", "TrainResult", "train", "batch_loader", "OptimizerName", "ScheduleName", "BalanceName",
           "LossWeighting", "METRIC_KEYS", "INFO_KEYS", "MODEL_FORMAT"]

METRIC_KEYS = ("best_epoch", "val_loss", "val_auc", "val_accuracy", "val_balanced_accuracy")
"""The leading, unprefixed keys of ``metrics`` when the primary task is binary (numu_cc's numbers)."""
INFO_KEYS = ("model", "tasks", "epochs_run", "steps_run", "events_per_s", "device", "processes", "n_train", "n_val",
             "n_parameters")
_EVAL_BATCH = 512


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns: ``metrics`` (the quality of the best epoch: :data:`METRIC_KEYS`
    for the primary task, ``total_val_loss``, and one dict per task, e.g. ``{"flavour":
    {"val_loss": ..., "val_accuracy": ...}}``: what ``dvclive/metrics.json`` holds and ``dvc exp show``
    compares) and ``info`` (:data:`INFO_KEYS`, bookkeeping such as throughput and device)."""

    metrics: dict[str, Any]
    info: dict[str, Any]


class _Batches(Dataset[tuple[torch.Tensor | SparseBatch, torch.Tensor]]):
    """A shard split indexed by lists of events: one read per batch, images stay uint8 (dense, or
    the hits when ``sparse``); the targets are gathered by the returned event indices
    (:class:`SplitTargets`)."""

    def __init__(self, data: ShardDataset, sparse: bool) -> None:
        self.data, self.sparse = data, sparse

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, indices: list[int]) -> tuple[torch.Tensor | SparseBatch, torch.Tensor]:
        idx = np.array(indices, dtype=np.int64)  # via numpy: torch converts a list of ints 10x slower
        images = self.data.sparse_batch(idx) if self.sparse else self.data.images(idx)
        return images, torch.from_numpy(idx)


def batch_loader(data: ShardDataset, sampler: Any, batch: int, *, workers: int = 0,
                 pin_memory: bool = False, sparse: bool = False) -> DataLoader[Any]:
    """The loader training uses: ``(uint8 images (b, 2, 100, 80), int64 event indices (b,))`` per
    batch of ``sampler``'s indices (no per-event collation); with ``sparse`` the images come as
    their hits (:class:`nucvn.data.sparse.SparseBatch`), to be decoded on the GPU."""
    return DataLoader(_Batches(data, sparse), batch_size=None, sampler=BatchSampler(sampler, batch, drop_last=False),
                      num_workers=workers, pin_memory=pin_memory, persistent_workers=workers > 0)


def _loader(data: ShardDataset, sampler: Any, batch: int, cfg: TrainConfig, ctx: DistContext) -> DataLoader[Any]:
    cuda = ctx.device.type == "cuda"
    return batch_loader(data, sampler, batch, workers=cfg.workers, pin_memory=cuda, sparse=cuda)


def _optimizer(model: nn.Module, objective: Objective, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The network's parameters with ``weight_decay``; learned log-variances without it."""
    groups: list[dict[str, Any]] = [{"params": list(model.parameters())}]
    if objective.log_vars is not None:
        groups.append({"params": [objective.log_vars], "weight_decay": 0.0})
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                           nesterov=cfg.momentum > 0)


def _scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Stepped once per batch; ``onecycle`` is Smith & Topin (2018), ``cosine`` decays to 0. A run of
    fewer than 8 steps keeps the rate constant (one-cycle's warm-up would last less than 2 steps)."""
    if cfg.schedule == "onecycle" and total_steps >= 8:
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total_steps, pct_start=0.25)
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    return torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0)


def _epoch_seed(seed: int, epoch: int, rank: int) -> int:
    return (seed * 1_000_003 + epoch * 1_009 + rank) % (2**63)


def _inputs(images: torch.Tensor | SparseBatch, cfg: TrainConfig, ctx: DistContext) -> torch.Tensor:
    x = scale_pixels(dense_on(images, ctx.device), cfg.scale)
    return x.contiguous(memory_format=torch.channels_last)


def _mirror_cells(x: torch.Tensor) -> torch.Tensor:
    """Augmentation: mirror each view's cell axis with probability 1/2, independently per view.

    The detector is symmetric under x -> -x and y -> -y (beam along the planes), and each is a
    symmetry of one view alone, so every flip gives a physically possible event.
    """
    flip = torch.rand(x.shape[0], x.shape[1], 1, 1, device=x.device) < 0.5
    return torch.where(flip, x.flip(-1), x)


def _setup(cfg: TrainConfig, ctx: DistContext, train_data: ShardDataset, val_data: ShardDataset) -> list[Task]:
    """Check the run can start (processes, batch size, splits, tasks against the shards' columns)."""
    check_world(cfg.nodes, cfg.gpus, ctx)
    if cfg.batch_size % ctx.world:
        raise NucvnError(f"train.batch_size={cfg.batch_size} must be divisible by the {ctx.world} processes")
    if len(train_data) == 0 or len(val_data) == 0:
        raise NucvnError(f"{train_data.root}: the train and val splits must both hold events "
                         f"(have {len(train_data)} and {len(val_data)}); check preprocess.split")
    tasks = cfg.resolve_tasks(train_data.index.get("columns", []), str(train_data.root / "index.json"))
    if not tasks:
        raise NucvnError(f"train.tasks=auto: the shards in {train_data.root} serve no registered task; "
                         "rerun preprocess")
    if cfg.balance == "sampler" and primary_task(tasks).kind != "binary":
        raise NucvnError("train.balance=sampler draws the classes of a binary task equally often, and train.tasks "
                         "holds none; use train.balance: weights or none")
    return tasks


def train(train_data: ShardDataset, val_data: ShardDataset, *, model_dir: Path, checkpoint_dir: Path,
          config: TrainConfig, live_dir: Path | None = None, progress: bool = True) -> TrainResult:
    """Train, validate, write ``model_dir`` and (unless ``live_dir`` is None) the DVCLive history in
    ``live_dir``; return the best epoch's quality numbers and the run's bookkeeping (rank 0's view).

    Under torchrun (``WORLD_SIZE > 1``) every rank calls this; only rank 0 writes files.
    """
    cfg = config
    cfg.validate()
    ctx = init_distributed(cfg.device)
    tasks = _setup(cfg, ctx, train_data, val_data)
    primary = primary_task(tasks)
    shown = [f"val_{m}" for m in metric_names(primary)][:3]
    data_sha = {"train": train_data.shard_sha256, "val": val_data.shard_sha256}
    model_dir, checkpoint_dir = Path(model_dir), Path(checkpoint_dir)

    torch.manual_seed(cfg.seed)
    model = build_network(cfg.model, cfg.kwargs, tasks).to(ctx.device)
    objective = Objective([t.name for t in tasks], {t.name: cfg.task_weight(t.name) for t in tasks},
                          cfg.loss_weighting).to(ctx.device)
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    shapes |= {f"objective.{k}": list(v.shape) for k, v in objective.state_dict().items()}
    fingerprint = cfg.fingerprint(data_sha, shapes)
    # faster with oneDNN (CPU) and cuDNN (GPU) alike. Module.to takes memory_format (documented), but
    # torch's overloads of it omit that keyword.
    model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    if ctx.device.type == "cuda" and ctx.distributed:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert isinstance(model, MultiTaskNet)
    step_module = TrainStep(model, objective, ctx.world, ctx.device)
    step_fn: nn.Module = DistributedDataParallel(step_module, device_ids=[ctx.device] if ctx.device.type == "cuda"
                                                 else None) if ctx.distributed else step_module

    n_train = min(cfg.train_events, len(train_data)) if cfg.train_events else len(train_data)
    train_targets = SplitTargets(tasks, train_data.metadata.iloc[:n_train], class_weights=cfg.balance == "weights",
                                 device=ctx.device)
    val_targets = SplitTargets(tasks, val_data.metadata, class_weights=cfg.balance != "none", device=ctx.device)
    sample_w = train_targets.weights_np[primary.name] if cfg.balance == "sampler" else None
    sampler = EpochSampler(range(n_train), seed=cfg.seed, rank=ctx.rank, world=ctx.world,
                           weights=None if sample_w is None else torch.from_numpy(sample_w))
    local_batch = cfg.batch_size // ctx.world
    train_loader = _loader(train_data, sampler, local_batch, cfg, ctx)
    val_loader = _loader(val_data, range(ctx.rank, len(val_data), ctx.world), _EVAL_BATCH, cfg, ctx)
    steps = math.ceil(len(sampler) / local_batch)
    total_steps = min(steps * cfg.epochs, cfg.max_steps) if cfg.max_steps else steps * cfg.epochs
    opt = _optimizer(model, objective, cfg)
    sched = _scheduler(opt, cfg, total_steps)
    averaged = WeightAverage(model, cfg.ema)

    history: list[dict[str, float]] = []
    best = {"epoch": -1, "val_loss": math.inf, "bad_epochs": 0}
    best_state: dict[str, torch.Tensor] = {}
    best_objective: dict[str, torch.Tensor] = {}
    start = 0
    ckpt_path = checkpoint_dir / CHECKPOINT
    ckpt = load_checkpoint(ckpt_path, fingerprint)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        objective.load_state_dict(ckpt["objective"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        restore_rng_state(ckpt["rng"])
        history, best, best_state = ckpt["history"], ckpt["best"], ckpt["best_state"]
        best_objective = ckpt["best_objective"]
        averaged.load_state_dict(ckpt["ema"])
        start = int(ckpt["epoch"]) + 1
        if ctx.is_main:
            done = start >= cfg.epochs or best["bad_epochs"] >= cfg.patience > 0
            print(f"train: resuming from {ckpt_path} after epoch {start - 1}"
                  + ("; training had finished, writing the outputs" if done else ""))
    check_same_on_all_ranks({"the fingerprint of the parameters and shards": int(fingerprint[:15], 16),
                             f"the epochs done in {ckpt_path}": start}, ctx)
    live = TrainLive(live_dir, cfg, tasks) if live_dir is not None and ctx.is_main else None
    if live is not None:  # a fresh DVCLive directory: the checkpointed history first
        for logged in history:
            live.log_epoch(logged)

    rates: list[float] = [row["train_events_per_s"] for row in history]
    steps_run = min(start * steps, total_steps)
    names = [t.name for t in tasks]
    for epoch in range(start, cfg.epochs):
        if best["bad_epochs"] >= cfg.patience > 0 or epoch * steps >= total_steps:
            break
        torch.manual_seed(_epoch_seed(cfg.seed, epoch, ctx.rank))
        sampler.set_epoch(epoch)
        step_fn.train()
        loss_acc = torch.zeros((2, len(tasks)), dtype=torch.float64, device=ctx.device)
        seen = 0
        bar = progress_bar(total=len(sampler) * ctx.world, unit="event", unit_scale=True,
                           desc=f"train {cfg.model} epoch {epoch + 1}/{cfg.epochs}",
                           disable=not (progress and ctx.is_main))
        t0 = time.perf_counter()
        for step, (images, indices) in enumerate(train_loader):
            if epoch * steps + step >= total_steps:  # train.max_steps reached inside this epoch
                break
            x = _inputs(images, cfg, ctx)
            if cfg.augment:
                x = _mirror_cells(x)
            batch = train_targets.gather(indices)
            n_defined = train_targets.defined_counts(batch)
            if ctx.distributed:
                dist.all_reduce(n_defined, op=dist.ReduceOp.SUM)
            loss, sums = step_fn(x, batch, n_defined)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            averaged.update()
            loss_acc[0] += sums.double()
            loss_acc[1] += train_targets.defined_counts(batch)
            seen += len(indices)
            steps_run += 1
            bar.update(len(indices) * ctx.world)
            if step % 20 == 0:  # reading the loss waits for the GPU: not every step
                bar.set_postfix(loss=f"{float(loss.detach()):.4f}", refresh=False)
        bar.close()
        seconds = time.perf_counter() - t0
        total = all_reduce_sum(np.concatenate([loss_acc.cpu().numpy().ravel(), [seen]]), ctx)
        n_seen = np.maximum(total[len(tasks): 2 * len(tasks)], 1)
        train_losses = dict(zip(names, (total[: len(tasks)] / n_seen).tolist(), strict=True))
        total_train = objective.total(train_losses)
        if not math.isfinite(total_train):
            raise NucvnError(f"train: the loss became {total_train} in epoch {epoch + 1}; lower train.lr")
        rates.append(float(total[-1]) / seconds)
        val = evaluate(averaged.network, val_loader, val_targets, objective, lambda im: _inputs(im, cfg, ctx), ctx)
        row = (history_row(epoch, tasks, primary, train_losses, total_train, val, objective)
               | {"train_events_per_s": rates[-1]})
        history.append(row)
        if row["total_val_loss"] < best["val_loss"]:
            best = {"epoch": epoch + 1, "val_loss": row["total_val_loss"], "bad_epochs": 0}
            best_state = averaged.best_state()
            best_objective = {k: v.detach().cpu().clone() for k, v in objective.state_dict().items()}
        else:
            best["bad_epochs"] += 1
        if ctx.is_main:
            quality = " ".join(f"{k} {row[k]:.4f}" for k in shown)
            print(f"epoch {epoch + 1}: total train_loss {total_train:.4f} val_loss {row['total_val_loss']:.4f} "
                  f"({primary.name}: {quality}) ({rates[-1]:.0f} events/s)")
            if live is not None:
                live.log_epoch(row)
            save_atomic({"fingerprint": fingerprint, "epoch": epoch, "model": model.state_dict(),
                         "objective": objective.state_dict(), "optimizer": opt.state_dict(),
                         "scheduler": sched.state_dict(), "rng": rng_state(), "history": history, "best": best,
                         "best_state": best_state, "best_objective": best_objective, "ema": averaged.state_dict()},
                       ckpt_path)
        if ctx.distributed:
            dist.barrier()

    objective.load_state_dict(best_objective)
    result = TrainResult(
        metrics=best_metrics(history[int(best["epoch"]) - 1], int(best["epoch"]), tasks, primary),
        info={"model": cfg.model, "tasks": names, "epochs_run": len(history), "steps_run": steps_run,
              "events_per_s": float(np.mean(rates)),
              "device": str(ctx.device.type), "processes": ctx.world, "n_train": n_train, "n_val": len(val_data),
              "n_parameters": sum(p.numel() for p in model.parameters())})
    if ctx.is_main:  # also after a resumed finished run: every output comes from the checkpointed state
        if live is not None:
            live.end(result.metrics)
        write_model_dir(model_dir, best_state, model=cfg.model, model_kwargs=cfg.kwargs,
                        tasks=[t.describe() for t in tasks], loss=objective.describe(), scale=cfg.scale,
                        record=model_record(cfg, data_sha, train_data, result.metrics, result.info))
        remove_checkpoint(ckpt_path)  # only now: a later run (e.g. after a code change) starts afresh
    if ctx.distributed:
        dist.barrier()
    return result
