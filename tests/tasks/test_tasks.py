"""Tasks: labels, masks, losses (0 where undefined), predictions, counts and metrics on hand-made events."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from nucvn.core.errors import NucvnError
from nucvn.tasks import (
    MultiTaskNet,
    Task,
    available_tasks,
    build_network,
    create_tasks,
    list_tasks,
    primary_task,
    register_task,
)
from nucvn.tasks.numu_cc import NumuCC
from nucvn.train.objective import Objective, SplitTargets, TrainStep

ALL = ["numu_cc", "flavour", "mode", "nuenergy", "lepton_fraction", "nproton", "npion", "npizero"]

# interaction: 0 numu CC QE, 2 numu CC DIS, 5 nue CC RES, 10 nutau CC DIS, 13 NC, 14 cosmic, 15 other
EVENTS = pd.DataFrame({
    "interaction": np.array([0, 2, 5, 10, 13, 14, 15], dtype=np.uint32),
    "nuenergy": np.array([2.0, 10.0, 4.0, 20.0, 5.0, 3.0, 1.0], dtype=np.float32),
    "lepenergy": np.array([1.5, 2.5, 1.0, 15.0, 4.0, 3.0, 0.5], dtype=np.float32),
    "nproton": np.array([0, 1, 2, 7, 3, 0, 1], dtype=np.uint16),
    "npion": np.array([1, 0, 0, 2, 4, 0, 0], dtype=np.uint16),
    "npizero": np.array([0, 2, 1, 0, 0, 0, 0], dtype=np.uint16),
})
NEUTRINO = np.array([1, 1, 1, 1, 1, 0, 0], dtype=bool)
EXPECTED = {  # (target, defined)
    "numu_cc": ([1, 1, 0, 0, 0, 0, 0], [1] * 7),
    "flavour": ([0, 0, 1, 2, 3, 4, 0], [1, 1, 1, 1, 1, 1, 0]),
    "mode": ([0, 2, 1, 2, 4, 0, 0], NEUTRINO),
    "nuenergy": ([2.0, 10.0, 4.0, 20.0, 5.0, 0, 0], NEUTRINO),
    "lepton_fraction": ([0.75, 0.25, 0.25, 0.75, 0.8, 0, 0], NEUTRINO),
    "nproton": ([0, 1, 2, 3, 3, 0, 0], NEUTRINO),
    "npion": ([1, 0, 0, 2, 3, 0, 0], NEUTRINO),
    "npizero": ([0, 2, 1, 0, 0, 0, 0], NEUTRINO),
}


def _outputs(task: Task, n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    shape = (n,) if task.n_outputs == 1 else (n, task.n_outputs)
    return torch.randn(shape, generator=g, requires_grad=True)


def test_registry_holds_every_task_in_order() -> None:
    assert list_tasks() == ALL
    assert available_tasks(["interaction", "nuenergy", "lepenergy"]) == ALL[:5]
    assert available_tasks(EVENTS.columns) == ALL
    with pytest.raises(NucvnError, match=r"unknown task 'nue'.*numu_cc, flavour"):
        create_tasks(["nue"])
    with pytest.raises(NucvnError, match="listed twice"):
        create_tasks(["mode", "mode"])
    with pytest.raises(ValueError, match="twice"):
        register_task("numu_cc")(type("Other", (NumuCC,), {}))


@pytest.mark.parametrize("name", ALL)
def test_label_and_mask_on_hand_made_events(name: str) -> None:
    (task,) = create_tasks([name])
    target, defined = task.targets(EVENTS)
    want_target, want_defined = EXPECTED[name]
    np.testing.assert_array_equal(defined, np.asarray(want_defined, dtype=bool))
    np.testing.assert_allclose(target, want_target, rtol=1e-6)
    assert len(task.classes) == (0 if task.kind == "regression" else max(task.n_outputs, 2))
    assert len(task.prediction_columns()) == (len(task.classes) if task.kind in ("multiclass", "count") else 1)
    assert task.definition and set(task.columns) <= set(EVENTS.columns)


@pytest.mark.parametrize("name", ALL)
def test_loss_is_zero_without_gradient_where_undefined(name: str) -> None:
    (task,) = create_tasks([name])
    target, defined = (torch.from_numpy(a) for a in task.targets(EVENTS))
    out = _outputs(task, len(EVENTS))
    loss = task.loss(out, target, defined)
    assert loss.shape == (len(EVENTS),) and torch.isfinite(loss).all()
    assert (loss[~defined] == 0).all() and (loss[defined] >= 0).all() and loss[defined].sum() > 0
    loss.sum().backward()
    grad = out.grad.reshape(len(EVENTS), -1)
    assert (grad[~defined] == 0).all() and torch.isfinite(grad).all()


def test_undefined_events_are_left_out_of_the_task_mean() -> None:
    """The training step's per-task loss is the mean over the events where the task is defined: an
    undefined event changes neither the value nor the gradient."""
    tasks = create_tasks(["numu_cc", "mode"])
    torch.manual_seed(0)
    net = build_network("seed_report", {"hidden": 4, "dropout": 0.0}, tasks).eval()
    objective = Objective(["numu_cc", "mode"], {"numu_cc": 0.0, "mode": 1.0}, "fixed")
    step = TrainStep(net, objective, world=1, device=torch.device("cpu"))
    targets = SplitTargets(tasks, EVENTS, class_weights=False, device=torch.device("cpu"))
    x = torch.rand(len(EVENTS), 2, 100, 80, generator=torch.Generator().manual_seed(1))

    def mode_loss(rows: list[int]) -> float:
        idx = torch.tensor(rows)
        batch = targets.gather(idx)
        loss, _ = step(x[idx], batch, targets.defined_counts(batch))
        return float(loss.detach())

    with torch.no_grad():
        per_event = tasks[1].loss(net(x)["mode"], *(torch.from_numpy(a) for a in tasks[1].targets(EVENTS)))
    assert mode_loss([0, 1, 2, 3, 4]) == pytest.approx(float(per_event[:5].mean()), rel=1e-6)
    assert mode_loss([0, 1, 2, 3, 4, 5, 6]) == pytest.approx(mode_loss([0, 1, 2, 3, 4]),
                                                             rel=1e-6)  # 5, 6: cosmic, other
    assert mode_loss([5, 6]) == 0.0


def test_predictions_are_in_physical_units() -> None:
    numu, flavour, energy, fraction, npion = create_tasks(["numu_cc", "flavour", "nuenergy", "lepton_fraction",
                                                           "npion"])
    out = torch.tensor([-2.0, 0.0, 3.0])
    assert torch.allclose(numu.predict(out), torch.sigmoid(out))
    assert torch.allclose(energy.predict(out), torch.exp(out))  # the head gives log(E / GeV)
    assert torch.allclose(fraction.predict(out), torch.sigmoid(out))
    p = flavour.predict(torch.randn(3, 5))
    assert p.shape == (3, 5) and torch.allclose(p.sum(1), torch.ones(3))
    assert numu.prediction_columns() == ["numu_cc_score"] and energy.prediction_columns() == ["nuenergy_gev"]
    assert fraction.prediction_columns() == ["lepton_fraction_pred"]
    assert flavour.prediction_columns() == [f"flavour_p_{c}" for c in ("numu_cc", "nue_cc", "nutau_cc", "nc", "cosmic")]
    assert npion.prediction_columns() == ["npion_p_0", "npion_p_1", "npion_p_2", "npion_p_ge3"]
    assert npion.classes == ("0", "1", "2", ">=3") and npion.kind == "count"
    assert (energy.unit, energy.resolution, energy.baseline) == ("GeV", "relative", "calorimetric")
    assert (fraction.unit, fraction.resolution, fraction.baseline) == ("", "absolute", None)
    assert "inelasticity = 1 - lepton_fraction" in fraction.definition


def test_energy_loss_weighs_the_relative_error() -> None:
    """The same 10 % over-estimate costs the same at 1 GeV and at 50 GeV."""
    (energy,) = create_tasks(["nuenergy"])
    true = torch.tensor([1.0, 50.0])
    loss = energy.loss(torch.log(true * 1.1), true, torch.tensor([True, True]))
    assert loss[0] == pytest.approx(float(loss[1]), rel=1e-5) and loss[0] > 0
    assert float(energy.loss(torch.log(true), true, torch.tensor([True, True])).abs().max()) < 1e-6


def test_lepton_fraction_loss_is_zero_at_the_truth() -> None:
    (fraction,) = create_tasks(["lepton_fraction"])
    y = torch.tensor([0.0, 0.3, 0.999])
    exact = fraction.loss(torch.logit(y, eps=1e-7), y, torch.ones(3, dtype=torch.bool))
    assert float(exact.abs().max()) < 1e-4
    assert (fraction.loss(torch.zeros(3), y, torch.ones(3, dtype=torch.bool)) > exact).all()


@pytest.mark.parametrize("name", ALL)
def test_validation_counts_add_and_give_metrics(name: str) -> None:
    (task,) = create_tasks([name])
    target, defined = task.targets(EVENTS)
    pred = task.predict(_outputs(task, len(EVENTS), seed=3)).detach().numpy()
    whole = task.val_counts(pred, target, defined)
    halves = task.val_counts(pred[:3], target[:3], defined[:3]) + task.val_counts(pred[3:], target[3:], defined[3:])
    np.testing.assert_allclose(whole, halves)
    metrics = task.val_metrics(whole)
    assert metrics and all(isinstance(v, float) for v in metrics.values())
    if task.kind in ("multiclass", "count"):
        perfect = np.eye(len(task.classes))[target]
        assert task.val_metrics(task.val_counts(perfect, target, defined))["accuracy"] == 1.0
    if task.kind == "regression":
        assert task.val_metrics(task.val_counts(target, target, defined)) == {"bias": 0.0, "rms": 0.0, "mean_abs": 0.0}


def test_binary_metrics_and_class_weights() -> None:
    (numu,) = create_tasks(["numu_cc"])
    target, defined = numu.targets(EVENTS)
    m = numu.val_metrics(numu.val_counts(target.astype(float), target, defined))
    assert m == {"auc": 1.0, "accuracy": 1.0, "balanced_accuracy": 1.0}
    w = numu.sample_weights(target, defined)
    np.testing.assert_allclose(w, np.where(target == 1, 7 / (2 * 2), 7 / (2 * 5)))  # n / (2 n_c)
    assert create_tasks(["flavour"])[0].sample_weights(*create_tasks(["flavour"])[0].targets(EVENTS)) is None


def test_a_task_needing_a_missing_column_is_refused_in_one_line() -> None:
    (nproton,) = create_tasks(["nproton"])
    with pytest.raises(NucvnError) as err:
        nproton.check_columns(["interaction", "nuenergy", "lepenergy"], "data/shards/index.json")
    message = str(err.value)
    assert message == ("task nproton needs the key 'nproton' (neutrino/nproton), which data/shards/index.json lacks "
                       "(the real files carry no particle counts); train without it: dvc exp run -S "
                       "'train.tasks=[numu_cc,flavour,mode,nuenergy,lepton_fraction]'")
    nproton.check_columns(EVENTS.columns, "here")


def test_multitask_net_gives_one_output_per_task() -> None:
    tasks = create_tasks(ALL)
    torch.manual_seed(0)
    net = build_network("cvn2v", {"width": 2, "head": 8}, tasks)
    assert isinstance(net, MultiTaskNet) and net.task_names == ALL
    out = net(torch.rand(3, 2, 100, 80))
    assert list(out) == ALL
    for t in tasks:
        assert out[t.name].shape == ((3,) if t.n_outputs == 1 else (3, t.n_outputs))
    assert primary_task(tasks).name == "numu_cc" and primary_task(create_tasks(["mode", "flavour"])).name == "mode"
    assert not any(k.startswith("backbone.fc") for k in net.state_dict())


def test_learned_weighting_objective() -> None:
    """Kendall et al.: sum_t w_t (exp(-s_t) L_t + s_t), with s_t = 0 at the start."""
    obj = Objective(["a", "b"], {"a": 1.0, "b": 0.5}, "learned")
    losses = torch.tensor([2.0, 4.0])
    assert float(obj(losses).detach()) == pytest.approx(2.0 + 0.5 * 4.0)
    with torch.no_grad():
        obj.log_vars.copy_(torch.tensor([math.log(2.0), 0.0]))
    assert float(obj(losses).detach()) == pytest.approx(1.0 + math.log(2.0) + 2.0)
    assert obj.describe()["log_variances"] == {"a": pytest.approx(math.log(2.0)), "b": 0.0}
    fixed = Objective(["a", "b"], {"a": 1.0, "b": 0.5}, "fixed")
    assert float(fixed(losses)) == pytest.approx(4.0) and fixed.log_vars is None
