"""Inference: load_model (safetensors, no unpickling, sha256-checked), predict (one column group per
task) and predict_scores on shards and raw batches."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from nucvn.core.errors import NucvnError
from nucvn.data.shards import ShardDataset
from nucvn.inference import load_model, model_tasks, predict, predict_scores, prediction_table
from nucvn.models import scale_pixels
from nucvn.report.stats import auc
from nucvn.train import TrainConfig, train
from trainutil import TINY_TRAIN, make_shards


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("inference")
    shards = make_shards(root, n_per_file=200, files=2, seed=7)
    train(ShardDataset(shards, "train"), ShardDataset(shards, "val"), model_dir=root / "model",
          checkpoint_dir=root / "ckpt", config=TrainConfig(**TINY_TRAIN),
          progress=False)
    return root / "model", shards


def test_scores_on_shards_separate_the_classes(trained: tuple[Path, Path]) -> None:
    model_dir, shards = trained
    model, config = load_model(model_dir)
    assert not model.training and config["input"]["scale"] == "log1p"
    test = ShardDataset(shards, "test")
    scores = predict_scores(model, config, test, batch_size=17, progress=False)
    assert scores.shape == (len(test),) and scores.dtype == np.float32
    assert ((scores >= 0) & (scores <= 1)).all()
    assert auc(test.labels("numu_cc").astype(bool), scores) > 0.9


def test_iterable_of_batches_gives_the_same_scores(trained: tuple[Path, Path]) -> None:
    model_dir, shards = trained
    model, config = load_model(model_dir)
    test = ShardDataset(shards, "test")
    images = test.batch(np.arange(len(test)))[0]
    from_shards = predict_scores(model, config, test, progress=False)
    from_numpy = predict_scores(model, config, (images[i : i + 10].numpy() for i in range(0, len(test), 10)),
                                progress=False)
    from_pairs = predict_scores(model, config, [(images, None)], progress=False)
    np.testing.assert_allclose(from_numpy, from_shards, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(from_pairs, from_shards, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        manual = torch.sigmoid(model(scale_pixels(images, "log1p"))["numu_cc"]).numpy()
    np.testing.assert_allclose(from_shards, manual, rtol=1e-5, atol=1e-6)


def test_predict_gives_one_column_group_per_task(trained: tuple[Path, Path]) -> None:
    model_dir, shards = trained
    model, config = load_model(model_dir)
    test = ShardDataset(shards, "test")
    n = len(test)
    assert model.task_names == ["numu_cc", "flavour", "mode", "nuenergy", "lepton_fraction"]
    assert [t["name"] for t in config["tasks"]] == model.task_names
    preds = predict(model, config, test, batch_size=13, progress=False)
    assert list(preds) == model.task_names and all(p.dtype == np.float32 for p in preds.values())
    assert preds["numu_cc"].shape == (n,) and preds["flavour"].shape == (n, 5) and preds["mode"].shape == (n, 5)
    np.testing.assert_allclose(preds["flavour"].sum(axis=1), 1.0, rtol=1e-5)
    assert preds["nuenergy"].shape == (n,) and (preds["nuenergy"] > 0).all()  # GeV
    assert ((preds["lepton_fraction"] >= 0) & (preds["lepton_fraction"] <= 1)).all()
    np.testing.assert_allclose(preds["numu_cc"], predict_scores(model, config, test, progress=False), rtol=1e-6)
    only = predict(model, config, test, tasks=["nuenergy"], progress=False)
    assert list(only) == ["nuenergy"] and np.allclose(only["nuenergy"], preds["nuenergy"])
    meta = test.metadata
    table = prediction_table(meta, preds, model.tasks)
    rest = [c for c in meta.columns if c not in ("file", "index", "run", "subrun", "evt", "cycle", "subevt")]
    groups = ["numu_cc_score", *[f"flavour_p_{c}" for c in ("numu_cc", "nue_cc", "nutau_cc", "nc", "cosmic")],
              *[f"mode_p_{c}" for c in ("qe", "res", "dis", "other", "nc")], "nuenergy_gev", "lepton_fraction_pred"]
    assert list(table.columns) == ["file", "index", "run", "subrun", "evt", "cycle", "subevt", *groups, *rest]
    np.testing.assert_array_equal(table["mode_p_dis"], preds["mode"][:, 2])
    assert [t.name for t in model_tasks(config)] == model.task_names
    with pytest.raises(NucvnError, match="no task 'nproton'; its tasks: numu_cc, flavour"):
        predict(model, config, test, tasks=["nproton"], progress=False)
    with pytest.raises(NucvnError, match="task 'mode' is multiclass, not binary"):
        predict_scores(model, config, test, task="mode", progress=False)
    empty = predict(model, config, [], progress=False)
    assert empty["flavour"].shape == (0, 5) and empty["numu_cc"].shape == (0,)


def test_scaling_comes_from_the_config(trained: tuple[Path, Path]) -> None:
    model_dir, shards = trained
    model, config = load_model(model_dir)
    test = ShardDataset(shards, "test")
    other = config | {"input": config["input"] | {"scale": "div255"}}
    a = predict_scores(model, config, test, progress=False)
    b = predict_scores(model, other, test, progress=False)
    assert not np.allclose(a, b)


def test_bad_batches_are_refused(trained: tuple[Path, Path]) -> None:
    model, config = load_model(trained[0])
    with pytest.raises(NucvnError, match="uint8"):
        predict_scores(model, config, [np.zeros((2, 2, 100, 80), np.float32)], progress=False)
    with pytest.raises(NucvnError, match=r"\(n, 2, 100, 80\)"):
        predict_scores(model, config, [np.zeros((2, 100, 80, 2), np.uint8)], progress=False)
    assert predict_scores(model, config, [], progress=False).shape == (0,)


def test_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(NucvnError, match=r"model\.json.*model\.safetensors.*dvc repro train"):
        load_model(tmp_path)


def test_weights_that_do_not_fit_the_config(trained: tuple[Path, Path], tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(trained[0], copy)
    config = json.loads((copy / "model.json").read_text())
    config["model_kwargs"]["width"] = 8
    (copy / "model.json").write_text(json.dumps(config))
    with pytest.raises(NucvnError, match="does not fit model 'cvn2v'"):
        load_model(copy)
    (copy / "model.json").write_text("{not json")
    with pytest.raises(NucvnError, match="not valid JSON"):
        load_model(copy)


def test_weights_file_is_not_a_pickle(trained: tuple[Path, Path]) -> None:
    """The weights are safetensors: an 8-byte header length, then a JSON header, no pickle opcodes."""
    raw = (trained[0] / "model.safetensors").read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    assert header["__metadata__"] == {"format": "pt"} and raw[:2] != b"\x80\x04"


def test_weights_changed_after_training_are_refused(trained: tuple[Path, Path], tmp_path: Path) -> None:
    """256 bytes flipped inside a tensor keep the file valid and its size; load_model must refuse it
    rather than return a model whose scores are silently off."""
    copy = tmp_path / "model"
    shutil.copytree(trained[0], copy)
    weights = copy / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    start = 8 + int.from_bytes(raw[:8], "little") + 128
    raw[start : start + 256] = bytes(b ^ 0xFF for b in raw[start : start + 256])
    weights.write_bytes(bytes(raw))
    with pytest.raises(NucvnError) as err:
        load_model(copy)
    message = str(err.value)
    assert message.startswith(f"{weights}: sha256") and "retrain" in message and "\n" not in message
