"""The int8 version of an exported graph (ONNX Runtime's quantisation), with its sidecar.

``static`` (default): weights int8, symmetric, per output channel; activations uint8, per tensor,
their ranges calibrated on a few hundred events (default: from the 0.001th to the 99.999th
percentile of each activation, which ignores rare outliers; ``calibrate="minmax"``: the full
range), quantise/dequantise pairs inserted around every convolution and linear
layer (the QDQ format, which ONNX Runtime fuses into integer kernels at graph-optimisation level
``all``). The calibration events come from a shard split (default ``val``: the test split is never
used to choose anything) or from event files; they are taken evenly spaced over the source, and
their number, source and split are recorded in the sidecar. ``exclude_stem`` keeps the first
convolution of each view's tower in float (it reads the scaled pixels, whose range is fixed and
whose precision the rest of the network inherits).

``dynamic``: weights int8, activations quantised on the fly per batch, no calibration; ONNX
Runtime's CPU kernels for it (ConvInteger, MatMulInteger) are generally slower than float for
convolutions, so it is there to be measured, not recommended.

The graph is first run through ONNX Runtime's quantisation pre-processing (shape inference and
graph optimisation), as its documentation advises. The sidecar is the float graph's, plus a
``quantization`` record, written by :func:`nucvn.deploy.onnx_export.write_sidecar`.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from nucvn.core.atomic import atomic_write
from nucvn.core.errors import NucvnError
from nucvn.deploy.onnx_export import read_sidecar, write_sidecar

__all__ = ["Method", "Calibrate", "calibration_events", "quantize_int8"]

Method = Literal["static", "dynamic"]
Calibrate = Literal["minmax", "percentile"]
_SPLITS = ("train", "val", "test")


def calibration_events(source: str | Path, n_events: int, *, split: str = "val") -> tuple[npt.NDArray[np.uint8], str]:
    """``(n uint8 events, description)`` from a shards folder (``index.json`` inside: the ``split``
    split, evenly spaced) or from event files (a file, folder or glob: the first ``n_events``)."""
    if n_events < 1:
        raise NucvnError(f"--calibration-events must be at least 1, got {n_events}")
    root = Path(source)
    if (root / "index.json").is_file():
        from nucvn.data.shards import ShardDataset

        if split not in _SPLITS:
            raise NucvnError(f"--calibration-split {split!r}: choose one of {', '.join(_SPLITS)}")
        ds = ShardDataset(root, split)  # type: ignore[arg-type]
        if len(ds) == 0:
            raise NucvnError(f"{root}: the {split} split holds no events to calibrate on; choose another split")
        idx = np.unique(np.linspace(0, len(ds) - 1, min(n_events, len(ds))).round().astype(np.int64))
        return ds.images(idx).numpy(), f"{root} ({split} split, {len(idx)} of {len(ds)} events, evenly spaced)"
    from nucvn.data.h5io import open_events

    reader = open_events(str(source))
    chunks, have = [], 0
    for chunk in reader.iter_chunks(min(n_events, 1024)):
        assert chunk.images is not None  # iter_chunks reads the images unless told not to
        chunks.append(chunk.images[: n_events - have])
        have += len(chunks[-1])
        if have >= n_events:
            break
    return np.concatenate(chunks), f"{source} (the first {have} events)"


class _Reader:
    """ONNX Runtime's CalibrationDataReader protocol over an array of events, in batches of one
    size (ONNX Runtime 1.32's percentile calibrator fails on a shorter last batch, so the events
    beyond the last whole batch are left out; :attr:`used` counts the rest)."""

    def __init__(self, input_name: str, events: npt.NDArray[np.uint8], batch: int = 32) -> None:
        batch = min(batch, len(events))
        self.used = len(events) - len(events) % batch
        self._batches: Iterator[dict[str, np.ndarray]] = iter(
            [{input_name: events[i:i + batch]} for i in range(0, self.used, batch)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def _stem_convolutions(model: Any) -> list[str]:
    """Names of the Conv nodes that read the input side of the graph (no Conv, pooling or
    activation before them): the first convolution of each tower."""
    producers = {out: node for node in model.graph.node for out in node.output}
    names = []
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        seen, frontier, deep = set(), [node.input[0]], False
        while frontier and not deep:
            name = frontier.pop()
            prev = producers.get(name)
            if prev is None or name in seen:
                continue
            seen.add(name)
            deep = prev.op_type in ("Conv", "Relu", "MaxPool", "Gemm", "MatMul")
            frontier.extend(prev.input)
        if not deep:
            names.append(node.name)
    return names


def quantize_int8(float_onnx: str | Path, out: str | Path, *, method: Method = "static",
                  calibration: str | Path | None = None, calibration_events_n: int = 512,
                  calibration_split: str = "val",
                  calibrate: Calibrate = "percentile", per_channel: bool = True, exclude_stem: bool = False) -> Path:
    """Write the int8 version of the exported ``float_onnx`` to ``out`` with its sidecar; returns ``out``."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_dynamic,
        quantize_static,
    )

    data, sidecar = read_sidecar(float_onnx)
    if sidecar.get("quantization"):
        raise NucvnError(f"{float_onnx}: already quantised; quantise the float export")
    if method == "static" and calibration is None:
        raise NucvnError("--quantize int8 (static) needs calibration events: --calibration data/shards "
                         "(or event files); or choose --quantize-method dynamic")
    record: dict[str, Any] = {"type": "int8", "method": method, "weights": "int8 symmetric, "
                              + ("per output channel" if per_channel else "per tensor"),
                              "float_graph_sha256": sidecar["onnx"]["sha256"]}
    with tempfile.TemporaryDirectory(prefix="nucvn-quant-") as tmp:
        src, pre, dst = Path(tmp) / "float.onnx", Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(data)
        quant_pre_process(str(src), str(pre))
        if method == "dynamic":
            quantize_dynamic(str(pre), str(dst), per_channel=per_channel, weight_type=QuantType.QInt8)
            record["activations"] = "uint8, quantised on the fly per batch"
        else:
            assert calibration is not None
            events, described = calibration_events(calibration, calibration_events_n, split=calibration_split)
            excluded = _stem_convolutions(onnx.load(str(pre))) if exclude_stem else []
            reader = _Reader(sidecar["input"]["name"], events)
            with contextlib.redirect_stdout(io.StringIO()):  # the percentile calibrator prints its progress
                quantize_static(str(pre), str(dst), reader,
                                quant_format=QuantFormat.QDQ, per_channel=per_channel, activation_type=QuantType.QUInt8,
                                weight_type=QuantType.QInt8, nodes_to_exclude=excluded,
                                calibrate_method=CalibrationMethod.Percentile if calibrate == "percentile"
                                else CalibrationMethod.MinMax)
            record.update({"format": "QDQ", "activations": "uint8 per tensor, ranges from calibration",
                           "calibration": {"source": described, "events": reader.used, "method": calibrate},
                           "float_nodes": excluded})
        quantized = dst.read_bytes()
    out = Path(out)
    atomic_write(out, lambda p: p.write_bytes(quantized))
    content = {k: v for k, v in sidecar.items() if k in ("input", "tasks", "source", "opset")}
    write_sidecar(out, quantized, {**content, "quantization": record})
    return out

