"""Whole-sequence batching: fresh random batches (synthetic tasks) and shuffled epochs (datasets).

Both give the trainer what ``TokenStreams`` gives it (``rnnkit.data.batch.Batches``), but
every batch holds complete sequences, so no state is carried from one batch to the next:
training is plain BPTT over the whole sequence.
Their reading position is a pair of counters, so a resumed run draws exactly the batches
it would have drawn.
"""

from __future__ import annotations

from typing import Callable

import numpy
import torch

from rnnkit.data.batch import Batch

Sampler = Callable[[int, torch.Generator], tuple[torch.Tensor, torch.Tensor]]  # (count, generator) -> (inputs, targets)


class SampledBatches:
    """A new batch from ``sample`` at every step; ``epoch_size`` sequences make a nominal epoch.

    Global batch k (``batch_size`` x ``world_size`` sequences) comes from its own generator seeded
    by (seed, 0, k); every process draws it and takes its rows ``rank::world_size``, so N processes
    train on what one process with the global batch trains on, and any batch can be redrawn after
    a restart. (The 0 is where the rank was when each process drew its own batch: one process
    draws what it always drew.)
    """

    def __init__(self, sample: Sampler, batch_size: int, epoch_size: int, seed: int, rank: int = 0,
                 world_size: int = 1, per_step: bool = False) -> None:
        self.sample, self.batch_size, self.epoch_size = sample, batch_size, epoch_size
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.per_step = per_step  # targets (T, N) a step each, else (N, ...) one per sequence
        self.drawn = 0  # batches drawn so far

    def next_batch(self) -> Batch:
        entropy = numpy.random.SeedSequence([self.seed, 0, self.drawn]).generate_state(2, numpy.uint64)[0]
        generator = torch.Generator().manual_seed(int(entropy) >> 1)
        inputs, targets = self.sample(self.batch_size * self.world_size, generator)
        self.drawn += 1
        rows = slice(self.rank, None, self.world_size)
        targets = targets[:, rows] if self.per_step else targets[rows]
        return Batch(inputs[:, rows], targets, starts_epoch=True)  # every batch is whole sequences

    def epoch_progress(self) -> float:
        return self.drawn * self.batch_size / self.epoch_size

    def state_dict(self) -> dict:
        return {"drawn": self.drawn}

    def load_state_dict(self, state: dict) -> None:
        self.drawn = int(state["drawn"])


class EpochPosition:
    """The reading position in epochs of ``batches_per_epoch`` batches each: what a checkpoint saves of a
    batcher that goes over a fixed data set (``ShuffledBatches``, ``SentenceBatches``)."""

    batches_per_epoch: int
    epoch: int = 0
    position: int = 0  # batches read in this epoch

    def advance(self) -> None:
        self.position += 1
        if self.position == self.batches_per_epoch:
            self.epoch, self.position = self.epoch + 1, 0

    def epoch_progress(self) -> float:
        return self.epoch + self.position / self.batches_per_epoch

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])


class ShuffledRows(EpochPosition):
    """Epochs over ``count`` items in a new random order each time, the last short batch dropped: which items
    each batch holds. Every process shuffles with the same seed and takes its own rows of each global batch
    (rows ``rank::world_size``)."""

    def __init__(self, count: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.global_batch = batch_size * world_size
        if count < self.global_batch:
            raise ValueError(f"{count} sequences cannot fill one batch of {self.global_batch}")
        self.count, self.seed, self.rank, self.world_size = count, seed, rank, world_size
        self.batches_per_epoch = count // self.global_batch

    def next_rows(self) -> torch.Tensor:
        """The items of this process's share of the next batch, and the reading position moved past it."""
        order = torch.randperm(self.count, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        start = self.position * self.global_batch
        self.advance()
        return order[start : start + self.global_batch][self.rank :: self.world_size]


class ShuffledBatches(ShuffledRows):
    """Shuffled epochs over ``inputs`` (T, N, ...) and ``targets`` (N, ...)."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor, batch_size: int, seed: int,
                 rank: int = 0, world_size: int = 1) -> None:
        super().__init__(inputs.shape[1], batch_size, seed, rank, world_size)
        self.inputs, self.targets = inputs, targets

    def next_batch(self) -> Batch:
        rows = self.next_rows()
        return Batch(self.inputs[:, rows], self.targets[rows], starts_epoch=True)
