"""`python -m nucvn evaluate`: the evaluate stage's numbers and plots for any set of event files."""

from __future__ import annotations

import json
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


def _nucvn(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nucvn", *args], capture_output=True, text=True, timeout=300, cwd=cwd,
                          check=False)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("evaluate")
    make_model(root, make_shards(root, files=2, events=100))
    write_params(root / "params.yaml")
    return root


def test_evaluate_files_gives_the_stage_outputs(workspace: Path) -> None:
    out = workspace / "report"
    files = str(workspace / "raw" / "neutrino*.h5")
    res = _nucvn("evaluate", "--model", str(workspace / "model"), "--files", files, "--out", str(out),
                 "--threshold", "0.4", "--params", str(workspace / "params.yaml"), "--bins",
                 str(workspace / "bins.yaml"),
                 "--device", "cpu", "--no-progress")
    assert res.returncode == 0, res.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    info = json.loads((out / "info.json").read_text())
    assert info["n_events"] == 200 and info["thresholds"] == {"numu_cc": 0.4} and len(info["files"]) == 2
    # the numbers are those of the model's scores on exactly these files
    model, config = load_model(workspace / "model")
    reader = open_events(files)
    scores = predict_scores(model, config, [c.images for c in reader.iter_chunks(64)], device="cpu", progress=False)
    y = numu_cc(reader.read_metadata(["interaction"])["interaction"])
    sel = scores >= 0.4
    block = metrics["numu_cc"]
    assert block["efficiency"] == pytest.approx(np.sum(sel & y) / y.sum(), abs=1e-6)
    assert block["purity"] == pytest.approx(np.sum(sel & y) / max(sel.sum(), 1), abs=1e-6)
    assert block["efficiency_lo"] <= block["efficiency"] <= block["efficiency_hi"] and block["auc_err"] > 0
    assert {"preselected"} <= set(block) and "efficiency" in metrics["preselection"]
    assert set(metrics) >= {"numu_cc", "flavour", "nuenergy", "preselection"}
    pred = pd.read_csv(out / "predictions.csv")
    assert len(pred) == 200
    assert {"numu_cc_score", "preselected", "visible_energy", "nuenergy", "flavour"} <= set(pred.columns)
    np.testing.assert_allclose(pred["numu_cc_score"], scores, atol=1e-5)
    for rel in ("numu_cc/roc.csv", "numu_cc/misid_vs_visible_energy.csv", "numu_cc/preselected/eff_vs_nuenergy.csv",
                "numu_cc/png/roc.png", "preselection/by_category.csv", "preselection/png/vs_nuenergy.png",
                "flavour/confusion.csv"):
        assert (out / "plots" / rel).is_file(), rel


def test_evaluate_refuses_a_missing_threshold_in_one_line(workspace: Path, tmp_path: Path) -> None:
    res = _nucvn("evaluate", "--model", str(workspace / "model"), "--files", str(workspace / "raw" / "neutrino1.h5"),
                 "--out", str(tmp_path / "r"), "--device", "cpu", "--no-progress", cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "metrics/threshold.json" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_evaluate_files_with_only_the_required_keys(workspace: Path, tmp_path: Path) -> None:
    """Files holding only cvnmap and neutrino/{interaction,nuenergy,lepenergy} (what every user of
    the real files relies on): no vertex, so no fiducial cut; no particle counts, so those tasks are
    predicted but not evaluated; everything else as usual."""
    with h5py.File(workspace / "raw" / "neutrino1.h5", "r") as src, h5py.File(tmp_path / "neutrino1.h5", "w") as dst:
        dst["cvnmap"] = src["cvnmap"][:]
        for key in ("interaction", "nuenergy", "lepenergy"):
            dst[f"neutrino/{key}"] = src[f"neutrino/{key}"][:]
    out = tmp_path / "report"
    res = _nucvn("evaluate", "--model", str(workspace / "model"), "--files", str(tmp_path / "neutrino1.h5"), "--out",
                 str(out), "--threshold", "0.5", "--params", str(workspace / "params.yaml"), "--bins",
                 str(workspace / "bins.yaml"), "--device", "cpu", "--no-progress")
    assert res.returncode == 0, res.stderr
    info = json.loads((out / "info.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert "not applied" in info["preselection"]["cuts"]["fiducial_cm"]
    model = json.loads((workspace / "model" / "model.json").read_text())
    counts = {t["name"] for t in model["tasks"]} & {"nproton", "npion", "npizero"}
    assert set(info.get("not_evaluated", {})) == counts and not counts & set(metrics)
    assert {"numu_cc", "flavour", "nuenergy"} <= set(metrics) and metrics["numu_cc"]["auc_err"] > 0
    pred = pd.read_csv(out / "predictions.csv")
    assert len(pred) == 100 and "vtxx" not in pred.columns
