"""Learning-rate schedules and the optimiser registry."""

import math

import pytest
import torch

from rnnkit.errors import UserError
from rnnkit.train.config import TrainConfig
from rnnkit.train.optim import OPTIMIZERS, LearningRateSchedule, build_optimizer


def schedule(**options) -> LearningRateSchedule:
    return LearningRateSchedule(TrainConfig(lr=1.0, **options))


def test_cosine_runs_from_peak_to_floor_over_the_budget():
    s = schedule(schedule="cosine", min_lr_ratio=0.1)
    assert s.learning_rate(0, 0.0) == pytest.approx(1.0)
    assert s.learning_rate(50, 0.5) == pytest.approx(0.1 + 0.9 * 0.5)
    assert s.learning_rate(99, 1.0) == pytest.approx(0.1)
    assert s.learning_rate(99, 1.7) == pytest.approx(0.1)  # progress past the budget is clamped


def test_linear_warmup():
    s = schedule(schedule="constant", warmup_steps=4)
    assert [s.learning_rate(step, 0.0) for step in range(5)] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0])


def test_step_decay():
    s = schedule(schedule="step", step_every=10, gamma=0.5)
    assert [s.learning_rate(step, 0.0) for step in (0, 9, 10, 25)] == pytest.approx([1, 1, 0.5, 0.25])
    delayed = schedule(schedule="step", step_every=10, step_start=40, gamma=0.5)  # Zaremba: constant for 4 epochs
    assert [delayed.learning_rate(step, 0.0) for step in (0, 39, 40, 49, 50, 65)] == pytest.approx([1, 1, 0.5, 0.5, 0.25, 0.125])


def test_plateau_reduces_after_patience_evaluations_without_improvement():
    s = schedule(schedule="plateau", gamma=0.1, plateau_patience=2)
    for improved in (True, True, False, False):  # two evaluations without improvement
        s.observe(improved)
    assert s.learning_rate(0, 0.0) == pytest.approx(0.1)
    s.observe(True)
    s.observe(False)
    assert s.learning_rate(0, 0.0) == pytest.approx(0.1)  # one stale evaluation since the last improvement
    restored = schedule(schedule="plateau", gamma=0.1, plateau_patience=2)
    restored.load_state_dict(s.state_dict())
    restored.observe(False)  # the second stale one, counted across the restart
    assert restored.learning_rate(0, 0.0) == pytest.approx(0.01)


def test_apply_sets_every_parameter_group():
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([{"params": [parameter]}, {"params": []}], lr=5.0)
    lr = schedule(schedule="cosine", min_lr_ratio=0.0).apply(optimizer, 10, 1.0)
    assert lr == pytest.approx(0.0, abs=1e-12) and all(math.isclose(g["lr"], lr, abs_tol=1e-12) for g in optimizer.param_groups)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_registered_optimizer_builds_and_steps(name):
    parameter = torch.nn.Parameter(torch.ones(3))
    optimizer = build_optimizer([parameter], TrainConfig(optimizer=name, lr=0.1))
    parameter.sum().backward()
    optimizer.step()
    assert (parameter < 1).all()


def test_unknown_names_are_rejected():
    with pytest.raises(UserError, match="--optimizer: expected one of sgd, adam, adamw, rmsprop, got 'x'"):
        TrainConfig(optimizer="x").validate()
    with pytest.raises(UserError, match="--schedule: expected one of"):
        TrainConfig(schedule="x").validate()
