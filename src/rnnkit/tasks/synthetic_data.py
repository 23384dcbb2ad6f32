"""Options shared by the synthetic memory tasks (adding, copy): sequence length and set sizes.

Validation and test sets are drawn from fixed seeds, the same in every run whatever
--seed says, so runs with different seeds and cells are compared on the same sequences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from rnnkit.data.whole_sequences import SampledBatches, Sampler
from rnnkit.errors import UserError
from rnnkit.tasks.fixed_sets import LabelledSet
from rnnkit.train.config import TrainConfig
from rnnkit.train.distributed import Distributed

VALIDATION_SEED, TEST_SEED = 1, 2


def synthetic_train_config() -> TrainConfig:
    """The training preset of the synthetic tasks. fp32: the point is a signal kept over up to
    a thousand steps, and bf16 autocast would round the state at every one of them."""
    return TrainConfig(batch_size=50, lr=1e-3, max_minutes=3.0, eval_every=250, precision="fp32")


@dataclass
class SyntheticData:
    """Options of the synthetic memory tasks (adding, copy)."""

    seq_len: int = 100
    """T: the span to remember."""
    test_size: int = 1000
    """Sequences in the fixed test set."""
    validation_size: int = 500
    """Sequences in the fixed validation set (checkpoints and early stopping)."""
    epoch_size: int = 10000
    """Fresh sequences that count as one epoch (for --epochs)."""

    minimum_length: ClassVar[int] = 1
    task_description: ClassVar[str] = "the task"

    def validate(self) -> None:
        if self.seq_len < self.minimum_length:
            raise UserError(f"--seq-len: {self.task_description} needs at least {self.minimum_length} steps, got {self.seq_len}")
        for name in ("test_size", "validation_size", "epoch_size"):
            if getattr(self, name) <= 0:
                raise UserError(f"--{name.replace('_', '-')}: expected a positive integer, got {getattr(self, name)}")

    def fixed_sets(self, sample: Sampler, per_step: bool = False) -> tuple[LabelledSet, LabelledSet]:
        """The validation and test sets: the same sequences in every run."""
        return tuple(LabelledSet(*sample(size, torch.Generator().manual_seed(seed)), per_step=per_step)
                     for size, seed in ((self.validation_size, VALIDATION_SEED), (self.test_size, TEST_SEED)))

    def training_batches(self, sample: Sampler, train: TrainConfig, context: Distributed,
                         per_step: bool = False) -> SampledBatches:
        """Fresh sequences at every step, seeded by --seed and the step; each process reads its rows of them."""
        return SampledBatches(sample, train.batch_size, self.epoch_size, train.seed, context.rank, context.world_size,
                              per_step)
