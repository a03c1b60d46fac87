"""Typed stage parameters: one definition per stage holds the defaults, and every wrong value is
refused with one line that names its key (nucvn.core.params, nucvn.stage_params, stages/_stage.py)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from nucvn.core.params import ParamsError, params_dict, parse_params
from nucvn.stage_params import DEFAULT_BINS, EvaluateParams, FetchParams, PreprocessParams, ThresholdParams
from nucvn.train import TrainConfig
from tiny_pipeline import make_shards

REPO = Path(__file__).resolve().parents[2]
SECTIONS: dict[str, Any] = {"fetch": FetchParams, "preprocess": PreprocessParams, "train": TrainConfig,
                            "threshold": ThresholdParams, "evaluate": EvaluateParams}


def _project_params() -> dict[str, Any]:
    return yaml.safe_load((REPO / "params.yaml").read_text())


@pytest.mark.parametrize("section", list(SECTIONS))
def test_params_yaml_equals_the_typed_defaults(section: str) -> None:
    """params.yaml is the embedded default: every section parses and equals its dataclass's defaults,
    so the defaults are written once (the dataclass) and repeated, never contradicted, in the file."""
    cls = SECTIONS[section]
    parsed = parse_params(cls, _project_params()[section], section)
    assert params_dict(parsed) == params_dict(cls())


def test_bins_yaml_equals_default_bins() -> None:
    assert yaml.safe_load((REPO / "bins.yaml").read_text()) == DEFAULT_BINS
    assert "bins" not in _project_params()["evaluate"]


@pytest.mark.parametrize(("cls", "section", "values", "message"), [
    (TrainConfig, "train", {"epochs": "two"}, r"train\.epochs: expected an integer, got 'two'"),
    (TrainConfig, "train", {"lr": "fast"}, r"train\.lr: expected a number"),
    (TrainConfig, "train", {"augment": "yes"}, r"train\.augment: expected true or false"),
    (PreprocessParams, "preprocess", {"split": 0.8}, r"preprocess\.split: expected a mapping"),
    (PreprocessParams, "preprocess", {"selection": {"drop_interactions": [15, 99]}},
     r"preprocess\.selection\.drop_interactions\[1\]: must be <= 15"),
    (ThresholdParams, "threshold", {"points": "many"}, r"threshold\.points: expected an integer, got 'many'"),
    (ThresholdParams, "threshold", {"criterion": "best"}, r"threshold\.criterion: expected one of 'balanced_accuracy'"),
    (ThresholdParams, "threshold", {"points": 1}, r"threshold\.points: must be >= 2"),
    (FetchParams, "fetch", {"sim": {"files": 0}}, r"fetch\.sim\.files: must be >= 1, got 0"),
    (FetchParams, "fetch", {"source": "ftp"}, r"fetch\.source: expected one of 'sim', 'url', 'dir'"),
    (FetchParams, "fetch", {"url": {"timout": 5}},
     r"fetch\.url\.timout: unknown parameter \(did you mean 'timeout'\?\)"),
    (EvaluateParams, "evaluate", {"score_bins": 2.5}, r"evaluate\.score_bins: expected an integer, got 2\.5"),
])
def test_wrong_values_are_refused_naming_the_key(cls: Any, section: str, values: dict[str, Any], message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        parse_params(cls, values, section)


def test_missing_keys_take_defaults_and_ints_are_accepted_as_floats() -> None:
    p = parse_params(FetchParams, {"url": {"timeout": 5}}, "fetch")
    assert p.url.timeout == 5.0 and isinstance(p.url.timeout, float)
    assert p.sim == FetchParams().sim
    assert dataclasses.replace(p, url=FetchParams().url) == FetchParams()


def _stage(script: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, str(REPO / "stages" / script), *args], cwd=cwd, check=False,
                          capture_output=True,
                          text=True, timeout=300, env=env)


@pytest.mark.parametrize(("script", "section", "values", "key"), [
    ("train.py", "train", {"epochs": "two"}, "train.epochs"),
    ("preprocess.py", "preprocess", {"split": 0.8}, "preprocess.split"),
    ("threshold.py", "threshold", {"points": "many"}, "threshold.points"),
    ("fetch.py", "fetch", {"sim": {"files": 0}}, "fetch.sim.files"),
    ("evaluate.py", "evaluate", {"misid_variables": 3}, "evaluate.misid_variables"),
])
def test_stage_reports_a_bad_param_in_one_line(tmp_path: Path, script: str, section: str, values: dict[str, Any],
                                               key: str) -> None:
    """Run as DVC runs it (from the project root, reading params.yaml): one line, exit 2, no traceback,
    and nothing read or written before the check."""
    params = _project_params()
    params[section].update(values)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    res = _stage(script, tmp_path)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and f"params.yaml: {key}" in lines[0], res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_evaluate_refuses_unknown_bins_variable_before_scoring(tmp_path: Path) -> None:
    """An unknown variable in bins.yaml stops the stage before the model is even loaded (there is none)."""
    shards = make_shards(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"evaluate": params_dict(EvaluateParams())}))
    (tmp_path / "bins.yaml").write_text(yaml.safe_dump(DEFAULT_BINS | {"muon_angle": [0, 1, 2]}))
    (tmp_path / "threshold.json").write_text('{"threshold": 0.5}')
    res = _stage("evaluate.py", tmp_path, "--shards", str(shards), "--model-dir", str(tmp_path / "no-model"),
                 "--threshold", str(tmp_path / "threshold.json"), "--no-progress")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "bins.yaml: unknown variable 'muon_angle'" in res.stderr
    (tmp_path / "bins.yaml").write_text(yaml.safe_dump({"nuenergy": [0, 5, 80], "visible_energy": [0, 5, 80]}))
    res = _stage("evaluate.py", tmp_path, "--shards", str(shards), "--model-dir", str(tmp_path / "no-model"),
                 "--threshold", str(tmp_path / "threshold.json"), "--no-progress")
    assert res.returncode == 2 and "bins.yaml" not in res.stderr and "no-model" in res.stderr, res.stderr


def test_a_training_override_cannot_spread_long_lists_over_params_yaml() -> None:
    """`dvc exp run -S train.x=...` rewrites params.yaml and writes every list one item per line.
    The long lists (binnings) therefore live in bins.yaml; params.yaml keeps only short ones."""

    def lists(node: Any, key: str = "") -> list[tuple[str, int]]:
        if isinstance(node, dict):
            return [x for k, v in node.items() for x in lists(v, f"{key}.{k}".strip("."))]
        return [(key, len(node))] if isinstance(node, list) else []

    long = [(k, n) for k, n in lists(_project_params()) if n > 3]
    assert not long, f"params.yaml lists that a -S would spread over many lines: {long}"
