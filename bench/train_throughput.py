"""Training and inference throughput (events/s) of every registered model, and of the data loader.

Prints one line per (model, device) with training and inference events/s, then the rate of the
training data loader alone (shards -> uint8 batches -> scaled float tensors), which must be at
least 5x the CPU training rate of the default model so loading never limits training. Uses
``data/shards`` when it exists, else a temporary shard directory of random events. Writes the
figures to ``bench/out/train_throughput.json``. Run: ``.venv/bin/python bench/train_throughput.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nucvn.core.events import IMAGE_SHAPE
from nucvn.data.h5write import write_events
from nucvn.data.shards import ShardDataset, build_shards
from nucvn.models import create_model, list_models, scale_pixels
from nucvn.train import TrainConfig, batch_loader
from nucvn.train.distributed import autocast

DEFAULT_KWARGS = TrainConfig().model_kwargs  # the params.yaml defaults, from their one definition


def _images(n: int, rng: np.random.Generator) -> torch.Tensor:
    images = np.zeros((n, *IMAGE_SHAPE), dtype=np.uint8)
    hits = rng.random(images.shape) < 0.02
    images[hits] = rng.integers(1, 256, int(hits.sum()), dtype=np.uint8)
    return torch.from_numpy(images)


def _rate(step: object, batch: int, seconds: float, min_steps: int = 3) -> float:
    step()  # type: ignore[operator]  # warm-up
    n, t0 = 0, time.perf_counter()
    while n < min_steps or time.perf_counter() - t0 < seconds:
        step()  # type: ignore[operator]
        n += 1
    return n * batch / (time.perf_counter() - t0)


def model_rates(name: str, device: torch.device, batch: int, seconds: float) -> tuple[float, float]:
    torch.manual_seed(0)
    model = create_model(name, **DEFAULT_KWARGS.get(name, {})).to(device)
    cuda = device.type == "cuda"
    model = model.to(memory_format=torch.channels_last)  # as the trainer does
    raw = _images(batch, np.random.default_rng(0)).to(device).contiguous(memory_format=torch.channels_last)
    y = (torch.arange(batch, device=device) % 2).float()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def train_step() -> None:
        x = scale_pixels(raw, "log1p")
        with autocast(device):  # bf16 where the GPU has it, as the trainer does
            loss = F.binary_cross_entropy_with_logits(model(x).float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if cuda:
            torch.cuda.synchronize()

    def infer_step() -> None:
        with torch.inference_mode(), autocast(device):
            model(scale_pixels(raw, "log1p"))
        if cuda:
            torch.cuda.synchronize()

    model.train()
    train_rate = _rate(train_step, batch, seconds)
    model.eval()
    return train_rate, _rate(infer_step, batch, seconds)


def loader_rate(data: ShardDataset, batch: int, workers: int) -> float:
    sampler = torch.randperm(len(data), generator=torch.Generator().manual_seed(0)).tolist()
    loader = batch_loader(data, sampler, batch, workers=workers)
    t0, n = time.perf_counter(), 0
    for images, _ in loader:
        scale_pixels(images, "log1p")
        n += len(images)
    return n / (time.perf_counter() - t0)


def _shards(tmp: Path) -> Path:
    if (Path("data/shards") / "index.json").is_file():
        return Path("data/shards")
    rng = np.random.default_rng(1)
    n = 8192
    meta = {"interaction": rng.integers(0, 15, n).astype(np.uint32),
            "nuenergy": rng.uniform(1, 10, n).astype(np.float32),
            "lepenergy": rng.uniform(0, 1, n).astype(np.float32)}
    path = write_events(tmp / "neutrino1.h5", _images(n, rng).numpy(), meta, compression="none")
    build_shards([path], tmp / "shards", split={"train": 1.0}, progress=False)
    return tmp / "shards"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=5.0, help="timing per measurement")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    results: dict[str, object] = {"torch": torch.__version__, "threads": torch.get_num_threads(), "batch": args.batch,
                                  "models": {}}
    load = os.getloadavg()[0]
    results["load_average_1min"] = load
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, batch {args.batch}, "
          f"load average {load:.1f} on {os.cpu_count()} CPUs (figures are only comparable on an idle machine)")
    for device in devices:
        for name in list_models():
            tr, inf = model_rates(name, device, args.batch, args.seconds)
            results["models"][f"{name}/{device.type}"] = {"train_events_per_s": tr,
                                                          "infer_events_per_s": inf}  # type: ignore[index]
            print(f"{name:14s} {device.type:4s}  train {tr:9.0f} events/s   inference {inf:9.0f} events/s")
    with tempfile.TemporaryDirectory() as tmp:
        data = ShardDataset(_shards(Path(tmp)), "train", verify=False)
        base = results["models"]["cvn2v/cpu"]["train_events_per_s"]  # type: ignore[index]
        for workers in (0, 1):
            rate = loader_rate(data, args.batch, workers)
            ok = "OK" if rate >= 5 * base else "TOO SLOW"
            results[f"loader_workers{workers}_events_per_s"] = rate
            print(f"data loader ({len(data)} events, workers={workers}): {rate:9.0f} events/s = "
                  f"{rate / base:.1f}x cvn2v CPU training (need >= 5x): {ok}")
    out = Path("bench/out")
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_throughput.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
