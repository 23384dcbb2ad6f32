"""Optimisers and learning-rate schedules, by name: one registry each.

A schedule maps the run's progress to a learning rate. Progress is the fraction of the
budget used so far (steps, epochs or wall-clock minutes, whichever is furthest along),
so a cosine schedule ends at its minimum exactly when a time-budgeted run ends.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

import torch

if TYPE_CHECKING:  # only named in annotations: the configuration checks its names against these registries
    from rnnkit.train.config import TrainConfig

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": lambda params, c: torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay),
    "adam": lambda params, c: torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay),
    "adamw": lambda params, c: torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay),
    "rmsprop": lambda params, c: torch.optim.RMSprop(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay),
}


def build_optimizer(parameters, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimiser ``config.optimizer`` names (``TrainConfig.validate`` has checked the name)."""
    return OPTIMIZERS[config.optimizer](parameters, config)


class LearningRateSchedule:
    """lr(step, progress), plus reduce-on-plateau, which reacts to evaluations."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.plateau_scale = 1.0  # reduce-on-plateau's accumulated factor
        self.evaluations_without_improvement = 0

    def learning_rate(self, step: int, progress: float) -> float:
        c = self.config
        warmup = min(1.0, (step + 1) / c.warmup_steps) if c.warmup_steps else 1.0
        return c.lr * warmup * SCHEDULES[c.schedule](self, step, min(progress, 1.0))

    def observe(self, improved: bool) -> None:
        """Tell the schedule whether an evaluation improved the monitored metric (only plateau uses it)."""
        if improved:
            self.evaluations_without_improvement = 0
            return
        self.evaluations_without_improvement += 1
        if self.config.schedule == "plateau" and self.evaluations_without_improvement >= self.config.plateau_patience:
            self.plateau_scale *= self.config.gamma
            self.evaluations_without_improvement = 0

    def apply(self, optimizer: torch.optim.Optimizer, step: int, progress: float) -> float:
        lr = self.learning_rate(step, progress)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr

    def state_dict(self) -> dict:
        return {"plateau_scale": self.plateau_scale, "stale": self.evaluations_without_improvement}

    def load_state_dict(self, state: dict) -> None:
        self.plateau_scale, self.evaluations_without_improvement = state["plateau_scale"], state["stale"]


def _decays(config: TrainConfig, step: int) -> int:
    """How many times the step schedule has multiplied the learning rate by --gamma before ``step``:
    every --step-every steps, the first after --step-start (Zaremba et al.'s "halve after epoch 4")."""
    start = config.step_start or config.step_every
    return 0 if step < start else (step - start) // config.step_every + 1


def _cosine(schedule: LearningRateSchedule, step: int, progress: float) -> float:
    floor = schedule.config.min_lr_ratio
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


SCHEDULES: dict[str, Callable[[LearningRateSchedule, int, float], float]] = {
    "constant": lambda schedule, step, progress: 1.0,
    "step": lambda schedule, step, progress: schedule.config.gamma ** _decays(schedule.config, step),
    "plateau": lambda schedule, step, progress: schedule.plateau_scale,
    "cosine": _cosine,
}
