"""Ready for the GPU: one run of the pipeline's CUDA paths on a tiny sample, printed as one table.

The training loop and inference choose their CUDA behaviour themselves (bf16 autocast, a
channels-last model and inputs, pinned loader memory, sparse batches decoded on the device, NCCL
for DDP), and none of it runs on a machine without a GPU. This script runs each of those paths
once, end to end, through the library's public entry points, and says what the code actually did:

1. ``simulate``: ``nucvn simulate`` writes two small event files (a subprocess, as a user runs it);
2. ``preprocess``: :func:`nucvn.data.shards.build_shards` turns them into train/val/test shards;
3. ``loader`` and ``train``, at two batch sizes: the training loader alone
   (:func:`nucvn.train.loop.batch_loader`, batches moved to the device, without the model), then
   :func:`nucvn.train.loop.train` for a fixed number of optimiser steps; the events/s is the one
   ``train`` returns (``info["events_per_s"]``, the mean over its epochs), after one warm-up run so
   that CUDA's start-up is not counted. Whether bf16 autocast and channels-last were active is
   observed, not assumed: a forward hook on the first multi-channel convolution of training reads
   its output dtype and the memory format of its input and weight;
4. ``ddp train``: with two or more GPUs, ``stages/train.py`` with ``train.gpus=2``, which relaunches
   itself under torchrun (NCCL), the way the pipeline does; otherwise the row says why it was skipped;
5. ``predict``: :func:`nucvn.inference.predict` of the last trained model over the test split.

With a GPU it runs on CUDA at sizes that take well under 5 minutes; without one (or with
``--dry``) it runs the same steps on the CPU at tiny sizes, so that CI can keep it working. It
works in a temporary directory, removed at the end. Exit status 0 when every step ran; 1, with
one line naming the step, when one failed. Run: ``bash bench/gpu_check.sh [--dry]``.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Self

import torch
import yaml
from torch import nn
from torch.nn.modules.module import register_module_forward_hook

from nucvn.data.shards import ShardDataset, build_shards
from nucvn.inference import load_model, predict
from nucvn.train import TrainConfig, batch_loader, train

REPO = Path(__file__).resolve().parents[1]
STAGE = REPO / "stages" / "train.py"
SPLIT = {"train": 0.8, "val": 0.05, "test": 0.15}
COLUMNS = ("step", "device", "batch", "events/s", "notes")


@dataclass(frozen=True)
class Plan:
    """The sizes and the device of one run: GPU mode or the dry mode (CPU, tiny sizes)."""

    dry: bool
    device: str
    events: int
    sim_workers: int
    batches: tuple[int, ...]
    steps: int
    loader_workers: int
    predict_batch: int
    predict_seconds: float
    ddp: str | None
    """``None``: run the 2-process DDP row on this device; else why it is skipped."""


@dataclass(frozen=True)
class Row:
    """One line of the table; ``rate`` is ``None`` for a skipped step."""

    step: str
    device: str
    batch: str
    rate: float | None
    notes: str


class StepFailed(Exception):
    """A step of the check failed; the message names the step and the cause in one line."""


@contextlib.contextmanager
def _step(name: str) -> Iterator[None]:
    """Turn any exception inside the block into :class:`StepFailed` naming step ``name``."""
    try:
        yield
    except StepFailed:
        raise
    except Exception as exc:
        reason = " ".join(str(exc).split()) or "no message"
        raise StepFailed(f"step {name!r} failed: {type(exc).__name__}: {reason[:400]}") from exc


def _given(value: int | None, default: int) -> int:
    """An option's value, or the mode's default where it was not given (0 is a value)."""
    return default if value is None else value


def make_plan(args: argparse.Namespace) -> Plan:
    """GPU mode when CUDA is available and ``--dry`` is not given, else the dry mode."""
    cuda = torch.cuda.is_available() and not args.dry
    cpus = os.cpu_count() or 1
    if cuda:
        gpus = torch.cuda.device_count()
        ddp = None if gpus >= 2 else f"skipped ({gpus} GPU)"
        return Plan(dry=False, device="cuda", events=_given(args.events, 4000), sim_workers=min(8, cpus),
                    batches=tuple(args.batches or (256, 1024)), steps=_given(args.steps, 40),
                    loader_workers=_given(args.loader_workers, min(4, cpus - 1)),
                    predict_batch=512, predict_seconds=2.0, ddp=ddp)
    return Plan(dry=True, device="cpu", events=_given(args.events, 300), sim_workers=1,
                batches=tuple(args.batches or (32, 64)), steps=_given(args.steps, 6),
                loader_workers=_given(args.loader_workers, 1),
                predict_batch=64, predict_seconds=0.5,
                ddp=None if args.ddp_on_cpu else "skipped (dry mode)")


def _failed(what: str, proc: subprocess.CompletedProcess[str]) -> RuntimeError:
    """The error for a failed subprocess: ``what`` and the line of its output that says why (a
    stage's or command's one-line error, else the last exception line, else its last line); the
    whole output rides along as a note, which ``--traceback`` prints."""
    lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
    said = [ln for ln in lines if ": error: " in ln]
    raised = [ln for ln in lines if re.match(r"^[\w.]*(Error|Exception): ", ln) and "ChildFailedError" not in ln]
    err = RuntimeError(f"{what}: {(said or raised or lines or ['no output'])[-1]}")
    err.add_note(f"its output:\n{proc.stdout[-4000:]}{proc.stderr[-8000:]}")
    return err


def simulate(plan: Plan, out: Path, paths: list[Path]) -> Row:
    """Two event files of ``plan.events`` each, written by ``nucvn simulate`` in a subprocess
    (its start-up included in the rate); their paths are appended to ``paths``."""
    cmd = [sys.executable, "-m", "nucvn", "simulate", "--out", str(out), "--files", "2", "--events", str(plan.events),
           "--seed", "1", "--workers", str(plan.sim_workers), "--no-progress"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise _failed(f"nucvn simulate exited with {proc.returncode}", proc)
    written = sorted(out.glob("neutrino*.h5"))
    if len(written) != 2:
        raise RuntimeError(f"nucvn simulate wrote {len(written)} files into {out}, expected 2")
    paths.extend(written)
    return Row("simulate", "cpu", "-", 2 * plan.events / seconds, f"2 files x {plan.events} events, "
               f"workers {plan.sim_workers}, process start-up included")


def preprocess(paths: Sequence[Path], out: Path) -> Row:
    """Shard ``paths`` into ``out`` with :func:`build_shards`, as the preprocess stage does."""
    t0 = time.perf_counter()
    index = build_shards(paths, out, split=SPLIT, seed=0, progress=False)
    seconds = time.perf_counter() - t0
    counts = ", ".join(f"{s} {v['n_events']}" for s, v in index["splits"].items())
    events_in = index["selection"]["events_in"]
    return Row("preprocess", "cpu", "-", events_in / seconds, f"{counts} events")


def _tensors(obj: Any) -> list[torch.Tensor]:
    """The tensors in a batch element: a tensor, a tuple or list of them, or a dataclass of them
    (a sparse batch of hits)."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, tuple | list):
        return [t for item in obj for t in _tensors(item)]
    if is_dataclass(obj) and not isinstance(obj, type):
        return [t for f in fields(obj) for t in _tensors(getattr(obj, f.name))]
    return []


