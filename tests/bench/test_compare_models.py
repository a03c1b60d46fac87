"""The comparison recipe (bench/compare_models.py) on tiny data: every named configuration is
trained, thresholded on val and scored on one freshly simulated held-out sample, in one table with
errors and paired differences; trained runs are reused, not retrained."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from trainutil import TINY_TRAIN, make_shards

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "compare_models.py"


def _run(*args: str, cwd: Path) -> str:
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, check=False, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_configurations_are_trained_scored_on_one_held_out_sample_and_tabulated(tmp_path: Path) -> None:
    shards = make_shards(tmp_path / "data", n_per_file=150, files=2, counts=True)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"train": TINY_TRAIN | {"epochs": 1}}))
    (tmp_path / "configs.yaml").write_text(yaml.safe_dump({
        "default": {}, "ema": {"train": {"ema": 0.9}}, "features_gbt": {"baseline": "features_gbt"}}))
    common = ["--shards", str(shards), "--params", "params.yaml", "--configs", "configs.yaml", "--out", "out",
              "--heldout-events", "400", "--heldout-files", "2", "--boot", "20", "--reference", "default"]
    out = _run(*common, cwd=tmp_path)
    assert "held-out sample simulated: 400 events, seed 1001" in out
    rows = {line.split("|")[1].strip(): line for line in out.splitlines()
            if line.startswith("| ") and "---" not in line}
    assert set(rows) == {"run", "default", "ema", "features_gbt"}
    for name in ("default", "ema", "features_gbt"):
        auc = re.search(r"\| (0\.\d{4}) ± (0\.\d{4}) \|", rows[name])
        assert auc is not None and 0 < float(auc.group(2)) < 0.2, rows[name]
    assert re.search(r"[+-]0\.\d{4} ± 0\.\d{4} \([+-]\d+\.\dσ\)", rows["ema"])  # paired difference vs default
    assert "— | —" in rows["default"]

    again = _run(*common, "--run", "default", "--train-events", "60", cwd=tmp_path)
    assert "default: reusing" not in again and "default@60" in again  # a subset is another run
    assert "| 60 |" in again.split("default@60 |")[1].split("\n")[0]
    reused = _run(*common, "--run", "default", cwd=tmp_path)
    assert "default: reusing the model trained with the same parameters" in reused
    added = _run(*common, "--add", "pipeline=out/default/model", cwd=tmp_path)  # an existing model directory
    row = next(line for line in added.splitlines() if line.startswith("| pipeline |"))
    assert row.split("|")[7:9] == rows["default"].split("|")[7:9]  # same weights: same AUC and balanced accuracy
    assert "training" not in added.split("held-out:")[0]
    table = _run(*common, "--table-only", cwd=tmp_path)
    assert table.count("\n| ") >= 4 and "default@60" in table
    assert "learning curve: out/learning_curve_default.png" in table  # default on 60 events and on all
    assert (tmp_path / "out" / "learning_curve_default.png").stat().st_size > 10_000
