"""The DVCLive history (nucvn.train.live): metric names grouped per task, the best-so-far summary,
and a training run that reaches for no network even with a DVC Studio token configured."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from nucvn.data.shards import ShardDataset
from nucvn.tasks import create_tasks
from nucvn.train import TrainConfig, train
from nucvn.train.live import OFFLINE_ENV, TrainLive, live_name
from trainutil import TINY_TRAIN, make_shards

STUDIO = {"DVC_STUDIO_TOKEN": "isat_nucvn_test", "DVC_STUDIO_REPO_URL": "https://git.nucvn.invalid/nucvn.git",
          "DVC_STUDIO_URL": "https://studio.nucvn.invalid"}
"""A DVC Studio configuration as a user might have one: DVCLive would post live metrics with it."""


def test_history_columns_are_grouped_per_task() -> None:
    tasks = create_tasks(["numu_cc", "nuenergy", "npion", "npizero"])
    assert live_name("numu_cc_val_auc", tasks) == "numu_cc/val_auc"
    assert live_name("nuenergy_log_variance", tasks) == "nuenergy/log_variance"
    assert live_name("npizero_train_loss", tasks) == "npizero/train_loss"
    assert live_name("npion_val_accuracy", tasks) == "npion/val_accuracy"
    assert live_name("total_val_loss", tasks) == "total/val_loss"
    assert live_name("train_events_per_s", tasks) == "train_events_per_s"
    for alias in ("epoch", "train_loss", "val_loss", "val_auc", "val_balanced_accuracy"):  # the step, numu_cc/...
        assert live_name(alias, tasks) is None, alias


def _row(epoch: int, total: float, auc: float) -> dict[str, float]:
    return {"epoch": float(epoch), "train_loss": 0.5, "val_loss": total, "val_auc": auc, "val_accuracy": 0.5,
            "val_balanced_accuracy": 0.5, "total_train_loss": 0.5, "total_val_loss": total, "numu_cc_train_loss": 0.5,
            "numu_cc_val_loss": total, "numu_cc_val_auc": auc, "numu_cc_val_accuracy": 0.5,
            "numu_cc_val_balanced_accuracy": 0.5, "train_events_per_s": 100.0}


def test_summary_is_the_best_epoch_so_far(tmp_path: Path) -> None:
    """metrics.json after every epoch: the epoch of lowest total_val_loss (the first of equals), as
    the loop chooses it, with DVCLive's step the last epoch logged."""
    live = TrainLive(tmp_path / "live", TrainConfig(tasks=["numu_cc"]), create_tasks(["numu_cc"]))
    metrics = tmp_path / "live" / "metrics.json"
    for epoch, total, auc, best in [(1, 0.6, 0.7, 1), (2, 0.4, 0.8, 2), (3, 0.5, 0.9, 2), (4, 0.4, 0.95, 2)]:
        live.log_epoch(_row(epoch, total, auc))
        summary = json.loads(metrics.read_text())
        assert (summary["best_epoch"], summary["step"]) == (best, epoch)
        assert summary["numu_cc"]["val_auc"] == summary["val_auc"] == {1: 0.7, 2: 0.8}[best]
    assert (tmp_path / "live" / "plots" / "metrics" / "numu_cc" / "val_auc.tsv").read_text() == \
        "step\tval_auc\n1\t0.7\n2\t0.8\n3\t0.9\n4\t0.95\n"
    live.end({"best_epoch": 2, "val_auc": 0.8})
    assert json.loads(metrics.read_text()) == {"best_epoch": 2, "val_auc": 0.8, "step": 4}
    assert sorted(p.name for p in (tmp_path / "live").iterdir()) == ["metrics.json", "params.yaml", "plots"]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Name resolution and IP connections raise (the network is unreachable); each attempt is recorded."""
    attempts: list[str] = []

    def refuse(what: str) -> Any:
        def raiser(*args: Any, **kwargs: Any) -> Any:
            attempts.append(f"{what}{args[:2]}")
            raise OSError(f"network unreachable in this test ({what})")
        return raiser

    real_connect = socket.socket.connect

    def connect(sock: socket.socket, address: Any) -> Any:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            return refuse("connect")(address)
        return real_connect(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


def test_a_studio_token_alone_would_reach_for_the_network(no_network: list[str], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The control of the next test: a plain DVCLive with a Studio token posts to Studio at once
    (outside this repository, whose .dvc/config sets studio.offline)."""
    from dvclive import Live

    monkeypatch.chdir(tmp_path)
    for key in OFFLINE_ENV:
        monkeypatch.delenv(key, raising=False)
    for key, value in STUDIO.items():
        monkeypatch.setenv(key, value)
    Live(dir=str(tmp_path / "live"), save_dvc_exp=False, dvcyaml=False)
    assert any("studio.nucvn.invalid" in a for a in no_network), \
        f"DVCLive no longer posts to Studio on start ({no_network}): this control shows nothing"


def test_training_reaches_for_no_network(no_network: list[str], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A tiny run with a DVC Studio token configured and the network unreachable: it completes,
    writes its history, and nothing tried to resolve a name or open a connection. It runs outside
    this repository (whose .dvc/config sets studio.offline), so only the run's own switch protects."""
    monkeypatch.chdir(tmp_path)
    for key in OFFLINE_ENV:
        monkeypatch.delenv(key, raising=False)  # restored after the test: the run sets them
    for key, value in STUDIO.items():
        monkeypatch.setenv(key, value)
    shards = make_shards(tmp_path / "data", n_per_file=100, files=2)
    result = train(ShardDataset(shards, "train"), ShardDataset(shards, "val"), model_dir=tmp_path / "model",
                   checkpoint_dir=tmp_path / "ckpt", live_dir=tmp_path / "live",
                   config=TrainConfig(**(TINY_TRAIN | {"epochs": 1})), progress=False)
    assert no_network == []
    assert json.loads((tmp_path / "live" / "metrics.json").read_text())["best_epoch"] == result.metrics["best_epoch"]
    assert (tmp_path / "live" / "plots" / "metrics" / "numu_cc" / "val_auc.tsv").read_text().count("\n") == 2
