"""Options shared by the synthetic memory tasks (adding, copy): sequence length and set sizes.

Validation and test sets are drawn from fixed seeds, the same in every run whatever
--seed says, so runs with different seeds and cells are compared on the same sequences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from rnnkit.data.batches import Sampler
from rnnkit.errors import UserError
from rnnkit.tasks.sequence_task import LabelledSet

VALIDATION_SEED, TEST_SEED = 1, 2


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

    def fixed_set(self, sample: Sampler, size: int, seed: int, per_step: bool = False) -> LabelledSet:
        """A validation or test set: the same sequences in every run."""
        return LabelledSet(*sample(size, torch.Generator().manual_seed(seed)), per_step=per_step)
