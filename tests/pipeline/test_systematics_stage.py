"""stages/systematics.py on tiny data: a tiny trained model, 300 simulated events per sample and two
variations; its outputs, its nominal numbers against scoring the nominal sample here, and its
refusal of bad variations before anything is simulated."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from nucvn.core.events import Flavour
from nucvn.core.params import params_dict, parse_params
from nucvn.data.h5io import open_events
from nucvn.inference import load_model
from nucvn.report.preselection import Preselection
from nucvn.sim.detector_params import SCALABLE_FIELDS
from nucvn.sim.simulate import simulate_files
from nucvn.stage_params import FetchParams, SystematicsParams
from nucvn.study import file_source, score_events
from tiny_pipeline import EVAL_PARAMS, make_model, make_shards, write_params

REPO = Path(__file__).resolve().parents[2]
SYSTEMATICS = {"events": 300, "files": 2, "seed": 1001, "workers": 1, "batch_size": 64, "device": "cpu",
               "variations": {"calibration_up": {"gain_counts_per_pe": 1.3},
                              "noise_up": {"noise_pe": 1.2, "noise_hits_per_view": 2.0}}}

pytestmark = [pytest.mark.slow]


def _stage(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, str(REPO / "stages" / "systematics.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=env, check=False)


def _params(root: Path, systematics: dict[str, Any]) -> Path:
    path = write_params(root / "params.yaml")
    params = yaml.safe_load(path.read_text()) | {"systematics": systematics}
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The stage run once; the threshold is the median score of the nominal sample (scored here),
    so that a response change moves events across it."""
    root = tmp_path_factory.mktemp("systematics")
    model_dir = make_model(root, make_shards(root))
    paths = simulate_files(root / "mine", files=2, events=150, seed=1001, workers=1, progress=False,
                           composition=FetchParams().sim.composition)
    pre = EVAL_PARAMS["evaluate"]["preselection"]
    model, config = load_model(model_dir)
    scored = score_events(model, config, file_source(open_events(paths)), progress=False, batch_size=64, device="cpu",
                          cuts=Preselection(**pre))
    scores = scored.predictions["numu_cc"]
    threshold = float(np.median(scores[scored.preselected]))
    (root / "threshold.json").write_text(json.dumps({"numu_cc": {"threshold": threshold}}))
    params = _params(root, SYSTEMATICS)
    out = root / "out"
    res = _stage(root, "--params", str(params), "--model-dir", str(model_dir),
                 "--threshold", str(root / "threshold.json"), "--metrics", str(out / "metrics.json"),
                 "--info", str(out / "info.json"), "--plots", str(out / "plots"),
                 "--work", str(root / "data" / "systematics.tmp"), "--no-progress")
    assert res.returncode == 0, res.stderr
    return {"root": root, "out": out, "stdout": res.stdout, "scored": scored, "threshold": threshold,
            "model_dir": model_dir}


def test_outputs_are_written_and_the_work_dir_removed(run: dict[str, Any]) -> None:
    out = run["out"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics) == ["nominal", "calibration_up", "noise_up"]
    for name in ("calibration_up", "noise_up"):
        for q in ("efficiency", "purity", "nc_misid"):
            assert {f"{q}_shift", f"{q}_shift_err", f"{q}_shift_nsigma"} <= set(metrics[name])
    info = json.loads((out / "info.json").read_text())
    assert info["events"] == 300 and info["seed"] == 1001 and info["threshold"] == pytest.approx(run["threshold"])
    assert info["variations"]["calibration_up"]["factors"] == {"gain_counts_per_pe": 1.3}
    assert info["nominal"]["counts"]["n_events"] == 300 and info["nominal"]["preselected"]["events"] > 0
    table = pd.read_csv(out / "plots" / "shifts.csv")
    assert list(table["variation"]) == ["calibration_up", "noise_up"]
    assert table.loc[0, "label"] == "calibration up: gain +30 %"
    assert (out / "plots" / "shifts.png").stat().st_size > 10_000
    assert not (run["root"] / "data" / "systematics.tmp").exists()
    assert "systematics calibration_up: Δefficiency" in run["stdout"]


def test_nominal_efficiency_equals_scoring_the_nominal_sample(run: dict[str, Any]) -> None:
    scored = run["scored"]
    sel = scored.preselected & (scored.predictions["numu_cc"] >= run["threshold"])
    sig = scored.meta["numu_cc"].to_numpy().astype(bool)
    nc = scored.meta["flavour"].to_numpy() == int(Flavour.NC)
    nominal = json.loads((run["out"] / "metrics.json").read_text())["nominal"]
    assert nominal["efficiency"] == pytest.approx((sel & sig).sum() / sig.sum())
    assert nominal["purity"] == pytest.approx((sel & sig).sum() / sel.sum())
    assert nominal["nc_misid"] == pytest.approx((sel & nc).sum() / nc.sum())
    assert nominal["efficiency_lo"] < nominal["efficiency"] < nominal["efficiency_hi"]


def test_calibration_shift_is_measured_with_a_finite_error(run: dict[str, Any]) -> None:
    block = json.loads((run["out"] / "metrics.json").read_text())["calibration_up"]
    assert block["efficiency_shift"] != 0
    assert 0 < block["efficiency_shift_err"] < 0.2 and math.isfinite(block["efficiency_shift_err"])
    flips = json.loads((run["out"] / "info.json").read_text())["variations"]["calibration_up"]["flipped"]["signal"]
    assert flips["selected_only_varied"] + flips["selected_only_nominal"] > 0


@pytest.mark.parametrize(("variation", "message"), [
    ({"gain_count_per_pe": 1.05}, ("systematics.variations.bad.gain_count_per_pe: is not a DetectorParams field "
                                   "(did you mean 'gain_counts_per_pe'?)")),
    ({"saturation_counts": 1.1}, "systematics.variations.bad.saturation_counts: is an integer field"),
    ({"noise_pe": 0}, "systematics.variations.bad.noise_pe: the factor must be a finite number > 0, got 0.0"),
], ids=["unknown-field", "integer-field", "zero-factor"])
def test_a_bad_variation_stops_the_stage_in_one_line(tmp_path: Path, variation: dict[str, float], message: str) -> None:
    """Exit 2, one line naming the key, before the model is read (there is none) or anything simulated."""
    params = _params(tmp_path, SYSTEMATICS | {"variations": {"noise_up": {"noise_pe": 1.2}, "bad": variation}})
    res = _stage(tmp_path, "--params", str(params), "--model-dir", str(tmp_path / "no-model"),
                 "--threshold", str(tmp_path / "no-threshold.json"), "--work", str(tmp_path / "work"), "--no-progress")
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bins.yaml", "params.yaml"]


def test_params_yaml_section_equals_the_typed_defaults() -> None:
    """params.yaml repeats SystematicsParams' defaults; every default factor scales a real float
    field, and the light-yield variations keep counts per MIP (the calibration is redone)."""
    section = yaml.safe_load((REPO / "params.yaml").read_text())["systematics"]
    assert params_dict(parse_params(SystematicsParams, section, "systematics")) == params_dict(SystematicsParams())
    variations = SystematicsParams().variations
    assert all(f in SCALABLE_FIELDS for factors in variations.values() for f in factors)
    for name in ("light_yield_up", "light_yield_down"):
        f = variations[name]
        assert f["pe_per_mip_far"] * f["gain_counts_per_pe"] == pytest.approx(1.0, abs=1e-4)
