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

from nucvn.core.events import flavour, numu_cc
from nucvn.data.h5io import open_events
from nucvn.inference import load_model, predict, predict_scores
from tiny_pipeline import make_model, make_shards, write_params

REPO = Path(__file__).resolve().parents[2]
IDENTITY = ["file", "index", "run", "subrun", "evt", "cycle", "subevt"]
GROUPS = ["numu_cc_score", *[f"flavour_p_{c}" for c in ("numu_cc", "nue_cc", "nutau_cc", "nc", "cosmic")],
          *[f"mode_p_{c}" for c in ("qe", "res", "dis", "other", "nc")], "nuenergy_gev", "lepton_fraction_pred"]


def _nucvn(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nucvn", *args], capture_output=True, text=True, timeout=300,
                          check=False)


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
    head = [*IDENTITY, GROUPS[0], "numu_cc_selected", *GROUPS[1:], "label", "interaction"]
    assert list(table.columns[:len(head)]) == head
    # then the truth the files carry, and the derived labels, for studying the predictions
    truth = {"nuenergy", "lepenergy", "finalstate", "vtxx", "vtxz", "flavour", "mode", "n_tracks", "lepton_fraction"}
    assert truth <= set(table.columns[len(head):])
    assert len(table) == 160
    assert [Path(f).name for f in table["file"].unique()] == ["neutrino1.h5", "neutrino2.h5"]
    first = table[table["file"].str.endswith("neutrino1.h5")]
    np.testing.assert_array_equal(first["index"], np.arange(80))
    meta = open_events(workspace / "raw" / "neutrino1.h5").read_metadata()
    np.testing.assert_array_equal(first["evt"], meta["evt"])
    np.testing.assert_array_equal(first["label"], numu_cc(meta["interaction"]).astype(int))
    np.testing.assert_allclose(first["nuenergy"], meta["nuenergy"], rtol=1e-5)  # CSV keeps 6 digits
    np.testing.assert_array_equal(first["finalstate"], meta["finalstate"])
    np.testing.assert_array_equal(first["flavour"], flavour(meta["interaction"]))
    np.testing.assert_array_equal(table["numu_cc_selected"], (table["numu_cc_score"] >= 0.5).astype(int))
    # the same scores as the library on the same images (batching must not change them)
    model, config = load_model(workspace / "model")
    images = [c.images for c in open_events(workspace / "raw" / "neutrino*.h5").iter_chunks(1000)]
    expected = predict_scores(model, config, images, batch_size=7, device="cpu", progress=False)
    np.testing.assert_allclose(table["numu_cc_score"], expected, atol=1e-5)
    assert ((table["numu_cc_score"] >= 0) & (table["numu_cc_score"] <= 1)).all()
    every = predict(model, config, images, batch_size=7, device="cpu", progress=False)
    np.testing.assert_allclose(table["nuenergy_gev"], every["nuenergy"], rtol=1e-4)
    np.testing.assert_allclose(table[GROUPS[1:6]].to_numpy(), every["flavour"], atol=1e-5)


def test_predict_chosen_tasks(workspace: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.csv"
    res = _nucvn("predict", "--model", str(workspace / "model"), "--files", str(workspace / "raw" / "neutrino1.h5"),
                 "--out", str(out), "--device", "cpu", "--tasks", "nuenergy,mode", "--no-progress")
    assert res.returncode == 0, res.stderr
    assert list(pd.read_csv(out).columns[:15]) == [*IDENTITY, "nuenergy_gev", *GROUPS[6:11], "label", "interaction"]
    res = _nucvn("predict", "--model", str(workspace / "model"), "--files", str(workspace / "raw" / "neutrino1.h5"),
                 "--out", str(out), "--device", "cpu", "--tasks", "nproton", "--no-progress")
    assert res.returncode == 2 and "--tasks" in res.stderr and "nproton" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize(("content", "selected"), [({"threshold": 0.0}, 1), ({"numu_cc": {"threshold": 1.0}}, 0)])
def test_predict_threshold_from_json(workspace: Path, tmp_path: Path, content: dict, selected: int) -> None:
    """The older flat threshold file and the nested one per task are both read."""
    (tmp_path / "threshold.json").write_text(json.dumps(content))
    out = tmp_path / "s.csv"
    res = _nucvn("predict", "--model", str(workspace / "model"), "--files", str(workspace / "raw" / "neutrino1.h5"),
                 "--out", str(out), "--device", "cpu", "--threshold", str(tmp_path / "threshold.json"), "--no-progress")
    assert res.returncode == 0, res.stderr
    table = pd.read_csv(out)
    assert table["numu_cc_selected"].eq(selected).all() and not any(c.startswith("flavour_selected") for c in table)


def test_predict_threshold_file_without_the_task_is_refused(workspace: Path, tmp_path: Path) -> None:
    (tmp_path / "threshold.json").write_text(json.dumps({"other": {"threshold": 0.5}}))
    res = _nucvn("predict", "--model", str(workspace / "model"), "--files", str(workspace / "raw" / "neutrino1.h5"),
                 "--out", str(tmp_path / "s.csv"), "--device", "cpu", "--threshold", str(tmp_path / "threshold.json"))
    assert res.returncode == 2 and "no threshold for task numu_cc" in res.stderr and "Traceback" not in res.stderr


def test_predict_refuses_bad_input(workspace: Path, tmp_path: Path) -> None:
    bad = tmp_path / "neutrino9.h5"
    with h5py.File(bad, "w") as f:
        f.create_dataset("cvnmap", data=np.zeros((3, 16000), np.uint8))
    out = tmp_path / "s.csv"
    res = _nucvn("predict", "--model", str(workspace / "model"), "--files", str(bad), "--out", str(out))
    assert res.returncode == 2 and "neutrino9.h5" in res.stderr and "interaction" in res.stderr
    assert "Traceback" not in res.stderr and not out.exists()
    res = _nucvn("predict", "--model", str(tmp_path / "nomodel"), "--files", str(workspace / "raw" / "neutrino1.h5"),
                 "--out", str(out))
    assert res.returncode == 2 and "model.json" in res.stderr
    res = _nucvn("predict", "--model", str(workspace / "model"), "--files", str(tmp_path / "none*.h5"),
                 "--out", str(out))
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
    res = _nucvn("predict", "--model", str(model), "--files", str(workspace / "raw" / "neutrino1.h5"),
                 "--out", str(out), "--device", "cpu", "--no-progress")
    assert res.returncode == 2 and not out.exists(), res.stderr
    assert f"{weights}: sha256" in res.stderr and "retrain" in res.stderr and "Traceback" not in res.stderr
    stage = subprocess.run([sys.executable, str(REPO / "stages" / "threshold.py"), "--params",
                            str(write_params(tmp_path / "params.yaml")), "--shards", str(workspace / "shards"),
                            "--model-dir", str(model), "--raw", str(workspace / "raw"), "--metrics",
                            str(tmp_path / "t.json"), "--info", str(tmp_path / "i.json"), "--scan",
                            str(tmp_path / "scan.csv"), "--no-progress"],
                           capture_output=True, text=True, timeout=300, cwd=REPO, check=False)
    assert stage.returncode == 2 and f"{weights}: sha256" in stage.stderr and "Traceback" not in stage.stderr
    assert not (tmp_path / "t.json").exists()
