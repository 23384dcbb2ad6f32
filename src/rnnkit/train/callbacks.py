"""What the fit loop can be extended with, without a flag in it: callbacks at fixed points of a step.

``ApplyConstraints`` keeps constrained parameters in their sets after each update (IndRNN's
|u| ≤ 2^(1/t_max)). Two faults can be injected through the environment, for the tests:
``InjectNonfinite`` makes chosen steps non-finite (the guard against them), ``KillAtStep``
kills the process with SIGKILL after a chosen step (resumption, at a step the test chooses
rather than a time it races against). ``standard_callbacks`` is what ``rnnkit train`` adds to
every run.
"""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING

import torch

from rnnkit.layers import apply_constraints

if TYPE_CHECKING:
    from rnnkit.train.trainer import Trainer

INJECT_SWITCH = "RNNKIT_INJECT_NONFINITE"  # "5,6": the losses of steps 5 and 6 become NaN
KILL_SWITCH = "RNNKIT_KILL_AT_STEP"  # "7": the process kills itself after step 7 (before that step's evaluation)


class Callback:
    def on_start(self, trainer: Trainer) -> None: ...
    def on_loss(self, trainer: Trainer, step: int, loss: torch.Tensor) -> torch.Tensor:
        """The loss of step ``step`` (counted from 1) before its backward; return it, or a replacement."""
        return loss
    def on_update(self, trainer: Trainer) -> None:
        """After the optimiser has changed the parameters (finite steps only)."""
    def on_step(self, trainer: Trainer, record: dict) -> None: ...
    def on_evaluate(self, trainer: Trainer, record: dict) -> None: ...
    def on_end(self, trainer: Trainer, summary: dict) -> None: ...
    def on_abort(self, trainer: Trainer) -> None: ...


class ApplyConstraints(Callback):
    """Project every cell's parameters back onto their constraint set after each update."""

    def on_update(self, trainer: Trainer) -> None:
        apply_constraints(trainer.model)


class InjectNonfinite(Callback):
    """Replace the loss of the given steps with NaN, so that the non-finite guard runs end to end."""

    def __init__(self, steps: set[int]) -> None:
        self.steps = steps

    @classmethod
    def from_environment(cls) -> InjectNonfinite | None:
        steps = {int(part) for part in os.environ.get(INJECT_SWITCH, "").split(",") if part.strip()}
        return cls(steps) if steps else None

    def on_loss(self, trainer: Trainer, step: int, loss: torch.Tensor) -> torch.Tensor:
        return loss * float("nan") if step in self.steps else loss


class KillAtStep(Callback):
    """SIGKILL this process once step ``step`` is done: no handler runs, no file is closed, as when a machine dies."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step(self, trainer: Trainer, record: dict) -> None:
        if record["step"] == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def standard_callbacks() -> tuple[Callback, ...]:
    """The callbacks of every 'rnnkit train' run: constraints, and fault injection where the environment asks."""
    injection = InjectNonfinite.from_environment()
    kill = [KillAtStep(int(os.environ[KILL_SWITCH]))] if os.environ.get(KILL_SWITCH) else []
    return (ApplyConstraints(),) + ((injection,) if injection else ()) + tuple(kill)
