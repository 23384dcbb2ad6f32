"""Truncated-BPTT batching of one long token sequence into parallel streams.

The sequence is cut into B contiguous streams, one per batch row, and read window by
window, so that the hidden state left by one window is the right starting state for the
next (the word_language_model habit of pytorch/examples)::

    tokens:  a b c d e f g h i j k l m n o p q r s t u v w x      (B = 4 streams)

    stream 0: a b c d e f        window 0 = columns 0..2 (bptt = 3), window 1 = columns 3..5
    stream 1: g h i j k l        targets are the same windows shifted one token to the right
    stream 2: m n o p q r
    stream 3: s t u v w x

With several processes each reads its own rows (streams) of the same global layout, so
N processes with batch B read exactly what one process with batch N·B reads.
"""

from __future__ import annotations

import torch

from rnnkit.data.batch import Batch


class TokenStreams:
    """Consecutive (T, B) windows over ``global_batch`` streams of ``tokens``; rows ``rows`` are this process's."""

    def __init__(self, tokens: torch.Tensor, global_batch: int, bptt: int, rows: slice | None = None) -> None:
        length = (tokens.numel() - 1) // global_batch  # tokens per stream
        if length < 1:
            raise ValueError(f"{tokens.numel()} tokens cannot fill {global_batch} streams")
        used = length * global_batch
        rows = rows or slice(0, global_batch)
        self.inputs = tokens[:used].view(global_batch, length)[rows].t().contiguous()  # (length, B)
        self.targets = tokens[1 : used + 1].view(global_batch, length)[rows].t().contiguous()
        self.bptt = bptt
        self.position = 0  # column of the next window
        self.epoch = 0

    @property
    def stream_length(self) -> int:
        return self.inputs.shape[0]

    def epoch_progress(self) -> float:
        """Epochs done, fractional: 2.5 = half-way through the third pass."""
        return self.epoch + self.position / self.stream_length

    def next_batch(self) -> Batch:
        """The next window: (T, B) inputs and targets; ``starts_epoch`` where the streams restart."""
        starts_epoch = self.position == 0
        end = min(self.position + self.bptt, self.stream_length)
        batch = Batch(self.inputs[self.position : end], self.targets[self.position : end], starts_epoch=starts_epoch)
        self.position = end
        if self.position == self.stream_length:
            self.position, self.epoch = 0, self.epoch + 1
        return batch

    def __iter__(self):
        """One pass over all windows from the start, without touching the reading position."""
        for start in range(0, self.stream_length, self.bptt):
            end = min(start + self.bptt, self.stream_length)
            yield Batch(self.inputs[start:end], self.targets[start:end], starts_epoch=start == 0)

    def state_dict(self) -> dict[str, int]:
        return {"position": self.position, "epoch": self.epoch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.position, self.epoch = int(state["position"]), int(state["epoch"])
