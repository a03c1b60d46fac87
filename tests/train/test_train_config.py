"""TrainConfig: the one typed definition of ``params.yaml: train``, its defaults and its checks."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Literal, get_origin, get_type_hints

import pytest
import yaml

from nucvn.core.errors import NucvnError
from nucvn.core.params import parse_params
from nucvn.models import create_model
from nucvn.train import TrainConfig

REPO = Path(__file__).resolve().parents[2]


def test_defaults_are_the_params_yaml_train_section() -> None:
    """params.yaml repeats TrainConfig's defaults: the two may not drift apart."""
    section = yaml.safe_load((REPO / "params.yaml").read_text())["train"]
    assert asdict(TrainConfig()) == section
    assert parse_params(TrainConfig, section, "train") == TrainConfig()
    hints = get_type_hints(TrainConfig)
    for name in ("optimizer", "schedule", "scale", "balance", "device"):
        assert get_origin(hints[name]) is Literal, name


def test_each_model_takes_only_its_own_size_arguments() -> None:
    """``-S train.model=seed_report`` alone gives a working configuration: the default cvn2v
    arguments stay under their name."""
    assert TrainConfig().kwargs == {"width": 16, "depth": 1, "head": 64, "dropout": 0.3, "se": False, "spatial": 0}
    for model in ("seed_report", "seed_notebook"):
        cfg = TrainConfig(model=model)
        cfg.validate()
        assert cfg.kwargs == {}
        create_model(cfg.model, **cfg.kwargs)
    assert TrainConfig(model="seed_report", model_kwargs={"cvn2v": {"width": 4}}).kwargs == {}


@pytest.mark.parametrize(("kwargs", "pattern"), [
    ({"cvn2v": {"widht": 4}}, (r"^train\.model_kwargs\.cvn2v\.widht: model 'cvn2v' takes no such argument; "
                               r"it accepts width, depth, head, dropout, se, spatial$")),
    ({"width": 16}, r"^train\.model_kwargs\.width: not a model"),
    ({"cvn2v": 16}, r"^train\.model_kwargs\.cvn2v must be a mapping"),
])
def test_bad_model_kwargs_are_named(kwargs: dict, pattern: str) -> None:
    with pytest.raises(NucvnError, match=pattern):
        TrainConfig(model_kwargs=kwargs).validate()


def test_fingerprint_ignores_other_models_arguments() -> None:
    """Changing seed_report's arguments does not discard a cvn2v run's checkpoint."""
    a = TrainConfig().fingerprint({}, {})
    other_model = TrainConfig(model_kwargs=TrainConfig().model_kwargs | {"seed_report": {"hidden": 8}})
    assert other_model.fingerprint({}, {}) == a
    assert TrainConfig(model_kwargs={"cvn2v": {"width": 8}}).fingerprint({}, {}) != a
