"""What the whole-sequence supervised tasks share: fixed validation and test sets, and plain BPTT.

Every training batch holds complete sequences, so the loss returns no state to carry and
the gradient flows through all T steps (backpropagation through time, not truncated).
A task says how to score a batch (``score``) and which baseline to beat; this file
evaluates in chunks, reports, and writes the test metrics into summary.json.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass

import torch

from rnnkit.data.streams import Window
from rnnkit.errors import UserError
from rnnkit.tasks.base import Session, Task

EVALUATION_CHUNK = 500  # sequences per forward pass when evaluating


@dataclass
class LabelledSet:
    inputs: torch.Tensor  # (T, N, ...)
    targets: torch.Tensor  # (N, ...) one per sequence, or (T, N) with per_step
    per_step: bool = False

    def chunks(self, size: int = EVALUATION_CHUNK):
        for start in range(0, self.inputs.shape[1], size):
            rows = slice(start, start + size)
            yield self.inputs[:, rows], (self.targets[:, rows] if self.per_step else self.targets[rows])


class SequenceSession(Session):
    """A model scored on whole sequences; subclasses define ``score``, ``baseline`` and ``report``."""

    def __init__(self, model: torch.nn.Module, device: torch.device, validation: LabelledSet | None = None,
                 test: LabelledSet | None = None, batches=None) -> None:
        self.model, self.device = model.to(device), device
        self.validation, self.test, self.batches = validation, test, batches

    @abstractmethod
    def score(self, network, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Mean loss over the batch (a tensor to differentiate) and other metrics, each a batch mean."""

    @abstractmethod
    def baseline(self) -> dict[str, float]:
        """What a model that has learnt nothing useful scores on the test set."""

    def task_state(self) -> dict:
        return {}

    def loss(self, network, window, state):
        inputs, targets = window.inputs.to(self.device), window.targets.to(self.device)
        loss, _ = self.score(network, inputs, targets)
        return loss, None, inputs.shape[1]  # whole sequences: nothing to carry

    def evaluate(self, model, data: LabelledSet | None = None) -> dict[str, float]:
        """Metrics averaged over every sequence of ``data`` (default: the validation set)."""
        data = data or self.validation
        totals: dict[str, float] = {}
        count = 0
        for inputs, targets in data.chunks():
            loss, metrics = self.score(model, inputs.to(self.device), targets.to(self.device))
            size = inputs.shape[1]
            for name, value in {"loss": float(loss), **metrics}.items():
                totals[name] = totals.get(name, 0.0) + value * size
            count += size
        return {name: total / count for name, total in totals.items()}

    def inspection_batch(self, size: int, length: int | None = None) -> Window:
        """The first ``size`` test sequences (the task fixes their length)."""
        inputs, targets = next(self.test.chunks(size))
        return Window(inputs, targets, starts_epoch=True)

    def test_summary(self) -> dict:
        self.model.eval()
        with torch.no_grad():
            return {"test": self.evaluate(self.model, self.test), "baseline": self.baseline()}


class SequenceTask(Task):
    unit = "seq"

    def restore(self, config, task_state: dict, device: torch.device) -> SequenceSession:
        return self.start(config, None, device, with_training_data=False)

    def evaluate_text(self, session: SequenceSession, path: str | None) -> dict[str, float]:
        """``rnnkit evaluate``: metrics on the task's fixed test set."""
        if path is not None:
            raise UserError(f"--data: task {self.name!r} evaluates on its own test set and reads no data file; drop --data")
        return session.test_summary()["test"]

    @abstractmethod
    def start(self, config, context, device: torch.device, with_training_data: bool = True) -> SequenceSession:
        """Build the model and the fixed evaluation sets (and the training batches, unless restoring)."""
