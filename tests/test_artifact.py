"""The model directory format: one writer, one reader, the weights' sha256 checked on every read,
the tasks and loss weighting recorded, older single-task formats refused."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path

import pytest
import safetensors.torch
import torch

from nucvn.artifact import FORMAT_VERSION, MODEL_FORMAT, read_model_dir, write_model_dir
from nucvn.core.errors import NucvnError
from nucvn.tasks import build_network, create_tasks

TASKS = create_tasks(["numu_cc", "flavour", "nuenergy"])
LOSS = {"weighting": "fixed", "weights": {"numu_cc": 1.0, "flavour": 0.5, "nuenergy": 0.5}, "log_variances": None}


def _write(model_dir: Path) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    state = build_network("cvn2v", {"width": 2, "head": 4}, TASKS).state_dict()
    write_model_dir(model_dir, state, model="cvn2v", model_kwargs={"width": 2, "head": 4},
                    tasks=[t.describe() for t in TASKS], loss=LOSS, scale="log1p", record={"note": {"name": "test"}})
    return state


def _flip(path: Path, n: int = 256) -> None:
    """Invert ``n`` bytes inside the tensor data (after the JSON header): same size, still parses."""
    raw = bytearray(path.read_bytes())
    start = 8 + int.from_bytes(raw[:8], "little") + 64
    raw[start : start + n] = bytes(b ^ 0xFF for b in raw[start : start + n])
    path.write_bytes(bytes(raw))


def test_round_trip_records_the_weights_hash(tmp_path: Path) -> None:
    state = _write(tmp_path)
    loaded, config = read_model_dir(tmp_path)
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)
    assert config["format"] == MODEL_FORMAT and config["version"] == FORMAT_VERSION == 3
    assert config["model_kwargs"] == {"width": 2, "head": 4} and config["note"] == {"name": "test"}
    assert [t["name"] for t in config["tasks"]] == ["numu_cc", "flavour", "nuenergy"] and config["loss"] == LOSS
    numu, flavour, energy = config["tasks"]
    assert numu["kind"] == "binary" and numu["classes"] == ["not numu_cc", "numu_cc"]
    assert numu["prediction_columns"] == ["numu_cc_score"] and "interaction in {0,1,2,3}" in numu["definition"]
    assert flavour["classes"] == ["numu_cc", "nue_cc", "nutau_cc", "nc", "cosmic"]
    assert energy["unit"] == "GeV" and energy["prediction_columns"] == ["nuenergy_gev"] and energy["head"]
    raw = (tmp_path / "model.safetensors").read_bytes()
    assert config["weights"] == {"file": "model.safetensors", "bytes": len(raw),
                                 "sha256": hashlib.sha256(raw).hexdigest()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.safetensors"]


def test_flipped_bytes_are_refused(tmp_path: Path) -> None:
    _write(tmp_path)
    weights = tmp_path / "model.safetensors"
    size = weights.stat().st_size
    _flip(weights)
    assert weights.stat().st_size == size
    safetensors.torch.load_file(str(weights))  # still a valid file: only the hash can tell
    with pytest.raises(NucvnError) as err:
        read_model_dir(tmp_path)
    message = str(err.value)
    assert message.startswith(f"{weights}: sha256") and "model.json" in message and "retrain" in message
    assert "\n" not in message


def test_a_model_without_recorded_hash_is_refused(tmp_path: Path) -> None:
    _write(tmp_path)
    config = json.loads((tmp_path / "model.json").read_text())
    del config["weights"]
    (tmp_path / "model.json").write_text(json.dumps(config | {"version": 1}))
    with pytest.raises(NucvnError, match=r"model\.json: records no sha256 of model\.safetensors .*retrain"):
        read_model_dir(tmp_path)


@pytest.mark.parametrize("version", [2, 3])
def test_an_older_single_task_model_is_refused(tmp_path: Path, version: int) -> None:
    """Format 2 had one numu CC logit and no task heads: reading it says to retrain."""
    _write(tmp_path)
    config = json.loads((tmp_path / "model.json").read_text())
    del config["tasks"], config["loss"]
    (tmp_path / "model.json").write_text(json.dumps(config | {"version": version}))
    with pytest.raises(NucvnError) as err:
        read_model_dir(tmp_path)
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'model.json'}: format version {version}") and "retrain" in message
    assert "\n" not in message


def test_a_task_entry_must_be_complete(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="lacks kind"):
        write_model_dir(tmp_path, {}, model="cvn2v", model_kwargs={}, tasks=[{"name": "numu_cc"}], loss=LOSS,
                        scale="log1p", record={})


def test_full_disk_names_the_weights_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(self: Path, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(NucvnError) as err:
        _write(tmp_path / "model")
    assert str(err.value).startswith(f"{tmp_path / 'model' / 'model.safetensors'}: no space left on device")
    assert not list((tmp_path / "model").iterdir())  # no temporary file left
