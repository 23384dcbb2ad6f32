"""What the whole-sequence supervised tasks share: fixed validation and test sets, and plain BPTT.

Every training batch holds complete sequences, so a training step returns no state to carry
and the gradient flows through all T steps (backpropagation through time, not truncated).
The model owns its loss; a task says which other metrics to compute from the model's outputs
(``metrics``) and which baseline to beat. This file evaluates in chunks, reports, writes the
test metrics into summary.json, and gives every such task the ``evaluate`` command.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass

import torch

from rnnkit.data.batch import Batch
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

    def __init__(self, model: torch.nn.Module, device: torch.device, validation: LabelledSet | None = None,
                 test: LabelledSet | None = None, batches=None) -> None:
        self.model, self.device = model.to(device), device
        self.validation, self.test, self.batches = validation, test, batches

    @abstractmethod
    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """Metrics besides the loss, each a mean over the batch, from the model's outputs."""

    @abstractmethod
    def baseline(self) -> dict[str, float]:
        """What a model that has learnt nothing useful scores on the test set."""

    def task_state(self) -> dict:
        return {}

    def score(self, network, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """The model's mean loss on ``batch`` (a tensor to differentiate) and the other metrics."""
        batch = batch.to(self.device)
        outputs, loss, _ = network(batch.inputs, lengths=batch.lengths, targets=batch.targets)
        return loss, self.metrics(outputs, batch.targets)

    def training_step(self, network, batch, state):
        batch = batch.to(self.device)
        _, loss, _ = network(batch.inputs, lengths=batch.lengths, targets=batch.targets)  # no metrics: nobody reads them
        return loss, None, batch.size  # whole sequences: nothing to carry

    def evaluate(self, model, data: LabelledSet | None = None) -> dict[str, float]:
        """Metrics averaged over every sequence of ``data`` (default: the validation set)."""
        data = data or self.validation
        totals: dict[str, float] = {}
        count = 0
        for batch in data.chunks():
            loss, metrics = self.score(model, batch)
            for name, value in {"loss": float(loss), **metrics}.items():
                totals[name] = totals.get(name, 0.0) + value * batch.size
            count += batch.size
        return {name: total / count for name, total in totals.items()}

    # rnnkit inspect (rnnkit.inspect.source.Inspectable)
    def inspection_batch(self, size: int, length: int | None = None) -> Batch:
        """The first ``size`` test sequences (the task fixes their length)."""
        return next(self.test.chunks(size))

    def step_labels(self, batch: Batch) -> None:
        return None  # the steps are numbers, not text to draw a unit over

    def test_summary(self) -> dict:
        self.model.eval()
        with torch.no_grad():
            return {"test": self.evaluate(self.model, self.test), "baseline": self.baseline()}


def evaluate_test_set(session: SequenceSession, options: CheckpointOptions) -> None:
    """``rnnkit evaluate``: the task's metrics on its fixed test set."""
    print(session.report(session.test_summary()["test"], label="evaluation"))


EVALUATE = Command("metrics of the trained model on the task's fixed test set", CheckpointOptions, evaluate_test_set)


class SequenceTask(Task):
    unit = "seq"
    commands = {"evaluate": EVALUATE}

    def restore(self, config, task_state: dict, device: torch.device) -> SequenceSession:
        return self.start(config, None, device, with_training_data=False)

    @abstractmethod
    def start(self, config, context, device: torch.device, with_training_data: bool = True) -> SequenceSession:
        """Build the model and the fixed evaluation sets (and the training batches, unless restoring)."""
