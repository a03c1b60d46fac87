"""ONNX export and ONNX Runtime inference (nucvn.deploy): every task head agrees with PyTorch, the
batch axis is dynamic, the sidecar says what the graph takes and gives, a changed graph is refused,
and the int8 graph still ranks events like the float one."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from conftest import random_events
from nucvn.artifact import write_model_dir
from nucvn.core.errors import NucvnError
from nucvn.data.h5write import write_events
from nucvn.deploy.onnx_export import export_onnx, read_sidecar, sidecar_path
from nucvn.deploy.onnx_runtime import OnnxModel
from nucvn.deploy.quantize import quantize_int8
from nucvn.inference import load_model, predict
from nucvn.models import scale_pixels
from nucvn.tasks import build_network, create_tasks, list_tasks

CONFIGS = {
    "plain-log1p": ({"width": 3, "depth": 1, "head": 8}, "log1p"),
    "se-spatial-div255": ({"width": 2, "depth": 2, "head": 6, "se": True, "spatial": 2}, "div255"),
}


def _model_dir(root: Path, kwargs: dict, scale: str) -> Path:
    """A cvn2v with every task's head and random weights *and* batch-norm statistics (so folding
    the batch norms into the convolutions is exercised), written as the train stage writes it."""
    torch.manual_seed(0)
    tasks = create_tasks(list_tasks())
    net = build_network("cvn2v", kwargs, tasks)
    state = net.state_dict()
    for name, value in state.items():
        if name.endswith("running_mean"):
            state[name] = torch.randn_like(value) * 0.1
        elif name.endswith("running_var"):
            state[name] = torch.rand_like(value) + 0.5
    write_model_dir(root, state, model="cvn2v", model_kwargs=kwargs, tasks=[t.describe() for t in tasks],
                    loss={"weighting": "fixed", "weights": {t.name: 1.0 for t in tasks}, "log_variances": None},
                    scale=scale, record={})  # type: ignore[arg-type]
    return root


def _events(n: int, seed: int) -> np.ndarray:
    images = random_events(n, seed=seed)[0]
    images[0, :, 40:60, 30:50] = 255  # a saturated blob next to sparse hits
    return images


@pytest.fixture(scope="module", params=list(CONFIGS))
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp(request.param)
    model_dir = _model_dir(root / "model", *CONFIGS[request.param])
    return model_dir, export_onnx(model_dir, root / "out" / "model.onnx")


@pytest.mark.parametrize("n", [1, 7])
def test_every_head_agrees_with_pytorch(exported: tuple[Path, Path], n: int) -> None:
    model_dir, onnx_path = exported
    model, config = load_model(model_dir)
    session = OnnxModel(onnx_path, threads=1)
    images = _events(n, seed=n)
    heads = session(images)
    with torch.no_grad():
        expected = model(scale_pixels(torch.from_numpy(images), config["input"]["scale"]))
    assert list(heads) == model.task_names == session.task_names
    for name, value in expected.items():
        assert heads[name].shape == value.shape and heads[name].dtype == torch.float32, name
        np.testing.assert_allclose(heads[name].numpy(), value.numpy(), rtol=1e-4, atol=1e-4, err_msg=name)
    # predictions through the tasks' own post-processing, batched differently from the PyTorch path
    ours = session.predict([images], batch_size=3, progress=False)
    theirs = predict(model, config, [images], batch_size=5, device="cpu", progress=False)
    for name in model.task_names:
        assert ours[name].shape == theirs[name].shape
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-4, atol=1e-4, err_msg=name)


def test_sidecar_describes_the_graph(exported: tuple[Path, Path]) -> None:
    model_dir, onnx_path = exported
    config = json.loads((model_dir / "model.json").read_text())
    side = json.loads(sidecar_path(onnx_path).read_text())
    assert sidecar_path(onnx_path).name == "model.onnx.json"
    assert side["format"] == "nucvn-onnx" and side["version"] == 1 and side["opset"] == 17
    assert side["onnx"]["sha256"] == hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    assert side["onnx"]["bytes"] == onnx_path.stat().st_size and side["onnx"]["file"] == "model.onnx"
    assert side["source"]["weights_sha256"] == config["weights"]["sha256"]
    assert side["source"]["model_kwargs"] == config["model_kwargs"]
    assert side["input"] | {"scaling": None, "description": None} == {
        "name": "images", "shape": ["batch", 2, 100, 80], "dtype": "uint8", "layout": "view,plane,cell",
        "scaling": None, "description": None}
    scaling = side["input"]["scaling"]
    assert scaling["in_graph"] is True and scaling["name"] == config["input"]["scale"]
    assert scaling["formula"] == {"log1p": "log(1 + x) / log(256)", "div255": "x / 255"}[scaling["name"]]
    assert side["quantization"] is None and set(side["versions"]) == {"nucvn", "torch", "onnx", "onnxruntime"}
    assert [t["name"] for t in side["tasks"]] == side["outputs"] == [t["name"] for t in config["tasks"]]
    by_name = {t["name"]: t for t in side["tasks"]}
    assert {n: t["postprocess"] for n, t in by_name.items()} == {
        "numu_cc": "sigmoid", "flavour": "softmax", "mode": "softmax", "nuenergy": "exp", "lepton_fraction": "sigmoid",
        "nproton": "softmax", "npion": "softmax", "npizero": "softmax"}
    assert by_name["numu_cc"]["prediction_columns"] == ["numu_cc_score"] and by_name["numu_cc"]["shape"] == ["batch"]
    assert by_name["nuenergy"]["unit"] == "GeV" and "exp(output)" in by_name["nuenergy"]["meaning"]
    assert by_name["flavour"]["shape"] == ["batch", 5] and by_name["flavour"]["classes"][0] == "numu_cc"
    assert "flavour_p_cosmic" in by_name["flavour"]["meaning"]
    # the graph itself: one uint8 input and one output per task, all with a symbolic batch axis
    graph = onnx.load(str(onnx_path)).graph
    assert [i.name for i in graph.input] == ["images"] and [o.name for o in graph.output] == side["outputs"]
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    for value in [*graph.input, *graph.output]:
        assert value.type.tensor_type.shape.dim[0].dim_param == "batch", value.name


def test_a_changed_graph_is_refused(exported: tuple[Path, Path], tmp_path: Path) -> None:
    _, onnx_path = exported
    copy = tmp_path / "m.onnx"
    raw = bytearray(onnx_path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one flipped bit pattern inside the weights: still a loadable graph
    copy.write_bytes(bytes(raw))
    sidecar_path(copy).write_bytes(sidecar_path(onnx_path).read_bytes())
    with pytest.raises(NucvnError, match=r"m\.onnx: sha256 .* differs .* recorded in m\.onnx\.json") as exc:
        OnnxModel(copy)
    assert "\n" not in str(exc.value) and "nucvn export" in str(exc.value)
    sidecar_path(copy).unlink()
    with pytest.raises(NucvnError, match=r"m\.onnx\.json: no such file"):
        read_sidecar(copy)
    sidecar_path(copy).write_text("{}")
    with pytest.raises(NucvnError, match="not a nucvn ONNX sidecar"):
        read_sidecar(copy)


def test_bad_batches_are_refused(exported: tuple[Path, Path]) -> None:
    session = OnnxModel(exported[1], threads=1)
    with pytest.raises(NucvnError, match=r"uint8 \(n, 2, 100, 80\)"):
        session(np.zeros((2, 2, 100, 80), np.float32))
    with pytest.raises(NucvnError, match="no task 'energy'"):
        session.predict([_events(2, 0)], tasks=["energy"], progress=False)


@pytest.mark.slow
def test_int8_graph_ranks_events_like_the_float_one(tmp_path: Path) -> None:
    """Static int8 calibrated on event files: it runs, records its quantisation, and its numu_cc
    scores follow the float graph's (a loose bound: the weights are random, not trained)."""
    model_dir = _model_dir(tmp_path / "model", *CONFIGS["plain-log1p"])
    fp32 = export_onnx(model_dir, tmp_path / "model.onnx")
    images, meta = random_events(64, seed=3)
    write_events(tmp_path / "calib.h5", images, meta)
    int8 = quantize_int8(fp32, tmp_path / "int8.onnx", calibration=tmp_path / "calib.h5", calibration_events_n=40)
    side = read_sidecar(int8)[1]
    q = side["quantization"]
    assert q["type"] == "int8" and q["method"] == "static" and q["calibration"]["events"] == 32
    assert q["float_graph_sha256"] == read_sidecar(fp32)[1]["onnx"]["sha256"]
    assert side["tasks"] == read_sidecar(fp32)[1]["tasks"]
    assert any(n.op_type == "QuantizeLinear" for n in onnx.load(str(int8)).graph.node)
    events = _events(200, seed=11)
    a = OnnxModel(fp32, threads=1).predict([events], progress=False)
    b = OnnxModel(int8, threads=1).predict([events], progress=False)
    assert set(b) == set(a) and b["numu_cc"].shape == a["numu_cc"].shape
    assert np.corrcoef(a["numu_cc"], b["numu_cc"])[0, 1] > 0.9
    with pytest.raises(NucvnError, match="already quantised"):
        quantize_int8(int8, tmp_path / "again.onnx", calibration=tmp_path / "calib.h5")
