"""Batches of whole sentences of different lengths: shuffled and bucketed for training, sorted for evaluation.

Each batch is padded only to its own longest sentence, and its ``lengths`` tell the model
where each ends (``Batch.lengths``). Training epochs (``SentenceBatches``) shuffle the
sentences, sort them by length within pools of ``POOL`` batches and serve those batches in a
shuffled order, as torchtext's BucketIterator did: batches of similar lengths waste little
on padding, and their order still changes every epoch::

    shuffled:    [7 2 9 4 | 3 8 1 5 | ...]  one pool = POOL batches of sentences
    sorted pool: [2 4 7 9 | 1 3 5 8 | ...]  by length within the pool, cut into batches
    served:      the pools' batches, in a shuffled order

A target is one per sentence (a class: a 0-dimensional tensor) or one per token (tags: an
(L,) tensor; the next frame of a piano roll: an (L, 88) tensor); per-token targets are padded
with 0, which ``lengths`` masks.
"""

from __future__ import annotations

import torch

from rnnkit.data.batch import Batch
from rnnkit.data.whole_sequences import EpochPosition
from rnnkit.data.token_features import pad_sentences

POOL = 50  # batches sorted together by length


def collate(sentences: list[torch.Tensor], targets: list[torch.Tensor] | None) -> Batch:
    """One padded batch: inputs (T, B, F), lengths (B,), targets (B,) or (T, B, ...)."""
    inputs, lengths = pad_sentences(sentences)
    if targets is None:
        return Batch(inputs, None, lengths, starts_epoch=True)
    if targets[0].dim() == 0:
        return Batch(inputs, torch.stack(targets), lengths, starts_epoch=True)
    padded = torch.zeros(inputs.shape[0], len(targets), *targets[0].shape[1:], dtype=targets[0].dtype)
    for column, per_token in enumerate(targets):
        padded[: per_token.shape[0], column] = per_token
    return Batch(inputs, padded, lengths, starts_epoch=True)


def batches_by_length(sentences: list[torch.Tensor], targets: list[torch.Tensor] | None, size: int):
    """(indices, batch) pairs covering every sentence once, shortest first: for evaluation and prediction,
    where the order does not matter or is restored from ``indices``."""
    order = sorted(range(len(sentences)), key=lambda index: sentences[index].shape[0])
    for start in range(0, len(order), size):
        indices = order[start : start + size]
        yield indices, collate([sentences[i] for i in indices], None if targets is None else [targets[i] for i in indices])


class SentenceBatches(EpochPosition):
    """Training epochs over ``sentences`` and their ``targets``; the last short batch of an epoch is dropped.

    Every process shuffles with the same seed and takes its own rows of each global batch.
    """

    def __init__(self, sentences: list[torch.Tensor], targets: list[torch.Tensor], batch_size: int, seed: int,
                 rank: int = 0, world_size: int = 1) -> None:
        self.global_batch = batch_size * world_size
        if len(sentences) < self.global_batch:
            raise ValueError(f"{len(sentences)} sentences cannot fill one batch of {self.global_batch}")
        self.sentences, self.targets = sentences, targets
        self.lengths = torch.tensor([sentence.shape[0] for sentence in sentences])
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.batches_per_epoch = len(sentences) // self.global_batch
        self._plan: tuple[int, list[torch.Tensor]] | None = None  # (epoch, its batches' sentence indices)

    def _batches_of_epoch(self) -> list[torch.Tensor]:
        if self._plan is None or self._plan[0] != self.epoch:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(len(self.sentences), generator=generator)
            order = order[: self.batches_per_epoch * self.global_batch]  # the short rest waits for another epoch
            batches = []
            for pool in order.split(POOL * self.global_batch):
                pool = pool[torch.argsort(self.lengths[pool], stable=True)]
                batches += list(pool.split(self.global_batch))
            served = torch.randperm(len(batches), generator=generator)
            self._plan = (self.epoch, [batches[i] for i in served])
        return self._plan[1]

    def next_batch(self) -> Batch:
        rows = self._batches_of_epoch()[self.position][self.rank :: self.world_size].tolist()
        self.advance()
        return collate([self.sentences[i] for i in rows], [self.targets[i] for i in rows])
