"""`python -m nucvn export` then `nucvn predict --backend onnxruntime` (subprocesses) against the
PyTorch backend on the same tiny simulated files and a tiny model trained by nucvn.train; the
other runs are in-process (`nucvn.cli.main`: the same code without an interpreter start each)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nucvn.cli import main
from tiny_pipeline import make_model, make_shards


def _nucvn(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nucvn", *args], check=False, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("export")
    make_model(root, make_shards(root, files=2, events=80))
    res = _nucvn("export", "--model", str(root / "model"), "--format", "onnx", "--out",
                 str(root / "onnx" / "model.onnx"))
    assert res.returncode == 0, res.stderr
    assert "model.onnx.json" in res.stdout
    return root


def _predict(workspace: Path, out: Path, *extra: str) -> pd.DataFrame:
    code = main(["predict", "--files", str(workspace / "raw" / "neutrino*.h5"), "--out", str(out), "--batch-size", "24",
                 "--threshold", "0.5", "--no-progress", *extra])
    assert code == 0
    return pd.read_csv(out)


def test_onnxruntime_backend_writes_the_torch_backends_csv(workspace: Path, tmp_path: Path) -> None:
    torch_table = _predict(workspace, tmp_path / "torch.csv", "--model", str(workspace / "model"), "--device", "cpu")
    res = _nucvn("predict", "--backend", "onnxruntime", "--threads", "1", "--model",
                 str(workspace / "onnx" / "model.onnx"), "--files", str(workspace / "raw" / "neutrino*.h5"),
                 "--out", str(tmp_path / "ort.csv"), "--batch-size", "24", "--threshold", "0.5", "--no-progress")
    assert res.returncode == 0, res.stderr
    assert "float32, onnxruntime" in res.stdout
    ort_table = pd.read_csv(tmp_path / "ort.csv")
    assert list(ort_table.columns) == list(torch_table.columns) and len(ort_table) == len(torch_table) == 160
    predicted = [c for c in torch_table.columns
                 if c.endswith(("_score", "_gev", "_pred")) or "_p_" in c]
    assert len(predicted) == 1 + 5 + 5 + 1 + 1  # numu_cc, flavour, mode, nuenergy, lepton_fraction
    np.testing.assert_allclose(ort_table[predicted].to_numpy(), torch_table[predicted].to_numpy(), rtol=1e-4, atol=1e-4)
    rest = [c for c in torch_table.columns if c not in predicted]
    pd.testing.assert_frame_equal(ort_table[rest], torch_table[rest])  # identity, selection, truth


def _in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(args))
    return code, capsys.readouterr().err


def test_bad_format_and_changed_graph_are_refused(workspace: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _in_process(capsys, "export", "--model", str(workspace / "model"), "--format", "tflite", "--out",
                            str(tmp_path / "m.tflite"))
    assert code == 2 and "--format 'tflite'" in err and "onnx" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "m.tflite").exists()
    onnx_path = tmp_path / "model.onnx"
    raw = bytearray((workspace / "onnx" / "model.onnx").read_bytes())
    raw[-100] ^= 0x01
    onnx_path.write_bytes(bytes(raw))
    (tmp_path / "model.onnx.json").write_bytes((workspace / "onnx" / "model.onnx.json").read_bytes())
    out = tmp_path / "s.csv"
    files = ["--files", str(workspace / "raw" / "neutrino1.h5"), "--out", str(out), "--no-progress"]
    code, err = _in_process(capsys, "predict", "--backend", "onnxruntime", "--model", str(onnx_path), *files)
    assert code == 2 and f"{onnx_path}: sha256" in err and "nucvn export" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()
    code, err = _in_process(capsys, "predict", "--model", str(workspace / "onnx" / "model.onnx"), *files)
    assert code == 2 and "--backend onnxruntime" in err and not out.exists()
    code, err = _in_process(capsys, "predict", "--backend", "onnxruntime", "--model", str(workspace / "model"), *files)
    assert code == 2 and "not an .onnx file" in err and len(err.strip().splitlines()) == 1
    code, err = _in_process(capsys, "predict", "--backend", "onnxruntime", "--device", "cuda", "--model",
                            str(workspace / "onnx" / "model.onnx"), *files)
    assert code == 2 and "runs on the CPU" in err and not out.exists()


@pytest.mark.slow
def test_int8_export_scores_like_float(workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--quantize int8` calibrated on the shards' val split: the graph runs through predict, its
    sidecar says how it was quantised, and its numu_cc scores follow the float graph's."""
    int8 = tmp_path / "int8.onnx"
    code, err = _in_process(capsys, "export", "--model", str(workspace / "model"), "--format", "onnx", "--out",
                            str(tmp_path / "x.onnx"), "--quantize", "int8")
    assert code == 2 and "--calibration" in err and not (tmp_path / "x.onnx").exists()
    code, err = _in_process(capsys, "export", "--model", str(workspace / "model"), "--format", "onnx", "--out",
                            str(int8), "--quantize", "int8", "--calibration", str(workspace / "shards"),
                            "--calibration-events", "32")
    assert code == 0, err
    q = json.loads((tmp_path / "int8.onnx.json").read_text())["quantization"]
    assert q["type"] == "int8" and q["method"] == "static" and "val split" in q["calibration"]["source"]
    a = _predict(workspace, tmp_path / "fp32.csv", "--backend", "onnxruntime", "--model",
                 str(workspace / "onnx" / "model.onnx"))
    b = _predict(workspace, tmp_path / "int8.csv", "--backend", "onnxruntime", "--model", str(int8))
    assert list(a.columns) == list(b.columns)
    assert np.corrcoef(a["numu_cc_score"], b["numu_cc_score"])[0, 1] > 0.9
