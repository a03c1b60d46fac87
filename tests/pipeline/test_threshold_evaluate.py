"""The threshold and evaluate stages under `dvc repro`, on tiny shards and a tiny trained model.

A throw-away DVC repository holds this project's definitions of the two stages (copied from
dvc.yaml with their code deps), the pipeline's data layout (data/raw, data/shards, data/model made
by the real library code) and small params. Checks: the outputs and their contents, that a second
`dvc repro` is a no-op, that changing threshold.criterion reruns exactly threshold and evaluate,
and that the threshold stage never reads the test split.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from nucvn.data.shards import ShardDataset
from tiny_pipeline import EVAL_PARAMS, make_model, make_shards, write_params

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STAGES = ("threshold", "evaluate")

pytestmark = [pytest.mark.pipeline, pytest.mark.slow]


def _run(cmd: list[str], cwd: Path) -> str:
    env = os.environ | {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600, env=env, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("dvc") / "repo"
    repo.mkdir()
    _run(["git", "init", "-q"], repo)
    _run(["git", "config", "user.name", "nucvn tests"], repo)
    _run(["git", "config", "user.email", "tests@nucvn.invalid"], repo)
    _run([str(BIN / "dvc"), "init", "-q"], repo)
    full = yaml.safe_load((REPO / "dvc.yaml").read_text())
    stages = {name: full["stages"][name] for name in STAGES}
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    for stage in stages.values():
        for dep in stage["deps"]:
            src = REPO / dep
            if dep.startswith(("src/", "stages/")):
                (repo / dep).parent.mkdir(parents=True, exist_ok=True)
                if src.is_dir():
                    shutil.copytree(src, repo / dep, dirs_exist_ok=True)
                else:
                    shutil.copy(src, repo / dep)
    shards = make_shards(repo / "data")
    make_model(repo / "data", shards)
    write_params(repo / "params.yaml")
    return repo


def test_params_sections_match_the_project() -> None:
    project = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in EVAL_PARAMS.items():
        assert set(project[section]) == set(values), f"params.yaml {section}: keys differ from what the stages read"
    deps = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["threshold"]["deps"]
    assert not any("test" in d for d in deps)  # the threshold is never chosen on the test split


def test_repro_outputs_noop_and_partial_rerun(repo: Path) -> None:
    dvc = str(BIN / "dvc")
    out = _run([dvc, "repro", "evaluate"], repo)
    assert "Running stage 'threshold'" in out and "Running stage 'evaluate'" in out
    thr = json.loads((repo / "metrics" / "threshold.json").read_text())["numu_cc"]
    thr_all = json.loads((repo / "info" / "threshold.json").read_text())
    thr_info = thr_all["numu_cc"] | {"data_source": thr_all["data_source"]}
    assert thr_info["criterion"] == "balanced_accuracy" and thr_info["split"] == "val"
    assert thr_info["data_source"] == "sim"
    assert thr_info["n_val"] == len(ShardDataset(repo / "data" / "shards", "val"))
    assert set(thr) == {"threshold", "efficiency", "purity", "balanced_accuracy", "fom", "background_rejection"}
    scan = pd.read_csv(repo / "plots" / "threshold" / "numu_cc.csv")
    assert {"threshold", "efficiency", "purity", "balanced_accuracy", "fom"} <= set(scan.columns) and len(scan) == 101
    assert thr["balanced_accuracy"] == pytest.approx(scan["balanced_accuracy"].max(), abs=1e-9)
    test = json.loads((repo / "metrics" / "test.json").read_text())["numu_cc"]
    info_all = json.loads((repo / "info" / "test.json").read_text())
    info = info_all["numu_cc"] | {k: info_all[k] for k in ("model", "data_source", "n_test")}
    quality = {"auc", "auc_err", "accuracy", "accuracy_lo", "accuracy_hi", "balanced_accuracy", "balanced_accuracy_err",
               "efficiency", "efficiency_lo", "efficiency_hi", "purity", "purity_lo", "purity_hi",
               "background_rejection",
               "background_rejection_lo", "background_rejection_hi", "fom", "fom_err"}
    assert set(test) == quality | {"preselected"}  # quality only, each headline number with its error: dvc exp show
    assert 0 < test["auc_err"] < 0.2 and 0 < test["balanced_accuracy_err"] < 0.2 and 0 < test["fom_err"] < 0.3
    presel = test.pop("preselected")
    assert set(presel) == quality
    assert all(isinstance(v, float) for v in test.values())
    assert info["threshold"] == thr["threshold"] and info["model"] == "cvn2v" and info["data_source"] == "sim"
    test |= info
    n_test = len(ShardDataset(repo / "data" / "shards", "test"))
    pred = pd.read_csv(repo / "data" / "predictions" / "test.csv")
    assert len(pred) == test["n_test"] == n_test and pred["numu_cc"].sum() == test["n_signal"]
    expected = {"file", "index", "run", "evt", "numu_cc_score", "numu_cc", "nhits", "nuenergy", "interaction"}
    assert expected <= set(pred.columns)
    sel = pred["numu_cc_score"] >= thr["threshold"]
    assert test["efficiency"] == pytest.approx((sel & (pred["numu_cc"] == 1)).sum() / pred["numu_cc"].sum())
    # the preselected block is the same study on the events the preselection keeps, and the
    # preselection block says how many of each category it kept
    kept = pred[pred["preselected"] == 1]
    fiducial = pred["vtxx"].abs().le(700) & pred["vtxy"].abs().le(700) & pred["vtxz"].between(100, 5700)
    assert ((pred["preselected"] == 1) == (fiducial & (pred["nhits"] >= 15))).all()  # containment off here
    assert 0 < len(kept) < len(pred)
    ksel, ksig = kept["numu_cc_score"] >= thr["threshold"], kept["numu_cc"] == 1
    assert presel["efficiency"] == pytest.approx((ksel & ksig).sum() / ksig.sum())
    block = json.loads((repo / "metrics" / "test.json").read_text())["preselection"]
    sig = pred["numu_cc"] == 1
    assert block["efficiency"] == pytest.approx(ksig.sum() / sig.sum())
    assert block["efficiency_lo"] < block["efficiency"] <= block["efficiency_hi"]
    model = json.loads((repo / "data" / "model" / "model.json").read_text())
    assert model["visible_energy"]["fitted_on"] == "train split" and model["visible_energy"]["slope"] != 0
    assert (pred["visible_energy"] >= 0).all() and pred["visible_energy"].nunique() > 10
    files = {p.name for p in (repo / "plots" / "evaluate" / "numu_cc").iterdir()}
    assert {"roc.csv", "scores.csv", "confusion.csv", "eff_by_mode.csv", "eff_by_finalstate.csv",
            "misid_vs_nuenergy.csv",
            "eff_vs_nuenergy.csv", "eff_vs_nhits.csv", "eff_vs_inelasticity.csv", "png"} <= files
    pngs = {p.stem for p in (repo / "plots" / "evaluate" / "numu_cc" / "png").glob("*.png")}
    assert {"roc", "scores", "confusion", "eff_vs_lepenergy", "misid_vs_nuenergy", "wrong_events"} <= pngs

    again = _run([dvc, "repro"], repo)
    assert "Running stage" not in again

    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["threshold"]["criterion"] = "fom"
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    rerun = _run([dvc, "repro"], repo)
    assert "Running stage 'threshold'" in rerun and "Running stage 'train'" not in rerun
    assert json.loads((repo / "info" / "threshold.json").read_text())["numu_cc"]["criterion"] == "fom"
    fom = json.loads((repo / "metrics" / "threshold.json").read_text())["numu_cc"]["threshold"]
    # evaluate reruns exactly when the chosen threshold moved (the criterion itself is bookkeeping)
    assert ("Running stage 'evaluate'" in rerun) == (fom != thr["threshold"])
    assert json.loads((repo / "info" / "test.json").read_text())["numu_cc"]["threshold"] == fom


def test_threshold_never_reads_the_test_split(repo: Path, tmp_path: Path) -> None:
    shards = tmp_path / "shards"
    shutil.copytree(repo / "data" / "shards", shards)
    for f in (shards / "test").iterdir():
        f.write_bytes(b"not a shard")  # any read of the test split would fail
    params = write_params(tmp_path / "params.yaml")
    metrics = tmp_path / "threshold.json"
    _run([sys.executable, str(REPO / "stages" / "threshold.py"), "--params", str(params), "--shards", str(shards),
          "--model-dir", str(repo / "data" / "model"), "--raw", str(repo / "data" / "raw"), "--metrics", str(metrics),
          "--scans", str(tmp_path / "scans"), "--no-progress"], tmp_path)
    chosen = json.loads(metrics.read_text())["numu_cc"]
    assert 0.0 <= chosen["threshold"] <= 1.0 and np.isfinite(chosen["efficiency"])
