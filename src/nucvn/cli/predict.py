"""``nucvn predict --model data/model --files 'path/*.h5' --out scores.csv``: score new event files.

Every file is validated up front by :mod:`nucvn.data.h5io` (the same checks as the pipeline), then events
are read chunk by chunk (memory bounded by ``--batch-size``), scored by
:func:`nucvn.inference.predict_scores` with the trained model and written to one CSV: ``file``,
``index`` (event number in its file), the event identity keys the files carry (``run``, ``subrun``,
``evt``, ``cycle``, ``subevt``), ``score`` (νμ CC probability), and, when a threshold is given,
``selected``; then the true ``label`` (1 = νμ CC) and ``interaction`` code taken from the files.
A model whose ``model.safetensors`` differs from the sha256 in its ``model.json`` is refused
(:func:`nucvn.artifact.read_model_dir`), so damaged weights never produce scores.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from nucvn.core.errors import NucvnError
from nucvn.core.atomic import write_csv
from nucvn.report.evaluation import IDENTITY_COLUMNS
from nucvn.core.events import numu_cc
from nucvn.data.h5io import open_events
from nucvn.core.progress import progress_bar

__all__ = ["add_arguments", "run", "read_threshold"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, type=Path, help="trained model directory (model.json + model.safetensors)")
    parser.add_argument("--files", required=True, nargs="+", help="event files, directories or glob patterns (quote globs)")
    parser.add_argument("--out", required=True, type=Path, help="CSV to write (written atomically)")
    parser.add_argument("--batch-size", type=int, default=256, help="events per forward pass (default 256)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default: auto (CUDA if available)")
    parser.add_argument("--threshold", help="a number, or a JSON file with a 'threshold' key such as "
                        "metrics/threshold.json: adds a 'selected' column (score >= threshold)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def read_threshold(value: str) -> float:
    """``--threshold``: a number in [0, 1] or the path of a JSON file holding ``"threshold"``."""
    try:
        t = float(value)
    except ValueError:
        path = Path(value)
        try:
            t = float(json.loads(path.read_text())["threshold"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise NucvnError(f"--threshold {value!r}: neither a number nor a JSON file with a 'threshold' key ({exc})") from exc
    if not 0.0 <= t <= 1.0:
        raise NucvnError(f"--threshold must lie in [0, 1], got {t}")
    return t


def run(args: argparse.Namespace) -> int:
    if args.batch_size <= 0:
        raise NucvnError(f"--batch-size must be positive, got {args.batch_size}")
    threshold = None if args.threshold is None else read_threshold(args.threshold)
    reader = open_events(args.files)
    from nucvn.inference import load_model, predict_scores  # torch loads only once the files are valid

    model, config = load_model(args.model)
    keys = [k for k in ("interaction", *IDENTITY_COLUMNS) if k in reader.common_keys()]
    frames: list[pd.DataFrame] = []
    with progress_bar(total=reader.n_events, unit="event", unit_scale=True, desc="predict", disable=args.no_progress) as bar:
        for chunk in reader.iter_chunks(args.batch_size, keys=keys):
            scores = predict_scores(model, config, [chunk.images], batch_size=args.batch_size, device=args.device, progress=False)
            frame = pd.DataFrame({"file": str(chunk.path), "index": np.arange(chunk.start, chunk.start + len(chunk))})
            for k in IDENTITY_COLUMNS[2:]:
                if k in chunk.meta.columns:
                    frame[k] = chunk.meta[k].to_numpy()
            frame["score"] = scores
            if threshold is not None:
                frame["selected"] = (scores >= threshold).astype(np.int8)
            frame["label"] = numu_cc(chunk.meta["interaction"]).astype(np.int8)
            frame["interaction"] = chunk.meta["interaction"].to_numpy()
            frames.append(frame)
            bar.update(len(chunk))
    out = write_csv(pd.concat(frames, ignore_index=True), args.out)
    print(f"predict: scored {reader.n_events} events from {len(reader.files)} file(s) with model {config['model']}; wrote {out}")
    return 0
