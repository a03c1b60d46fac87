"""`python -m nucvn predict` in a subprocess, with a tiny model trained by nucvn.train."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from nucvn.core.events import numu_cc
from nucvn.data.h5io import open_events
from nucvn.inference import load_model, predict_scores
from tiny_pipeline import make_model, make_shards, write_params

REPO = Path(__file__).resolve().parents[2]


def _nucvn(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nucvn", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("predict")
    make_model(root, make_shards(root, files=2, events=80))
    return root


def test_predict_writes_scores_matching_the_library(workspace: Path) -> None:
    out = workspace / "out" / "scores.csv"
    res = _nucvn("predict", "--model", str(workspace / "model"), "--files", str(workspace / "raw" / "neutrino*.h5"),
                 "--out", str(out), "--batch-size", "24", "--device", "cpu", "--threshold", "0.5")
    assert res.returncode == 0, res.stderr
    assert "predict" in res.stderr and "event" in res.stderr  # the tqdm progress bar
    table = pd.read_csv(out)
    assert list(table.columns) == ["file", "index", "run", "subrun", "evt", "cycle", "subevt", "score", "selected", "label", "interaction"]
    assert len(table) == 160
    assert [Path(f).name for f in table["file"].unique()] == ["neutrino1.h5", "neutrino2.h5"]
    first = table[table["file"].str.endswith("neutrino1.h5")]
    np.testing.assert_array_equal(first["index"], np.arange(80))
    meta = open_events(workspace / "raw" / "neutrino1.h5").read_metadata()
    np.testing.assert_array_equal(first["evt"], meta["evt"])
    np.testing.assert_array_equal(first["label"], numu_cc(meta["interaction"]).astype(int))
    np.testing.assert_array_equal(table["selected"], (table["score"] >= 0.5).astype(int))
    # the same scores as the library on the same images (batching must not change them)
    model, config = load_model(workspace / "model")
    images = [c.images for c in open_events(workspace / "raw" / "neutrino*.h5").iter_chunks(1000)]
    expected = predict_scores(model, config, images, batch_size=7, device="cpu", progress=False)
    np.testing.assert_allclose(table["score"], expected, atol=1e-5)
    assert ((table["score"] >= 0) & (table["score"] <= 1)).all()


def test_predict_threshold_from_json(workspace: Path, tmp_path: Path) -> None:
    (tmp_path / "threshold.json").write_text(json.dumps({"threshold": 0.0}))
    out = tmp_path / "s.csv"
    res = _nucvn("predict", "--model", str(workspace / "model"), "--files", str(workspace / "raw" / "neutrino1.h5"),
                 "--out", str(out), "--device", "cpu", "--threshold", str(tmp_path / "threshold.json"), "--no-progress")
    assert res.returncode == 0, res.stderr
    assert pd.read_csv(out)["selected"].eq(1).all()


def test_predict_refuses_bad_input(workspace: Path, tmp_path: Path) -> None:
    bad = tmp_path / "neutrino9.h5"
    with h5py.File(bad, "w") as f:
        f.create_dataset("cvnmap", data=np.zeros((3, 16000), np.uint8))
    out = tmp_path / "s.csv"
    res = _nucvn("predict", "--model", str(workspace / "model"), "--files", str(bad), "--out", str(out))
    assert res.returncode == 2 and "neutrino9.h5" in res.stderr and "interaction" in res.stderr
    assert "Traceback" not in res.stderr and not out.exists()
    res = _nucvn("predict", "--model", str(tmp_path / "nomodel"), "--files", str(workspace / "raw" / "neutrino1.h5"), "--out", str(out))
    assert res.returncode == 2 and "model.json" in res.stderr
    res = _nucvn("predict", "--model", str(workspace / "model"), "--files", str(tmp_path / "none*.h5"), "--out", str(out))
    assert res.returncode == 2 and "no .h5 files match" in res.stderr
    res = _nucvn("predict", "--model", str(workspace / "model"), "--files", str(workspace / "raw" / "neutrino1.h5"),
                 "--out", str(out), "--threshold", "1.5")
    assert res.returncode == 2 and "--threshold" in res.stderr


def test_damaged_weights_are_refused_by_predict_and_threshold(workspace: Path, tmp_path: Path) -> None:
    """Flipped bytes in model.safetensors (same size, still a valid file): both consumers stop
    with one line naming the file instead of scoring with the damaged weights."""
    model = tmp_path / "model"
    shutil.copytree(workspace / "model", model)
    weights = model / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    start = 8 + int.from_bytes(raw[:8], "little") + 64
    raw[start : start + 256] = bytes(b ^ 0xFF for b in raw[start : start + 256])
    weights.write_bytes(bytes(raw))
    out = tmp_path / "s.csv"
    res = _nucvn("predict", "--model", str(model), "--files", str(workspace / "raw" / "neutrino1.h5"), "--out", str(out),
                 "--device", "cpu", "--no-progress")
    assert res.returncode == 2 and not out.exists(), res.stderr
    assert f"{weights}: sha256" in res.stderr and "retrain" in res.stderr and "Traceback" not in res.stderr
    stage = subprocess.run([sys.executable, str(REPO / "stages" / "threshold.py"), "--params",
                            str(write_params(tmp_path / "params.yaml")), "--shards", str(workspace / "shards"),
                            "--model-dir", str(model), "--raw", str(workspace / "raw"), "--metrics",
                            str(tmp_path / "t.json"), "--info", str(tmp_path / "i.json"), "--scan",
                            str(tmp_path / "scan.csv"), "--no-progress"],
                           capture_output=True, text=True, timeout=300, cwd=REPO)
    assert stage.returncode == 2 and f"{weights}: sha256" in stage.stderr and "Traceback" not in stage.stderr
    assert not (tmp_path / "t.json").exists()
