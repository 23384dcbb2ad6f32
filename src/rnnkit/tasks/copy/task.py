"""``copy``: the copy-memory task (Arjovsky et al. 2016), many-to-many over T + 20 steps.

Ten symbols from 8, T-1 blanks, a delimiter, ten blanks: the model must output blanks
until the delimiter and then repeat the ten symbols (format in ``rnnkit.data.memory_tasks``).
The loss is the cross-entropy over all T + 20 steps; a model that knows the format but
remembers nothing scores 10 ln 8 / (T + 20). Inputs are one-hot over the 10 input tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch

from rnnkit.data.memory_tasks import (COPY_CLASSES, COPY_LENGTH, COPY_MIN_LENGTH, COPY_VOCABULARY, copy_memory,
                                      copy_memoryless_baseline)
from rnnkit.metrics import recall_metrics
from rnnkit.models import RecurrentConfig, SequenceModel
from rnnkit.tasks.base import RunConfig
from rnnkit.tasks.fixed_sets import SequenceSession, SequenceTask
from rnnkit.tasks.synthetic_data import SyntheticData, synthetic_train_config
from rnnkit.train.config import TrainConfig


@dataclass
class CopyData(SyntheticData):
    minimum_length: ClassVar[int] = COPY_MIN_LENGTH
    task_description: ClassVar[str] = "the copy task"


@dataclass
class CopyConfig(RunConfig):
    model: RecurrentConfig = field(default_factory=lambda: RecurrentConfig(cell="lstm", hidden_size=128))
    train: TrainConfig = field(default_factory=synthetic_train_config)
    dataset: CopyData = field(default_factory=CopyData)


class CopySession(SequenceSession):
    @property
    def seq_len(self) -> int:
        return self.config.dataset.seq_len

    def metrics(self, outputs, targets):
        return recall_metrics(outputs, targets, COPY_LENGTH)  # the last 10 of the (T + 20, B, 9) logits

    def baseline(self) -> dict[str, float]:
        return {"loss": copy_memoryless_baseline(self.seq_len), "symbol_accuracy": 1 / 8,
                "what": "knows the format, remembers nothing: blanks right, each symbol a guess among 8"}

    def report(self, metrics: dict[str, float], label: str = "validation") -> str:
        return (f"{label} cross-entropy {metrics['loss']:.5f} nats/step (memoryless baseline "
                f"{copy_memoryless_baseline(self.seq_len):.5f}), symbols recalled {metrics['symbol_accuracy']:.1%}")


class CopyTask(SequenceTask):
    name = "copy"
    summary = "copy-memory task (many-to-many, T + 20 steps, --seq-len); cross-entropy against the memoryless baseline"
    config_class = CopyConfig
    session_class = CopySession

    def start(self, config: CopyConfig, context, device, with_training_data: bool = True) -> CopySession:
        data = config.dataset

        def sample(count: int, generator: torch.Generator):
            return copy_memory(count, data.seq_len, generator)

        total_steps = data.seq_len + 2 * COPY_LENGTH
        model = SequenceModel(COPY_VOCABULARY, COPY_CLASSES, config.model, every_step=True, sequence_length=total_steps,
                              token_inputs=True)
        validation, test = data.fixed_sets(sample, per_step=True)
        batches = data.training_batches(sample, config.train, context, per_step=True) if with_training_data else None
        return CopySession(config, model, device, validation, test, batches)
