"""``nucvn export --model data/model --format onnx --out model.onnx``: the trained network as an ONNX graph.

Writes ``model.onnx`` (raw ``uint8`` events ``(batch, 2, 100, 80)`` in, pixel scaling inside the graph,
one output per task head, dynamic batch axis) and its sidecar ``model.onnx.json`` (input layout and
scaling, tasks in output order with their prediction columns and what each output means, sha256
of the graph and of the source weights, opset, versions): :mod:`nucvn.deploy.onnx_export`.
``nucvn predict --backend onnxruntime --model model.onnx`` then writes the same CSV as the PyTorch
backend.

``--quantize int8`` writes the int8 version instead (:mod:`nucvn.deploy.quantize`): static QDQ
quantisation calibrated on ``--calibration-events`` events of ``--calibration`` (a shards folder,
whose ``val`` split is used, or event files), or ``--quantize-method dynamic`` without calibration.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from nucvn.core.errors import NucvnError

__all__ = ["add_arguments", "run"]

FORMATS = ("onnx",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, type=Path,
                        help="trained model directory (model.json + model.safetensors)")
    parser.add_argument("--format", required=True, help="export format: onnx")
    parser.add_argument("--out", required=True, type=Path, help="the .onnx file to write (its sidecar: OUT.json)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument("--quantize", choices=("none", "int8"), default="none", help="int8: write the quantised graph")
    parser.add_argument("--quantize-method", choices=("static", "dynamic"), default="static",
                        help="static (default; needs --calibration) or dynamic")
    parser.add_argument("--calibration",
                        help="events calibrating static int8: a shards folder (data/shards) or event files")
    parser.add_argument("--calibration-split", default="val",
                        help="split of a shards folder to calibrate on (default val)")
    parser.add_argument("--calibration-events", type=int, default=512, help="calibration events (default 512)")
    parser.add_argument("--calibrate", choices=("percentile", "minmax"), default="percentile",
                        help="activation ranges: 99.999th percentile (default) or min/max")
    parser.add_argument("--per-tensor", action="store_true", help="int8 weights per tensor instead of per channel")
    parser.add_argument("--float-stem", action="store_true", help="keep each tower's first convolution in float")


def run(args: argparse.Namespace) -> int:
    from nucvn.deploy.onnx_export import export_onnx, sidecar_path

    if args.format not in FORMATS:
        raise NucvnError(f"--format {args.format!r}: this nucvn exports {', '.join(FORMATS)}")
    if args.out.is_dir():
        raise NucvnError(f"--out {args.out}: a directory; give the .onnx file to write")
    if args.quantize == "none":
        out = export_onnx(args.model, args.out, opset=args.opset)
        what = "float32"
    else:
        from nucvn.deploy.quantize import quantize_int8

        if args.quantize_method == "static" and args.calibration is None:
            raise NucvnError("--quantize int8 needs calibration events: --calibration data/shards (or event files), "
                             "or --quantize-method dynamic")
        with tempfile.TemporaryDirectory(prefix="nucvn-export-", dir=args.out.resolve().parent
                                         if args.out.resolve().parent.is_dir() else None) as tmp:
            fp32 = export_onnx(args.model, Path(tmp) / "float.onnx", opset=args.opset)
            out = quantize_int8(fp32, args.out, method=args.quantize_method, calibration=args.calibration,
                                calibration_events_n=args.calibration_events, calibration_split=args.calibration_split,
                                calibrate=args.calibrate, per_channel=not args.per_tensor, exclude_stem=args.float_stem)
        what = f"int8 ({args.quantize_method})"
    print(f"export: {args.model} -> {out} ({what}, {out.stat().st_size / 1e6:.2f} MB) and {sidecar_path(out)}")
    return 0
