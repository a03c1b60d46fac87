"""The whole pipeline under `dvc repro` with every task, on a tiny simulation, in a temporary copy
of the repository: one multi-task model, a metrics block and a plots folder per task, dvc.yaml's
`plots:` in step with what the stages write, and `-S 'train.tasks=[numu_cc]'` rerunning from
train only (so the single-task and multi-task models compare with `dvc metrics diff`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dvc_repo import make_repo, run
from nucvn.tasks import list_tasks

pytestmark = [pytest.mark.pipeline, pytest.mark.slow, pytest.mark.timeout(1200)]

REPO = Path(__file__).resolve().parents[2]

_run = run


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_repo(tmp_path_factory.mktemp("tasks"))


def _plotted_csvs(repo: Path) -> set[str]:
    """Every CSV that dvc.yaml's plots (top level and stage plots) draw."""
    spec = yaml.safe_load((repo / "dvc.yaml").read_text())
    out: set[str] = set()
    for entry in spec.get("plots", []):
        if isinstance(entry, str):
            if entry.endswith(".csv"):
                out.add(entry)
            continue
        (_, props), = entry.items()
        ys = (props or {}).get("y")
        if isinstance(ys, dict):
            out.update(ys)
    for stage in spec["stages"].values():
        for entry in stage.get("plots", []):
            path = next(iter(entry)) if isinstance(entry, dict) else entry
            if path.endswith(".csv"):  # not the train stage's DVCLive TSVs (dvclive/plots)
                out.add(path)
    return out


def test_all_tasks_repro_plots_in_step_and_single_task_rerun(repo: Path) -> None:
    out = _run(repo, "repro")
    for stage in ("fetch", "preprocess", "train", "threshold", "evaluate", "systematics"):
        assert f"Running stage '{stage}'" in out
    model = json.loads((repo / "data" / "model" / "model.json").read_text())
    names = [t["name"] for t in model["tasks"]]
    assert sorted(names) == sorted(list_tasks())  # simulated files carry every task's truth
    test = json.loads((repo / "metrics" / "test.json").read_text())
    assert sorted(test) == sorted([*names, "preselection"])
    assert {"auc", "balanced_accuracy", "efficiency_lo"} <= set(test["numu_cc"])
    syst = json.loads((repo / "metrics" / "systematics.json").read_text())
    assert set(syst) == {"nominal", "calibration_up", "noise_up"}
    assert {"efficiency_shift", "efficiency_shift_err", "nc_misid_shift", "purity_shift_err"} <= set(syst["noise_up"])
    for name in names:
        folder = repo / "plots" / "evaluate" / name
        assert any(folder.glob("*.csv")) and any((folder / "png").glob("*.png")), name

    written = {str(p.relative_to(repo)) for p in (repo / "plots").rglob("*.csv")}
    plotted = _plotted_csvs(repo)
    assert written - plotted == set(), "CSV written by a stage but not plotted in dvc.yaml"
    assert plotted - written == set(), "CSV plotted in dvc.yaml but not written by the stages"

    exp = _run(repo, "exp", "run", "-S", "train.tasks=[numu_cc]")
    assert "Running stage 'train'" in exp and "Running stage 'evaluate'" in exp
    assert "Running stage 'fetch'" not in exp and "Running stage 'preprocess'" not in exp
    single = json.loads((repo / "metrics" / "test.json").read_text())
    assert list(single) == ["numu_cc", "preselection"]
    diff = _run(repo, "metrics", "diff", "--json")
    assert "numu_cc.auc" in diff


def _readme_gpu_settings() -> list[str]:
    """The ``-S key=value`` settings of README's GPU-sized run (the block after ``<!-- gpu-run -->``)."""
    text = (REPO / "README.md").read_text()
    block = text.split("<!-- gpu-run -->", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    tokens = block.replace("\\\n", " ").split()
    return [tokens[i + 1] for i, t in enumerate(tokens) if t == "-S"]


def test_readme_gpu_configuration_runs_on_tiny_data_on_the_cpu(repo: Path) -> None:
    """README's GPU-sized `dvc exp run` settings, with the data kept tiny (no fetch settings), the
    devices set to cpu, one epoch and no loader processes: every setting is accepted and trains."""
    settings = _readme_gpu_settings()
    keys = {s.split("=", 1)[0] for s in settings}
    assert {"train.model_kwargs.cvn2v.width", "train.epochs", "train.device", "fetch.source"} <= keys
    on_cpu = {"train.device": "cpu", "threshold.device": "cpu", "evaluate.device": "cpu", "train.epochs": "1",
              "train.workers": "0"}
    args: list[str] = []
    for s in settings:
        key, value = s.split("=", 1)
        if not key.startswith("fetch."):
            args += ["-S", f"{key}={on_cpu.get(key, value)}"]
    _run(repo, "repro")  # the default pipeline first (cached after the test above)
    out = _run(repo, "exp", "run", *args)
    assert "Running stage 'train'" in out and "Running stage 'evaluate'" in out
    model = json.loads((repo / "data" / "model" / "model.json").read_text())
    readme = dict(s.split("=", 1) for s in settings)
    assert model["model_kwargs"]["width"] == int(readme["train.model_kwargs.cvn2v.width"])
    assert model["model_kwargs"]["se"] is True
    assert model["train_params"]["ema"] == float(readme["train.ema"])
    assert model["train_params"]["batch_size"] == int(readme["train.batch_size"])
