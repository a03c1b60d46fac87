"""Inference rate on a few CPU cores: PyTorch eager against ONNX Runtime float32 and int8, with the AUC of each.

Exports ``--model`` to ONNX (:func:`nucvn.deploy.onnx_export.export_onnx`) and quantises it
(:func:`nucvn.deploy.quantize.quantize_int8`, calibrated on ``--calibration-events`` events of the
*val* split), then scores the first ``--events`` events of the *test* split of ``--shards`` with every
backend, all tasks' heads and post-processing included, and prints one table: events/s, the ratio
to PyTorch eager, the νμ CC AUC with DeLong's error (:func:`nucvn.report.uncertainty.auc_and_error`),
the AUC difference to eager with its paired-bootstrap error (same events), and the largest
difference of the νμ CC score from eager's.

The backends take turns batch by batch (each batch is decoded once, then run by every backend,
each timed on its own), so a machine shared with other work slows them alike and the *ratios* hold
even when the absolute rates move. PyTorch runs with ``torch.set_num_threads(--threads)`` and ONNX
Runtime with ``intra_op_num_threads=--threads``.

Variants: ``torch`` (the project's path, :func:`nucvn.inference.predict`: channels-last, inference
mode), ``torch-nchw`` (plain layout), ``ort-fp32``, ``ort-int8`` (static QDQ, per-channel weights,
percentile calibration) and, with ``--int8-variants``, the other int8 options (min/max calibration,
first convolutions kept in float, per-tensor weights, dynamic quantisation).

Run: ``.venv/bin/python bench/onnx_rate.py --model data/model --shards data/shards --events 20000``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nucvn.data.shards import ShardDataset
from nucvn.deploy.onnx_export import export_onnx
from nucvn.deploy.onnx_runtime import OnnxModel
from nucvn.deploy.quantize import quantize_int8
from nucvn.inference import load_model, predict
from nucvn.models import scale_pixels
from nucvn.report import stats
from nucvn.report.uncertainty import auc_and_error, paired_bootstrap

Scorer = Callable[[np.ndarray], np.ndarray]
INT8_VARIANTS: dict[str, dict[str, Any]] = {
    "ort-int8": {},
    "ort-int8-minmax": {"calibrate": "minmax"},
    "ort-int8-float-stem": {"exclude_stem": True},
    "ort-int8-per-tensor": {"per_channel": False},
    "ort-int8-dynamic": {"method": "dynamic"},
}


def _torch_scorers(model_dir: Path) -> dict[str, Scorer]:
    model, config = load_model(model_dir)
    plain, _ = load_model(model_dir)
    scale = config["input"]["scale"]

    def project_path(images: np.ndarray) -> np.ndarray:
        return predict(model, config, [images], batch_size=len(images), device="cpu", progress=False)["numu_cc"]

    def nchw(images: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            heads = plain(scale_pixels(torch.from_numpy(images), scale))
            every = {t.name: t.predict(heads[t.name]) for t in plain.tasks}
        return every["numu_cc"].numpy()

    return {"torch": project_path, "torch-nchw": nchw}


def _ort_scorer(path: Path, threads: int) -> Scorer:
    session = OnnxModel(path, threads=threads)

    def score(images: np.ndarray) -> np.ndarray:
        heads = session(images)
        every = {t.name: t.predict(heads[t.name]) for t in session.tasks}
        return every["numu_cc"].numpy()

    return score


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=Path("data/model"))
    ap.add_argument("--shards", type=Path, default=Path("data/shards"))
    ap.add_argument("--events", type=int, default=20000, help="test events scored by every backend (default 20000)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2, help="threads of every backend (default 2)")
    ap.add_argument("--calibration-events", type=int, default=512, help="val events calibrating int8 (default 512)")
    ap.add_argument("--int8-variants", action="store_true", help="also the other int8 options")
    ap.add_argument("--keep", type=Path, help="folder to keep the exported .onnx files in (default: a temporary one)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    test = ShardDataset(args.shards, "test")
    n = min(args.events, len(test))
    labels = test.labels("numu_cc")[:n].astype(bool)
    with tempfile.TemporaryDirectory(prefix="nucvn-onnx-bench-") as tmp:
        folder = args.keep or Path(tmp)
        scorers = _torch_scorers(args.model)
        t0 = time.perf_counter()
        fp32 = export_onnx(args.model, folder / "model.onnx")
        print(f"export: {time.perf_counter() - t0:.1f} s, {fp32.stat().st_size / 1e6:.2f} MB")
        scorers["ort-fp32"] = _ort_scorer(fp32, args.threads)
        for name, options in INT8_VARIANTS.items():
            if name != "ort-int8" and not args.int8_variants:
                continue
            t0 = time.perf_counter()
            path = quantize_int8(fp32, folder / f"{name}.onnx", calibration=args.shards,
                                 calibration_events_n=args.calibration_events, **options)
            print(f"{name}: quantised in {time.perf_counter() - t0:.1f} s, {path.stat().st_size / 1e6:.2f} MB")
            scorers[name] = _ort_scorer(path, args.threads)
        warm = test.images(np.arange(min(args.batch_size, n))).numpy()
        for score in scorers.values():
            score(warm)
        seconds = dict.fromkeys(scorers, 0.0)
        scores: dict[str, list[np.ndarray]] = {k: [] for k in scorers}
        for start in range(0, n, args.batch_size):
            images = test.images(np.arange(start, min(start + args.batch_size, n))).numpy()
            for name, score in scorers.items():
                t0 = time.perf_counter()
                scores[name].append(score(images))
                seconds[name] += time.perf_counter() - t0
    s = {k: np.concatenate(v).astype(np.float64) for k, v in scores.items()}
    eager_rate = n / seconds["torch"]
    print(f"\n{n} test events of {args.shards}, batch {args.batch_size}, {args.threads} threads; numu_cc AUC "
          f"(DeLong error); difference to torch with its paired-bootstrap error over the same events")
    print(f"{'backend':<22}{'events/s':>10}{'x torch':>9}{'AUC':>18}{'AUC - torch':>22}{'max |d score|':>15}")
    for name in scorers:
        auc, err = auc_and_error(labels, s[name])
        if name == "torch":
            diff = "-"
        else:
            _, sd = paired_bootstrap(lambda idx, a=s[name]: (stats.auc(labels[idx], a[idx]),
                                                                stats.auc(labels[idx], s["torch"][idx])),
                                        n, n_boot=200, seed=0)
            diff = f"{auc - stats.auc(labels, s['torch']):+.5f} ± {sd:.5f}"
        rate = n / seconds[name]
        print(f"{name:<22}{rate:>10.0f}{rate / eager_rate:>9.2f}{auc:>11.4f} ± {err:.4f}{diff:>22}"
              f"{np.abs(s[name] - s['torch']).max():>15.2e}")


if __name__ == "__main__":
    main()
