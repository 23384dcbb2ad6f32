"""The training contract: what the trainer needs from a task, and nothing else.

A ``Session`` is one task set up for training or for use: a model that owns its loss,
training batches, one training step, and an evaluation that names the metric to monitor
and whether higher or lower is better. Everything else a task can do with a trained model
(generate, predict, evaluate a file) is a command in its task's table (``rnnkit.tasks``),
not a method here.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from rnnkit.data.batch import Batch, Batches


@dataclass(frozen=True)
class Monitor:
    """The validation metric that early stopping, the plateau schedule and the best result follow."""

    metric: str = "loss"  # a key of Session.evaluate()'s result
    mode: str = "min"  # "min": lower is better (a loss); "max": higher is better (accuracy, F1, BLEU)

    def __post_init__(self) -> None:
        if self.mode not in ("min", "max"):
            raise ValueError(f"mode: expected 'min' or 'max', got {self.mode!r}")

    @property
    def worst(self) -> float:
        return math.inf if self.mode == "min" else -math.inf

    def improved(self, value: float, best: float) -> bool:
        return value < best if self.mode == "min" else value > best


class Session(ABC):
    """A task's model and data, set up for the trainer (and, restored from a checkpoint, for its commands)."""

    model: torch.nn.Module
    batches: Batches | None  # training batches; None in a session restored for use
    device: torch.device
    monitor: ClassVar[Monitor] = Monitor("loss", "min")
    unit: ClassVar[str] = "seq"  # what a training step counts (seq, sent, char, word, window, frame): throughput

    @abstractmethod
    def task_state(self) -> dict:
        """JSON-able data that, with the configuration, rebuilds this session from a checkpoint (a vocabulary)."""

    def training_step(self, network, batch: Batch, state) -> tuple[torch.Tensor, object, int]:
        """The mean loss of ``batch`` (to differentiate), the state to carry into the next batch, and the number
        of units it counts (``units_in``) for throughput.

        ``network`` is the model, or its DistributedDataParallel wrapper: call it, not ``self.model``.
        ``state`` is what the previous step returned (None at first and after a skipped step). This one is
        for batches of whole sequences: the model's loss, nothing carried (backpropagation through the whole
        sequence). A task that carries state (truncated BPTT) returns it detached.
        """
        batch = batch.to(self.device)
        _, loss, _ = network(batch.inputs, None, lengths=batch.lengths, targets=batch.targets, **batch.extras)
        return loss, None, self.units_in(batch)

    def units_in(self, batch: Batch) -> int:
        """How many of the session's units (``unit``) ``batch`` holds: one per sequence, unless the unit is smaller."""
        return batch.size

    def loss_terms(self, batch: Batch) -> int:
        """How many terms the model's loss on ``batch`` is the mean of: one per sequence here; a loss per target
        word or per frame says so. Several processes weight their losses by it, so that training on N shards of a
        batch averages over the batch's terms as one process would (``Trainer``)."""
        return batch.size

    @abstractmethod
    def evaluate(self, model) -> dict[str, float]:
        """Validation metrics, including ``monitor.metric``."""

    def report(self, metrics: dict[str, float], label: str = "validation") -> str:
        """One line of metrics on the data set named by ``label`` (validation, test, evaluation)."""
        return f"{label} loss {metrics['loss']:.4f}"

    def test_summary(self) -> dict:
        """Entries for summary.json once training ends, beside the trainer's ("test", "baseline", ...); they may not
        replace the trainer's own ("validation" is the monitored evaluation of the kept model)."""
        return {}

    def write_files(self, folder: Path) -> list[Path]:
        """Files to add to the run folder once test_summary has run (figures, confusion matrices); the paths written."""
        return []

    def finish(self) -> str:
        """Text to print when training ends (a sample, for generative tasks); empty for most."""
        return ""