def _on_device(images: Any, device: torch.device) -> torch.Tensor:
    """Dense uint8 images on ``device``, as the trainer makes them: a tensor is copied; anything
    else (the sparse hits the loader yields for a GPU) is copied and decoded there."""
    moved = images.to(device, non_blocking=True)
    return moved if isinstance(moved, torch.Tensor) else moved.decode()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def loader_rate(data: ShardDataset, plan: Plan, batch: int) -> Row:
    """The training loader alone: ``plan.steps`` batches of ``batch`` events, each moved to the
    device (decoded there when the loader yields hits), no model. Timed from the first batch on,
    so the workers' start-up is not counted.

    The loader is built as the trainer builds it on this device: pinned memory on CUDA, and sparse
    batches on CUDA where :func:`batch_loader` offers them (the parameter is looked up, so the
    check runs against the dense loader too).
    """
    device = torch.device(plan.device)
    cuda = device.type == "cuda"
    kwargs: dict[str, Any] = {"workers": plan.loader_workers, "pin_memory": cuda}
    if "sparse" in inspect.signature(batch_loader).parameters:
        kwargs["sparse"] = cuda
    generator = torch.Generator().manual_seed(0)
    need = (plan.steps + 1) * batch
    order = torch.cat([torch.randperm(len(data), generator=generator) for _ in range(math.ceil(need / len(data)))])
    loader = batch_loader(data, order[:need].tolist(), batch, **kwargs)
    n, pinned, kind, t0 = 0, True, "", 0.0
    for k, (images, indices) in enumerate(loader):
        if k == 0:
            kind = "dense" if isinstance(images, torch.Tensor) else f"{type(images).__name__} decoded on {device.type}"
            pinned = all(t.is_pinned() for t in _tensors(images)) if cuda else False
        _on_device(images, device)
        if k == 0:
            _sync(device)
            t0 = time.perf_counter()
        else:
            n += len(indices)
    _sync(device)
    seconds = time.perf_counter() - t0
    notes = (f"{plan.steps} batches, workers {plan.loader_workers}, {kind}, pinned memory "
             f"{'yes' if pinned else 'no'}, to {device.type}")
    return Row("loader", device.type, str(batch), n / seconds, notes)


