"""The GPU readiness check (bench/gpu_check.sh) in its dry mode, as CI can run it: every step of the
GPU run (simulate, preprocess, loader and training at two batch sizes, DDP, predict) runs on the
CPU at tiny sizes and lands in one table with a positive rate, the DDP row says it was skipped,
the temporary directory is removed, and a failing step ends the run with one line naming it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "gpu_check.sh"
STEPS = ["simulate", "preprocess", "loader", "train", "loader", "train", "ddp train", "predict"]


def _run(*args: str, cwd: Path, timeout: int) -> subprocess.CompletedProcess[str]:
    """The wrapper under this interpreter (``PYTHON``), its temporary directory under ``cwd``."""
    env = os.environ | {"PYTHON": sys.executable, "TMPDIR": str(cwd)}
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def _table(stdout: str) -> list[list[str]]:
    """The table's body rows, each as its five cells (the columns fixed and aligned)."""
    lines = [ln for ln in stdout.splitlines() if ln.startswith("|")]
    assert len({len(ln) for ln in lines}) == 1 and set(lines[1]) <= {"|", "-"}, stdout
    lines = [lines[0], *lines[2:]]
    assert [c.strip() for c in lines[0].split("|")[1:-1]] == ["step", "device", "batch", "events/s", "notes"]
    return [[c.strip() for c in ln.split("|")[1:-1]] for ln in lines[1:]]


@pytest.mark.slow
def test_dry_mode_runs_every_step_on_the_cpu_and_prints_one_table(tmp_path: Path) -> None:
    proc = _run("--dry", cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("gpu_check: dry mode")
    rows = _table(proc.stdout)
    assert [r[0] for r in rows] == STEPS
    by_step = {(r[0], r[2]): r for r in rows}
    assert {("loader", "32"), ("loader", "64"), ("train", "32"), ("train", "64")} <= set(by_step)
    for step, device, _batch, rate, notes in rows:
        if step == "ddp train":
            assert rate == "skipped" and notes == "skipped (dry mode)"
            continue
        assert device == "cpu", rows
        assert float(rate.replace(",", "")) > 0, (step, rate)
    for batch in ("32", "64"):
        notes = by_step[("train", batch)][4]
        assert "bf16 autocast off" in notes  # the loop autocasts on CUDA only
        assert re.search(r"channels-last (on|off)", notes), notes
        assert "6 steps" in notes
    assert "test split" in by_step[("predict", "64")][4]
    assert re.search(r"gpu_check: all 8 steps ran in \d+\.\d s", proc.stdout)
    assert not list(tmp_path.glob("gpu_check-*"))  # its temporary directory is gone


def test_a_failing_step_ends_the_run_with_one_line_naming_it(tmp_path: Path) -> None:
    proc = _run("--dry", "--events", "0", cwd=tmp_path, timeout=120)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("gpu_check: FAILED: step 'simulate' failed: "), proc.stderr
    assert "--events must be >= 1" in last
    assert "Traceback" not in proc.stderr
    assert not list(tmp_path.glob("gpu_check-*"))
