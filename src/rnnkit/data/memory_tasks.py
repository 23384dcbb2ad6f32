"""Synthetic long-term-memory benchmarks: the adding problem and the copy-memory task.

Each generator draws a fresh batch from a ``torch.Generator``, so a seed fixes a test set
and training can draw new sequences at every step. Nothing here knows about models.

Adding problem (Hochreiter & Schmidhuber 1997; format of Le et al. 2015 and Li et al. 2018)::

    step:      0    1    2  ...  T/2 ...  T-1
    values:   .31  .87  .05 ...  .66 ...  .12       ~ U(0, 1)
    markers:   0    1    0  ...   0  ...   1        one 1 in [0, T/2), one in [T/2, T)
    target:   .87 + .12 (the sum of the two marked values), read after the last step

Copy memory (Arjovsky et al. 2016), T + 20 steps::

    input:   s1 .. s10  0 0 .. 0 (T-1 blanks)  9 (delimiter)  0 .. 0 (10 blanks)
    target:  0 0 .. 0 (T + 10 blanks)                          s1 .. s10

with symbols s_i drawn from {1, .., 8}.
"""

from __future__ import annotations

import math

import torch

ADDING_MIN_LENGTH = 2  # one marker in each half
ADDING_BASELINE_MSE = 1.0 / 6.0  # always answering 1 = E[sum]: the variance of a sum of two U(0, 1)

COPY_SYMBOLS = 8  # symbols 1..8 to remember
COPY_LENGTH = 10  # how many of them
COPY_BLANK, COPY_DELIMITER = 0, COPY_SYMBOLS + 1
COPY_VOCABULARY = COPY_SYMBOLS + 2  # blank, 8 symbols, delimiter (inputs)
COPY_CLASSES = COPY_SYMBOLS + 1  # blank and 8 symbols (targets)
COPY_MIN_LENGTH = 1


def adding_problem(count: int, seq_len: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` adding-problem sequences: inputs (T, count, 2), targets (count,)."""
    values = torch.rand(seq_len, count, generator=generator)
    half = seq_len // 2
    first = torch.randint(0, half, (count,), generator=generator)
    second = torch.randint(half, seq_len, (count,), generator=generator)
    markers = torch.zeros(seq_len, count)
    columns = torch.arange(count)
    markers[first, columns] = 1.0
    markers[second, columns] = 1.0
    targets = values[first, columns] + values[second, columns]
    return torch.stack([values, markers], dim=-1), targets


def copy_memory(count: int, seq_len: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` copy-task sequences: input tokens (T + 20, count), target classes (T + 20, count)."""
    symbols = torch.randint(1, COPY_SYMBOLS + 1, (COPY_LENGTH, count), generator=generator)
    total = seq_len + 2 * COPY_LENGTH
    inputs = torch.full((total, count), COPY_BLANK, dtype=torch.long)
    targets = torch.full((total, count), COPY_BLANK, dtype=torch.long)
    inputs[:COPY_LENGTH] = symbols
    inputs[COPY_LENGTH + seq_len - 1] = COPY_DELIMITER
    targets[-COPY_LENGTH:] = symbols
    return inputs, targets


def copy_memoryless_baseline(seq_len: int) -> float:
    """Cross-entropy per step (nats) of a model that knows the format but remembers nothing:
    blanks are certain, each of the last 10 symbols is a guess among 8."""
    return COPY_LENGTH * math.log(COPY_SYMBOLS) / (seq_len + 2 * COPY_LENGTH)