class ConvProbe:
    """What the first multi-channel convolution of a forward pass in training (or eval) mode
    actually ran with: its output dtype (bfloat16 when autocast to bf16 was active) and whether its
    input and weight were channels-last. A global forward hook that removes itself after that one
    call, so the timed loop runs without it.

    Only convolutions with more than one input channel and a kernel larger than 1x1 count: for
    one channel, or a 1x1 kernel, a tensor is both contiguous and channels-last, which would say
    nothing.
    """

    def __init__(self, training: bool) -> None:
        self.training = training
        self.dtype: torch.dtype | None = None
        self.channels_last = False
        self._handle: Any = None

    def __enter__(self) -> Self:
        self._handle = register_module_forward_hook(self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()

    def _hook(self, module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        if (self.dtype is not None or not isinstance(module, nn.Conv2d) or module.training != self.training
                or module.in_channels < 2 or module.kernel_size == (1, 1)):
            return
        x = inputs[0]
        self.dtype = output.dtype
        self.channels_last = (x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
                              and module.weight.is_contiguous(memory_format=torch.channels_last))
        self._handle.remove()

    def describe(self) -> str:
        """``bf16 autocast on|off, channels-last on|off``, or why nothing was observed."""
        if self.dtype is None:
            return "autocast/channels-last not observed (no multi-channel conv ran)"
        autocast = "on" if self.dtype == torch.bfloat16 else f"off ({str(self.dtype).removeprefix('torch.')})"
        return f"bf16 autocast {autocast}, channels-last {'on' if self.channels_last else 'off'}"


def _config(plan: Plan, batch: int, n_train: int, **overrides: Any) -> tuple[TrainConfig, int]:
    """The pipeline's default training configuration on ``plan.device`` for ``plan.steps``
    optimiser steps of ``batch`` events (the whole train split or its first events, over as many
    epochs as that takes), without early stopping; and the number of steps it will run."""
    events = min(plan.steps * batch, n_train)
    per_epoch = math.ceil(events / batch)
    epochs = math.ceil(plan.steps / per_epoch)
    cfg = replace(TrainConfig(), device=plan.device, batch_size=batch, epochs=epochs, patience=0,
                  train_events=events if events < n_train else 0, workers=plan.loader_workers, **overrides)
    return cfg, epochs * per_epoch


def _train(shards: Path, work: Path, cfg: TrainConfig) -> dict[str, Any]:
    """:func:`train` on ``shards`` into ``work``, its printing kept out of the table; its info."""
    with contextlib.redirect_stdout(io.StringIO()):
        result = train(ShardDataset(shards, "train"), ShardDataset(shards, "val"), model_dir=work / "model",
                       checkpoint_dir=work / "checkpoint", config=cfg,
                       progress=False)
    return result.info


def warm_up(shards: Path, work: Path, plan: Plan) -> None:
    """One short training run, untimed, so that CUDA's context, cuDNN and cuBLAS start-up fall
    outside the measured runs."""
    n_train = len(ShardDataset(shards, "train"))
    cfg, _ = _config(replace(plan, steps=2), plan.batches[0], n_train)
    _train(shards, work, cfg)


def train_rate(shards: Path, work: Path, plan: Plan, batch: int) -> Row:
    """:func:`train` for ``plan.steps`` steps of ``batch`` events: the events/s it reports, what
    its convolutions ran with, and (CUDA) the peak GPU memory."""
    n_train = len(ShardDataset(shards, "train"))
    cfg, steps = _config(plan, batch, n_train)
    cuda = plan.device == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    with ConvProbe(training=True) as probe:
        info = _train(shards, work, cfg)
    memory = f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if cuda else ""
    notes = (f"{steps} steps in {cfg.epochs} epoch(s), mean of the epochs' rates, {cfg.model}, "
             f"{len(info['tasks'])} tasks, workers {cfg.workers}, {probe.describe()}{memory}")
    return Row("train", str(info["device"]), str(batch), float(info["events_per_s"]), notes)


def ddp_rate(shards: Path, work: Path, plan: Plan) -> Row:
    """Two DDP processes through the train stage (``train.gpus=2``: it relaunches itself under
    torchrun; NCCL on CUDA, gloo on the CPU), at the larger batch size; the events/s of its
    ``info/train.json``."""
    batch = max(plan.batches)
    device = "cuda x2" if plan.device == "cuda" else "cpu x2"
    if plan.ddp is not None:
        return Row("ddp train", device, str(batch), None, plan.ddp)
    cfg, steps = _config(plan, batch, len(ShardDataset(shards, "train")), gpus=2)
    work.mkdir(parents=True, exist_ok=True)
    params = work / "params.yaml"
    params.write_text(yaml.safe_dump({"train": asdict(cfg)}))
    info = work / "info.json"
    cmd = [sys.executable, str(STAGE), "--params", str(params), "--shards", str(shards), "--model-dir",
           str(work / "model"), "--checkpoint-dir", str(work / "checkpoint"), "--live-dir", str(work / "dvclive"),
           "--info", str(info), "--no-progress"]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300, cwd=work)
    if proc.returncode != 0:
        raise _failed(f"stages/train.py with train.gpus=2 exited with {proc.returncode}", proc)
    result = json.loads(info.read_text())
    backend = "NCCL" if plan.device == "cuda" else "gloo"
    notes = f"stages/train.py under torchrun, {result['processes']} processes ({backend}), {steps} steps"
    return Row("ddp train", device, str(batch), float(result["events_per_s"]), notes)


def predict_rate(shards: Path, model_dir: Path, plan: Plan) -> Row:
    """:func:`nucvn.inference.predict` of the trained model over the test split, on the device:
    one untimed pass, then passes until ``plan.predict_seconds`` have gone by."""
    model, config = load_model(model_dir)
    test = ShardDataset(shards, "test")

    def run() -> None:
        predict(model, config, test, batch_size=plan.predict_batch, device=plan.device,  # type: ignore[arg-type]
                progress=False)

    with ConvProbe(training=False) as probe:
        run()
    passes, t0 = 0, time.perf_counter()
    while passes == 0 or time.perf_counter() - t0 < plan.predict_seconds:
        run()
        passes += 1
    seconds = time.perf_counter() - t0
    notes = f"test split, {len(test)} events x {passes} passes, {probe.describe()}"
    return Row("predict", plan.device, str(plan.predict_batch), passes * len(test) / seconds, notes)


def format_table(rows: Sequence[Row]) -> str:
    """The rows as one markdown table with the fixed columns :data:`COLUMNS`."""
    cells = [list(COLUMNS)] + [[r.step, r.device, r.batch, "skipped" if r.rate is None else f"{r.rate:,.0f}", r.notes]
                               for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _timed(rows: list[Row], measure: Callable[[], Row]) -> None:
    """Append ``measure()``'s row with the step's wall time (set-up, validation and writing
    included) at the end of its notes, unless the step was skipped."""
    t0 = time.perf_counter()
    row = measure()
    rows.append(row if row.rate is None else replace(row, notes=f"{row.notes}; {time.perf_counter() - t0:.1f} s"))


def run_steps(plan: Plan, tmp: Path, rows: list[Row]) -> None:
    """Every step in order, appending its row to ``rows`` (kept when a later step fails)."""
    shards = tmp / "shards"
    paths: list[Path] = []
    with _step("simulate"):
        _timed(rows, lambda: simulate(plan, tmp / "raw", paths))
    with _step("preprocess"):
        _timed(rows, lambda: preprocess(paths, shards))
    with _step("train warm-up"):
        warm_up(shards, tmp / "warm-up", plan)
    for batch in plan.batches:
        with _step(f"loader (batch {batch})"):
            _timed(rows, lambda: loader_rate(ShardDataset(shards, "train"), plan, batch))  # noqa: B023
        with _step(f"train (batch {batch})"):
            _timed(rows, lambda: train_rate(shards, tmp / f"train-{batch}", plan, batch))  # noqa: B023
    with _step("ddp train"):
        _timed(rows, lambda: ddp_rate(shards, tmp / "ddp", plan))
    with _step("predict"):
        _timed(rows, lambda: predict_rate(shards, tmp / f"train-{plan.batches[-1]}" / "model", plan))


def _caption(plan: Plan) -> str:
    cpus = os.cpu_count()
    if plan.dry:
        why = "--dry" if torch.cuda.is_available() else "no CUDA device"
        return (f"gpu_check: dry mode ({why}): CPU, tiny sizes, 1 torch thread; torch {torch.__version__}, "
                f"{cpus} CPUs")
    name = torch.cuda.get_device_name(0)
    return (f"gpu_check: GPU mode: {torch.cuda.device_count()} x {name}; torch {torch.__version__} "
            f"(CUDA {torch.version.cuda}); {cpus} CPUs")


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry", action="store_true", help="CPU, tiny sizes, even where CUDA is available")
    p.add_argument("--require-gpu", action="store_true", help="fail (exit 2) instead of running the dry mode "
                   "when torch sees no CUDA device (use it on the GPU machine)")
    p.add_argument("--events", type=int, help="events per simulated file (default 4000 on GPU, 300 dry)")
    p.add_argument("--steps", type=int, help="optimiser steps per batch size (default 40 on GPU, 6 dry)")
    p.add_argument("--batches", type=lambda s: [int(b) for b in s.split(",")],
                   help="the batch sizes, comma-separated (default 256,1024 on GPU, 32,64 dry)")
    p.add_argument("--loader-workers", type=int, help="data-loader processes (default min(4, CPUs - 1) on GPU, 1 dry)")
    p.add_argument("--ddp-on-cpu", action="store_true", help="dry mode: run the DDP row as 2 gloo processes on "
                   "the CPU instead of skipping it (checks the torchrun relaunch without GPUs)")
    p.add_argument("--traceback", action="store_true", help="print the full traceback of a failed step")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    if args.require_gpu and not torch.cuda.is_available():
        print(f"gpu_check: --require-gpu, but torch {torch.__version__} sees no CUDA device", file=sys.stderr)
        return 2
    plan = make_plan(args)
    if plan.dry:
        torch.set_num_threads(1)  # two OpenMP threads stall whenever the CPU is shared (CI); speed is not the point
    print(_caption(plan), flush=True)
    rows: list[Row] = []
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
            run_steps(plan, Path(tmp), rows)
    except StepFailed as exc:
        if rows:
            print(format_table(rows), flush=True)
        if args.traceback:
            traceback.print_exception(exc.__cause__ or exc, file=sys.stderr)
        print(f"gpu_check: FAILED: {exc}", file=sys.stderr)
        return 1
    print(format_table(rows))
    print(f"gpu_check: all {len(rows)} steps ran in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
