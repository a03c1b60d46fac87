"""Training loop: learning (several task heads), outputs (model and DVCLive history), options,
early stopping, resume after SIGKILL or after the last epoch (history files equal to an
uninterrupted run's), damaged checkpoints, full disks, DDP = 1 process, tasks refused at the start,
learned loss weighting."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors.torch
import torch
import yaml

from nucvn.core.errors import NucvnError
from nucvn.data.shards import ShardDataset
from nucvn.inference import load_model
from nucvn.tasks import create_tasks
from nucvn.train import INFO_KEYS, METRIC_KEYS, TrainConfig, TrainResult, train
from nucvn.train.checkpoint import hash_path, save_atomic
from nucvn.train.distributed import EpochSampler
from nucvn.train.loop import _mirror_cells
from nucvn.train.records import metric_names
from trainutil import TINY_TRAIN, make_shards, write_params

REPO = Path(__file__).resolve().parents[2]
STAGE = REPO / "stages" / "train.py"
TASKS = ["numu_cc", "flavour", "mode", "nuenergy", "lepton_fraction"]  # what auto trains without particle counts


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_shards(tmp_path_factory.mktemp("train"), n_per_file=200, files=2)


def _train(shards: Path, out: Path, **overrides: Any) -> TrainResult:
    return train(ShardDataset(shards, "train"), ShardDataset(shards, "val"), model_dir=out / "model",
                 checkpoint_dir=out / "ckpt", live_dir=out / "live",
                 config=TrainConfig(**(TINY_TRAIN | overrides)), progress=False)


def _history(live: Path) -> dict[str, list[tuple[int, float]]]:
    """The DVCLive history under ``live``: metric name -> [(step, value), ...] from its TSV."""
    out = {}
    for tsv in sorted((live / "plots" / "metrics").rglob("*.tsv")):
        header, *rows = [line.split("\t") for line in tsv.read_text().splitlines()]
        name = tsv.relative_to(live / "plots" / "metrics").with_suffix("").as_posix()
        assert header == ["step", name.rsplit("/", 1)[-1]], tsv
        out[name] = [(int(step), float(value)) for step, value in rows]
    return out


def _live_files(live: Path) -> dict[str, str]:
    """Every file DVCLive wrote under ``live`` but the rates (each epoch's own measurement)."""
    return {p.relative_to(live).as_posix(): p.read_text() for p in sorted(live.rglob("*"))
            if p.is_file() and p.name != "train_events_per_s.tsv"}


def _expected_names(tasks: list[str], learned: bool = False) -> set[str]:
    """The DVCLive metric names of a run on ``tasks``: per task its losses and validation metrics
    (and log-variance), the objective and the rate; no unprefixed aliases of the primary task."""
    names = {"total/train_loss", "total/val_loss", "train_events_per_s"}
    for task in create_tasks(tasks):
        names |= {f"{task.name}/train_loss", f"{task.name}/val_loss"}
        names |= {f"{task.name}/val_{m}" for m in metric_names(task)}
        if learned:
            names.add(f"{task.name}/log_variance")
    return names


@pytest.fixture(scope="module")
def baseline(shards: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainResult, Path]:
    """One uninterrupted TINY_TRAIN run: its result and its output directory (not to be modified)."""
    out = tmp_path_factory.mktemp("baseline")
    return _train(shards, out), out


@pytest.fixture(scope="module")
def interrupted(shards: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TINY_TRAIN run "killed" after its last checkpoint but before the model was written (the
    model writer raises); copy it before use."""
    out = tmp_path_factory.mktemp("interrupted")

    def killed(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("killed before the model was written")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("nucvn.train.loop.write_model_dir", killed)
        with pytest.raises(RuntimeError, match="killed"):
            _train(shards, out)
    return out


def test_training_learns_and_writes_model_dir(shards: Path, baseline: tuple[TrainResult, Path]) -> None:
    result, out = baseline
    history = _history(out / "live")
    assert set(history) == _expected_names(TASKS)
    assert {"flavour/val_accuracy", "mode/val_balanced_accuracy", "nuenergy/val_rms", "lepton_fraction/val_bias",
            "numu_cc/val_auc", "nuenergy/train_loss"} <= set(history)
    assert all([step for step, _ in curve] == [1, 2] for curve in history.values())  # step = epoch, from 1
    assert history["numu_cc/train_loss"][1][1] < history["numu_cc/train_loss"][0][1]
    assert history["total/train_loss"][1][1] < history["total/train_loss"][0][1]
    assert all(rate > 0 for _, rate in history["train_events_per_s"])
    params = yaml.safe_load((out / "live" / "params.yaml").read_text())
    assert params == json.loads(json.dumps(asdict(TrainConfig(**TINY_TRAIN))))
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {p for p in written if not p.startswith("live/plots/")} == {  # no dvc.yaml, no report, no CSV
        "live/metrics.json", "live/params.yaml", "model/model.json", "model/model.safetensors"}
    assert result.metrics["val_auc"] > 0.9 and result.metrics["best_epoch"] in (1, 2) and result.info["epochs_run"] == 2
    assert result.info["tasks"] == TASKS
    assert result.info["device"] == "cpu" and result.info["processes"] == 1 and result.info["events_per_s"] > 0
    assert result.info["n_train"] == len(ShardDataset(shards, "train"))

    config = json.loads((out / "model" / "model.json").read_text())
    assert config["model"] == "cvn2v" and config["model_kwargs"] == TINY_TRAIN["model_kwargs"]["cvn2v"]
    assert config["input"]["layout"] == "view,plane,cell" and config["input"]["scale"] == "log1p"
    assert [t["name"] for t in config["tasks"]] == TASKS and config["tasks"][0]["kind"] == "binary"
    assert config["tasks"][0]["definition"] == "numu_cc = interaction in {0,1,2,3} (nucvn.core.events.numu_cc)"
    assert config["loss"] == {"weighting": "fixed", "weights": {t: TINY_TRAIN["task_weights"][t] for t in TASKS},
                              "log_variances": None}
    assert config["train_params"] == json.loads(json.dumps(asdict(TrainConfig(**TINY_TRAIN))))
    assert config["data"]["sha256"]["train"] == ShardDataset(shards, "train").shard_sha256
    assert config["versions"]["torch"] == torch.__version__
    assert config["result"]["metrics"]["best_epoch"] == result.metrics["best_epoch"]

    weights = safetensors.torch.load_file(str(out / "model" / "model.safetensors"))
    model, _ = load_model(out / "model")
    for k, v in model.state_dict().items():
        assert torch.equal(v, weights[k])

    assert not (out / "ckpt" / "checkpoint.pt").exists()  # finished runs do not resume
    assert not hash_path(out / "ckpt" / "checkpoint.pt").exists()


def test_metrics_hold_quality_numbers_and_info_the_bookkeeping(baseline: tuple[TrainResult, Path]) -> None:
    """dvclive/metrics.json gets ``result.metrics`` (and DVCLive's step, the last epoch) only, so
    ``dvc exp show`` compares quality, not events/s; the bookkeeping is kept in model.json."""
    result, out = baseline
    assert tuple(result.metrics) == (*METRIC_KEYS, "total_val_loss", *TASKS) and tuple(result.info) == INFO_KEYS
    assert all(isinstance(result.metrics[k], (int, float)) for k in (*METRIC_KEYS, "total_val_loss"))
    assert result.metrics["numu_cc"] == {k: result.metrics[k] for k in METRIC_KEYS[1:]}
    assert set(result.metrics["flavour"]) == {"val_loss", "val_accuracy", "val_balanced_accuracy"}
    assert set(result.metrics["nuenergy"]) == {"val_loss", "val_bias", "val_rms", "val_mean_abs"}
    history = _history(out / "live")
    best = result.metrics["best_epoch"]
    assert result.metrics["total_val_loss"] == history["total/val_loss"][best - 1][1]
    assert result.metrics["total_val_loss"] == min(v for _, v in history["total/val_loss"])
    assert result.metrics["numu_cc"]["val_auc"] == history["numu_cc/val_auc"][best - 1][1]
    assert json.loads((out / "live" / "metrics.json").read_text()) == \
        json.loads(json.dumps(result.metrics)) | {"step": result.info["epochs_run"]}
    assert json.loads((out / "model" / "model.json").read_text())["result"] == \
        json.loads(json.dumps({"metrics": result.metrics, "info": result.info}))


def test_resuming_a_finished_run_writes_every_output(shards: Path, baseline: tuple[TrainResult, Path],
                                                     interrupted: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Killed after the last checkpoint, before the model: DVC deletes the outputs, the rerun
    resumes without training and writes the model, the whole result and the DVCLive history, equal
    to an uninterrupted run's."""
    out = tmp_path / "run"
    shutil.copytree(interrupted, out)
    assert (out / "ckpt" / "checkpoint.pt").is_file() and not (out / "model" / "model.json").exists()
    shutil.rmtree(out / "live")
    capsys.readouterr()
    result = _train(shards, out)
    assert "training had finished" in capsys.readouterr().out

    base_result, base = baseline
    assert _live_files(out / "live") == _live_files(base / "live")
    assert _history(out / "live")["train_events_per_s"] == _history(interrupted / "live")["train_events_per_s"]
    assert result.metrics == base_result.metrics and tuple(result.info) == INFO_KEYS
    assert {k: result.info[k] for k in ("epochs_run", "n_train", "n_val", "n_parameters")} == \
        {k: base_result.info[k] for k in ("epochs_run", "n_train", "n_val", "n_parameters")}
    resumed, straight = _weights(out), _weights(base)
    assert resumed.keys() == straight.keys()
    for k in straight:
        assert torch.equal(resumed[k], straight[k]), k
    assert json.loads((out / "model" / "model.json").read_text())["result"]["metrics"] == result.metrics
    assert not (out / "ckpt" / "checkpoint.pt").exists() and not hash_path(out / "ckpt" / "checkpoint.pt").exists()


def test_damaged_checkpoint_is_refused_not_resumed(shards: Path, interrupted: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    shutil.copytree(interrupted, out)
    ckpt = out / "ckpt" / "checkpoint.pt"
    raw = bytearray(ckpt.read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 256] = bytes(b ^ 0xFF for b in raw[len(raw) // 2 : len(raw) // 2 + 256])
    ckpt.write_bytes(bytes(raw))
    with pytest.raises(NucvnError) as err:
        _train(shards, out)
    message = str(err.value)
    assert message.startswith(f"{ckpt}: sha256") and "delete it to start training afresh" in message
    assert "\n" not in message and not (out / "model").exists()


@pytest.mark.parametrize("target", ["checkpoint", "model"])
def test_full_disk_is_one_line_naming_the_file(shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               target: str) -> None:
    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    write_bytes = Path.write_bytes
    if target == "checkpoint":
        monkeypatch.setattr(torch, "save", full)
        path = tmp_path / "ckpt" / "checkpoint.pt"
    else:
        monkeypatch.setattr(Path, "write_bytes",
                            lambda p, data: full() if p.suffix == ".safetensors" else write_bytes(p, data))
        path = tmp_path / "model" / "model.safetensors"
    with pytest.raises(NucvnError) as err:
        _train(shards, tmp_path, epochs=1)
    message = str(err.value)
    assert message.startswith(f"{path}: no space left on device") and "\n" not in message
    assert not list(tmp_path.rglob(".*"))  # no temporary file left behind


def test_only_the_chosen_models_size_arguments_are_used(shards: Path, tmp_path: Path) -> None:
    """``-S train.model=seed_report`` alone: cvn2v's arguments stay under their name, unused."""
    kwargs = {"cvn2v": {"width": 4, "head": 8}, "seed_report": {"hidden": 8}}
    _train(shards, tmp_path, model="seed_report", model_kwargs=kwargs, epochs=1)
    config = json.loads((tmp_path / "model" / "model.json").read_text())
    assert config["model"] == "seed_report" and config["model_kwargs"] == {"hidden": 8}
    assert config["train_params"]["model_kwargs"] == kwargs
    model, _ = load_model(tmp_path / "model")
    assert type(model.backbone).__module__ == "nucvn.models.seed_report"


def test_all_task_heads_learn(tmp_path: Path) -> None:
    """Shards with particle counts: auto trains all eight tasks, and each task's training loss falls."""
    shards = make_shards(tmp_path / "data", n_per_file=150, files=2, counts=True)
    weights = dict.fromkeys(TINY_TRAIN["task_weights"], 1.0)
    result = _train(shards, tmp_path, epochs=3, task_weights=weights)
    assert result.info["tasks"] == [*TASKS, "nproton", "npion", "npizero"]
    history = _history(tmp_path / "live")
    assert set(history) == _expected_names(result.info["tasks"])
    for task in result.info["tasks"]:
        assert history[f"{task}/train_loss"][-1][1] < history[f"{task}/train_loss"][0][1], task
    assert set(result.metrics["npizero"]) == {"val_loss", "val_accuracy", "val_balanced_accuracy"}


def test_a_count_task_is_refused_at_the_start_on_shards_without_counts(shards: Path, tmp_path: Path) -> None:
    with pytest.raises(NucvnError) as err:
        _train(shards, tmp_path, tasks=["numu_cc", "nproton", "flavour"])
    message = str(err.value)
    assert message == (f"task nproton needs the key 'nproton' (neutrino/nproton), which {shards / 'index.json'} lacks "
                       "(the real files carry no particle counts); train without it: dvc exp run -S "
                       "'train.tasks=[numu_cc,flavour]'")
    assert not (tmp_path / "ckpt").exists() and not (tmp_path / "live").exists()


def test_learned_loss_weighting_trains(shards: Path, tmp_path: Path) -> None:
    """Kendall et al.'s weighting: the log-variances move, are recorded per epoch and in model.json."""
    result = _train(shards, tmp_path, loss_weighting="learned", tasks=["numu_cc", "nuenergy", "mode"])
    history = _history(tmp_path / "live")
    assert set(history) == _expected_names(["numu_cc", "nuenergy", "mode"], learned=True)
    assert history["total/train_loss"][1][1] < history["total/train_loss"][0][1]
    config = json.loads((tmp_path / "model" / "model.json").read_text())
    log_vars = config["loss"]["log_variances"]
    assert config["loss"]["weighting"] == "learned" and set(log_vars) == {"numu_cc", "nuenergy", "mode"}
    assert all(v != 0.0 for v in log_vars.values())
    assert result.metrics["nuenergy"]["log_variance"] == log_vars["nuenergy"]
    best = result.metrics["best_epoch"]
    assert history["nuenergy/log_variance"][best - 1][1] == log_vars["nuenergy"]
    summary = json.loads((tmp_path / "live" / "metrics.json").read_text())
    assert summary["nuenergy"]["log_variance"] == log_vars["nuenergy"]
    assert np.isfinite(result.metrics["val_loss"]) and result.metrics["val_auc"] > 0.5


@pytest.mark.parametrize(("optimizer", "schedule", "balance", "scale", "augment"),
                         [("sgd", "cosine", "sampler", "div255", True), ("adamw", "constant", "none", "log1p", False)])
def test_other_options_train(shards: Path, tmp_path: Path, optimizer: str, schedule: str, balance: str,
                             scale: str, augment: bool) -> None:
    result = _train(shards, tmp_path, optimizer=optimizer, schedule=schedule, balance=balance, scale=scale,
                    augment=augment, epochs=1, lr=0.003)
    assert np.isfinite(result.metrics["val_loss"]) and 0 <= result.metrics["val_auc"] <= 1
    assert result.info["epochs_run"] == 1


def test_mirror_augmentation_flips_cells_of_each_view_independently() -> None:
    torch.manual_seed(0)
    x = torch.rand(64, 2, 100, 80)
    y = _mirror_cells(x)
    kinds = set()
    for i in range(64):
        for v in range(2):
            same, mirrored = torch.equal(y[i, v], x[i, v]), torch.equal(y[i, v], x[i, v].flip(-1))
            assert same or mirrored
            kinds.add((v, mirrored))
    assert kinds == {(0, False), (0, True), (1, False), (1, True)}
    assert not torch.equal(y[:, 0] != x[:, 0], y[:, 1] != x[:, 1])  # views flip independently


def test_early_stopping_on_flat_validation_loss(shards: Path, tmp_path: Path) -> None:
    """A learning rate too small to move any weight: the val loss never improves after epoch 1."""
    result = _train(shards, tmp_path, model="seed_report", model_kwargs={"seed_report": {"hidden": 8, "dropout": 0.0}},
                    lr=1e-30, epochs=6, patience=1, schedule="constant")
    assert result.info["epochs_run"] == 2 and result.metrics["best_epoch"] == 1


def test_checkpoint_of_another_configuration_is_not_resumed(shards: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    fresh = _train(shards, tmp_path / "fresh", epochs=1)
    (tmp_path / "stale" / "ckpt").mkdir(parents=True)
    save_atomic({"fingerprint": "another run", "epoch": 0}, tmp_path / "stale" / "ckpt" / "checkpoint.pt")
    capsys.readouterr()
    again = _train(shards, tmp_path / "stale", epochs=1)
    assert "starting from scratch" in capsys.readouterr().out
    assert again.metrics == fresh.metrics


def test_bad_configuration_is_reported_by_name(shards: Path, tmp_path: Path) -> None:
    with pytest.raises(NucvnError, match=r"train\.optimizer"):
        TrainConfig(optimizer="adam").validate()  # type: ignore[arg-type]
    with pytest.raises(NucvnError, match=r"train\.epochs"):
        TrainConfig(epochs=0).validate()
    with pytest.raises(NucvnError, match=r"train\.gpus=2 needs 2 processes"):
        _train(shards, tmp_path, gpus=2)
    with pytest.raises(NucvnError, match="unknown model"):
        _train(shards, tmp_path, model="nope")
    with pytest.raises(NucvnError, match=r"train\.tasks: unknown task 'nue'"):
        _train(shards, tmp_path, tasks=["nue"])
    with pytest.raises(NucvnError, match=r"^train\.task_weights\.nue: not a task"):
        TrainConfig(task_weights={"nue": 1.0}).validate()
    with pytest.raises(NucvnError, match=r"^train\.model_kwargs\.cvn2v\.num_outputs: the outputs are the task heads'"):
        TrainConfig(model_kwargs={"cvn2v": {"num_outputs": 2}}).validate()


def test_epoch_sampler_order_depends_on_seed_and_epoch_only() -> None:
    data = list(range(10))

    def order(seed: int, epoch: int, rank: int = 0, world: int = 1, weights: torch.Tensor | None = None) -> list[int]:
        s = EpochSampler(data, seed=seed, rank=rank, world=world, weights=weights)  # type: ignore[arg-type]
        s.set_epoch(epoch)
        return list(s)

    assert order(0, 3) == order(0, 3) and sorted(order(0, 3)) == data
    assert order(0, 3) != order(0, 4) and order(0, 3) != order(1, 3)
    full = order(0, 3)
    assert order(0, 3, rank=0, world=2) == full[0::2] and order(0, 3, rank=1, world=2) == full[1::2]
    weights = torch.tensor([9.0] + [1.0] * 9)
    drawn = np.concatenate([order(0, e, weights=weights) for e in range(200)])
    assert 0.4 < np.mean(drawn == 0) < 0.6  # class 0 drawn about as often as the nine others together


def _stage(params: Path, shards: Path, out: Path, **popen: Any) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, str(STAGE), "--params", str(params), "--shards", str(shards), "--model-dir",
           str(out / "model"), "--checkpoint-dir", str(out / "ckpt"), "--live-dir", str(out / "live"),
           "--info", str(out / "info.json"), "--no-progress"]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen)


def _run_stage(params: Path, shards: Path, out: Path) -> str:
    proc = _stage(params, shards, out)
    stdout, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, stdout.decode()
    return stdout.decode()


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return safetensors.torch.load_file(str(out / "model" / "model.safetensors"))


@pytest.mark.slow
def test_resume_after_sigkill_gives_identical_weights(shards: Path, tmp_path: Path) -> None:
    params = write_params(tmp_path / "params.yaml", epochs=3, patience=0,
                          model_kwargs={"cvn2v": {"width": 4, "head": 8, "dropout": 0.5}})
    _run_stage(params, shards, tmp_path / "straight")

    killed = tmp_path / "killed"
    proc = _stage(params, shards, killed)
    ckpt = killed / "ckpt" / "checkpoint.pt"
    deadline = time.monotonic() + 240
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    done = torch.load(ckpt, weights_only=True)["epoch"]
    assert done < 2 and not (killed / "model" / "model.safetensors").exists()

    log = _run_stage(params, shards, killed)
    assert f"resuming from {ckpt} after epoch {done}" in log
    straight, resumed = _weights(tmp_path / "straight"), _weights(killed)
    assert straight.keys() == resumed.keys()
    for k in straight:
        assert torch.equal(straight[k], resumed[k]), k
    assert _live_files(tmp_path / "straight" / "live") == _live_files(killed / "live")


@pytest.mark.slow
def test_ddp_two_cpu_processes_match_one(tmp_path: Path) -> None:
    """Same global batches, gradients averaged over 2 gloo ranks: same weights as 1 process.

    seed_report without dropout: no batch norm (on a CPU each rank normalises its own half batch;
    on CUDA the trainer uses SyncBatchNorm) and no dropout masks to differ between ranks.
    """
    for seed in range(20):  # an even number of training events: no rank pads its share with a repeat
        shards = make_shards(tmp_path / f"data{seed}", n_per_file=100, files=2, seed=seed)
        if len(ShardDataset(shards, "train")) % 2 == 0:
            break
    common = {"model": "seed_report", "model_kwargs": {"seed_report": {"hidden": 16, "dropout": 0.0}}, "lr": 0.003,
              "batch_size": 16}
    _run_stage(write_params(tmp_path / "one.yaml", **common), shards, tmp_path / "one")
    log = _run_stage(write_params(tmp_path / "two.yaml", gpus=2, **common), shards, tmp_path / "two")
    assert "epoch 2" in log
    one, two = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    for k in one:
        torch.testing.assert_close(one[k], two[k], rtol=1e-4, atol=1e-5)
    m1 = json.loads((tmp_path / "one" / "live" / "metrics.json").read_text())
    m2 = json.loads((tmp_path / "two" / "live" / "metrics.json").read_text())
    assert [s for s, _ in _history(tmp_path / "two" / "live")["numu_cc/val_auc"]] == [1, 2]  # one writer: rank 0
    processes = [json.loads((tmp_path / run / "model" / "model.json").read_text())["result"]["info"]["processes"]
                 for run in ("one", "two")]
    assert processes == [1, 2] and m1["best_epoch"] == m2["best_epoch"]
    assert m1["val_auc"] > 0.8
    for key in ("val_loss", "val_auc", "val_accuracy"):
        assert m2[key] == pytest.approx(m1[key], rel=1e-4, abs=1e-5), key


def test_weight_average_follows_the_ema_recursion() -> None:
    """The first update copies the weights, then ``avg <- d_t avg + (1 - d_t) w`` after every update,
    buffers included, with the warmed-up decay ``d_t = min(d, (1 + t) / (10 + t))``; decay 0 is
    the model itself."""
    from nucvn.train.averaging import WeightAverage, warmed_decay

    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    avg = WeightAverage(net, 0.9)
    expected = {k: v.detach().clone().float() for k, v in net.state_dict().items() if v.is_floating_point()}
    for step in range(40):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(step + 1.0)
            net[1].running_mean.add_(2.0)
        avg.update()
        for k, v in net.state_dict().items():
            if v.is_floating_point():
                d = warmed_decay(0.9, step)
                expected[k] = v.float().clone() if step == 0 else d * expected[k] + (1 - d) * v.float()
    got = avg.best_state()
    for k, v in expected.items():
        torch.testing.assert_close(got[k], v, msg=k)
    assert warmed_decay(0.9, 0) == 0.1 and warmed_decay(0.9, 1000) == 0.9
    assert WeightAverage(net, 0.0).network is net
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(net, 1.0)


def test_ema_model_is_written_and_resumes_to_the_same_weights(shards: Path, tmp_path: Path) -> None:
    """With ``ema`` the written model is the average (not the last iterate), and a run killed after
    epoch 1 resumes (average included) to the weights and the DVCLive history of an uninterrupted run."""
    common: dict[str, Any] = {"ema": 0.9, "epochs": 2, "patience": 0}
    straight = _train(shards, tmp_path / "straight", **common)
    _train(shards, tmp_path / "plain", epochs=2, patience=0)
    assert straight.metrics["val_auc"] > 0.8
    w_ema, w_plain = _weights(tmp_path / "straight"), _weights(tmp_path / "plain")
    assert any(not torch.equal(w_ema[k], w_plain[k]) for k in w_ema)

    calls = {"n": 0}
    from nucvn.train import loop

    real = loop.evaluate

    def dies_in_epoch_2(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("killed in epoch 2")
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("nucvn.train.loop.evaluate", dies_in_epoch_2)
        with pytest.raises(RuntimeError, match="killed"):
            _train(shards, tmp_path / "killed", **common)
    assert [s for s, _ in _history(tmp_path / "killed" / "live")["total/val_loss"]] == [1]
    _train(shards, tmp_path / "killed", **common)
    resumed = _weights(tmp_path / "killed")
    for k in w_ema:
        assert torch.equal(w_ema[k], resumed[k]), k
    assert _live_files(tmp_path / "killed" / "live") == _live_files(tmp_path / "straight" / "live")


def test_train_events_uses_the_first_events_of_the_train_split_only(shards: Path, tmp_path: Path) -> None:
    n = len(ShardDataset(shards, "train"))
    result = _train(shards, tmp_path, train_events=50, epochs=1)
    assert result.info["n_train"] == 50 < n
    assert _train(shards, tmp_path / "all", train_events=10 * n, epochs=1).info["n_train"] == n
    with pytest.raises(NucvnError, match=r"train\.ema"):
        TrainConfig(**(TINY_TRAIN | {"ema": 1.0})).validate()


def test_max_steps_ends_training_mid_epoch_and_a_few_steps_train_at_all(shards: Path, tmp_path: Path) -> None:
    n = len(ShardDataset(shards, "train"))
    batch = TINY_TRAIN["batch_size"]
    per_epoch = -(-n // batch)
    assert per_epoch > 3
    capped = _train(shards, tmp_path / "capped", max_steps=per_epoch + 2, epochs=3, patience=0)
    assert capped.info["steps_run"] == per_epoch + 2 and capped.info["epochs_run"] == 2
    assert [s for s, _ in _history(tmp_path / "capped" / "live")["total/val_loss"]] == [1, 2]
    full = _train(shards, tmp_path / "full", epochs=1, patience=0)
    assert full.info["steps_run"] == per_epoch and full.info["epochs_run"] == 1
    for total in (1, 2, 4):  # one-cycle needs a few steps of warm-up; shorter runs keep the rate constant
        assert _train(shards, tmp_path / f"s{total}", max_steps=total, epochs=1).info["steps_run"] == total
