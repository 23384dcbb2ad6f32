"""Batches of sentence pairs (source, target) of similar lengths, sized by tokens rather than by sentences.

Sorting pairs by length and cutting the sorted list where a batch would pass ``max_tokens``
(counted as fairseq and OpenNMT do: sentences × the longer side's padded length), or where it
would pass ``max_sentences``, keeps padding small and the work per step about even: many short
sentences or a few long ones.
The batches are cut once per run (ties in length broken by a seeded shuffle) and served in a
new random order every epoch, as fairseq does, so an epoch always has the same number of
batches and a resumed run reads what it would have read::

    pairs sorted by (source, target) length:   [2 2 3 3 3 4 | 5 5 6 6 | 9 11 | ...]
    epoch e serves them shuffled with seed + e: [5 5 6 6] [2 2 3 3 3 4] [9 11] ...

A batch's ``inputs`` are the source ids (S, B) with ``lengths``; its ``targets`` (T + 1, B)
hold ``<bos>`` y_1 .. y_n ``<eos>`` then padding (0).
"""

from __future__ import annotations

import torch

from rnnkit.data.batch import Batch
from rnnkit.data.whole_sequences import EpochPosition


def collate_pairs(sources: list[torch.Tensor], targets: list[torch.Tensor] | None,
                  references: list | None = None) -> Batch:
    """Source (S_i,) and target (T_i,) id tensors (and the targets' reference texts) -> one padded batch."""
    lengths = torch.tensor([len(source) for source in sources])
    inputs = torch.nn.utils.rnn.pad_sequence(sources)  # (S, B), 0-padded
    padded = None if targets is None else torch.nn.utils.rnn.pad_sequence(targets)
    return Batch(inputs, padded, lengths, starts_epoch=True, references=references)


def pairs_by_length(sources: list[torch.Tensor], targets: list[torch.Tensor] | None, size: int,
                    references: list | None = None):
    """(indices, batch) pairs covering every pair once, ``size`` at a time, shortest source first: for evaluation and
    translation, where the order does not matter or is restored from ``indices``."""
    order = sorted(range(len(sources)), key=lambda index: len(sources[index]))
    for start in range(0, len(order), size):
        indices = order[start : start + size]
        yield indices, collate_pairs([sources[i] for i in indices],
                                     None if targets is None else [targets[i] for i in indices],
                                     None if references is None else [references[i] for i in indices])


def cut_by_tokens(lengths: list[int], max_tokens: int, max_sentences: int) -> list[list[int]]:
    """Consecutive runs of at most ``max_sentences`` indices whose count × longest length stays within
    ``max_tokens`` (a longer single item gets a batch of its own)."""
    batches, current, longest = [], [], 0
    for index, length in enumerate(lengths):
        if current and ((len(current) + 1) * max(longest, length) > max_tokens or len(current) == max_sentences):
            batches.append(current)
            current, longest = [], 0
        current.append(index)
        longest = max(longest, length)
    if current:
        batches.append(current)
    return batches


class PairBatches(EpochPosition):
    """Training epochs over pairs, at most ``max_tokens`` tokens and ``max_sentences`` pairs per global batch;
    each process takes its rows ``rank::world_size``."""

    def __init__(self, sources: list[torch.Tensor], targets: list[torch.Tensor], max_tokens: int, max_sentences: int,
                 seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.sources, self.targets = sources, targets
        self.seed, self.rank, self.world_size = seed, rank, world_size
        tie_break = torch.randperm(len(sources), generator=torch.Generator().manual_seed(seed)).tolist()
        order = sorted(range(len(sources)), key=lambda i: (len(sources[i]), len(targets[i]), tie_break[i]))
        sizes = [max(len(sources[i]), len(targets[i])) for i in order]
        self.batches = [[order[position] for position in batch] for batch in cut_by_tokens(sizes, max_tokens, max_sentences)
                        if len(batch) >= world_size]  # every process needs a row
        if not self.batches:
            raise ValueError(f"no batch of {max_tokens} tokens holds a pair for each of {world_size} processes")
        self.batches_per_epoch = len(self.batches)

    def next_batch(self) -> Batch:
        order = torch.randperm(len(self.batches), generator=torch.Generator().manual_seed(self.seed + self.epoch))
        rows = self.batches[int(order[self.position])][self.rank :: self.world_size]
        self.advance()
        return collate_pairs([self.sources[i] for i in rows], [self.targets[i] for i in rows])
