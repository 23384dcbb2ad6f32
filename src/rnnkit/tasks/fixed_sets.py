"""What the tasks scored on fixed labelled sets of whole sequences share (adding, copy, digits).

Every training batch holds complete sequences, so the training step is the session's default:
no state carried, the gradient flows through all T steps (backpropagation through time, not
truncated). The model owns its loss; a task says which other metrics to compute from the
model's outputs (``metrics``) and which baseline to beat. This file evaluates in chunks,
reports, writes the test metrics into summary.json, and gives every such task the
``evaluate`` command.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Protocol

import torch

from rnnkit.data.batch import Batch
from rnnkit.layers import Recurrent
from rnnkit.tasks.base import CheckpointOptions, Command, Task
from rnnkit.train.session import Session

EVALUATION_CHUNK = 500  # sequences per forward pass when evaluating


@dataclass
class LabelledSet:
    inputs: torch.Tensor  # (T, N, ...)
    targets: torch.Tensor  # (N, ...) one per sequence, or (T, N) with per_step
    per_step: bool = False

    def chunks(self, size: int = EVALUATION_CHUNK):
        """The set as batches of at most ``size`` sequences, in order."""
        for start in range(0, self.inputs.shape[1], size):
            rows = slice(start, start + size)
            yield Batch(self.inputs[:, rows], self.targets[:, rows] if self.per_step else self.targets[rows],
                        starts_epoch=True)


class SequenceSession(Session):
    """A model scored on whole sequences; subclasses define ``metrics``, ``baseline`` and ``report``."""

    def __init__(self, config, model: torch.nn.Module, device: torch.device, validation: LabelledSet,
                 test: LabelledSet, batches=None) -> None:
        self.config, self.model, self.device = config, model.to(device), device
        self.validation, self.test, self.batches = validation, test, batches

    @abstractmethod
    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """Metrics besides the loss, each a mean over the batch, from the model's outputs."""

    @abstractmethod
    def baseline(self) -> dict[str, float]:
        """What a model that has learnt nothing useful scores on the test set."""

    def task_state(self) -> dict:
        return {}

    def evaluate(self, model, data: LabelledSet | None = None) -> dict[str, float]:
        """Metrics averaged over every sequence of ``data`` (default: the validation set)."""
        data = data or self.validation
        totals: dict[str, float] = {}
        count = 0
        for batch in data.chunks():
            batch = batch.to(self.device)
            outputs, loss, _ = model(batch.inputs, lengths=batch.lengths, targets=batch.targets)
            for name, value in {"loss": float(loss), **self.metrics(outputs, batch.targets)}.items():
                totals[name] = totals.get(name, 0.0) + value * batch.size
            count += batch.size
        return {name: total / count for name, total in totals.items()}

    def test_summary(self) -> dict:
        self.model.eval()
        with torch.no_grad():
            return {"test": self.evaluate(self.model, self.test), "baseline": self.baseline()}

    # rnnkit inspect (rnnkit.inspect.source.Inspectable)
    def recurrent_layers(self) -> Recurrent:
        return self.model.rnn

    def inspection_batch(self, size: int, length: int | None = None) -> Batch:
        """The first ``size`` test sequences (the task fixes their length)."""
        return next(self.test.chunks(size))

    def step_labels(self, batch: Batch) -> None:
        return None  # the steps are numbers, not text to draw a unit over


class TestSetEvaluator(Protocol):
    """What ``rnnkit evaluate`` on a fixed test set needs from a session."""

    def test_summary(self) -> dict: ...

    def report(self, metrics: dict[str, float], label: str) -> str: ...


def evaluate_test_set(session: TestSetEvaluator, options: CheckpointOptions) -> None:
    """``rnnkit evaluate``: the task's metrics on its fixed test set."""
    print(session.report(session.test_summary()["test"], label="evaluation"))


EVALUATE = Command("metrics of the trained model on the task's fixed test set", CheckpointOptions, evaluate_test_set,
                   TestSetEvaluator)


class SequenceTask(Task):
    commands = {"evaluate": EVALUATE}

    def restore(self, config, task_state: dict, device: torch.device) -> SequenceSession:
        return self.start(config, None, device, with_training_data=False)

    @abstractmethod
    def start(self, config, context, device: torch.device, with_training_data: bool = True) -> SequenceSession:
        """Build the model and the fixed evaluation sets (and the training batches, unless restoring)."""
