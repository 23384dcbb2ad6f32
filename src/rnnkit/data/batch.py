"""``Batch``: one batch of sequences, what every batcher yields and every model reads.

Time-major, as ``Recurrent``: ``inputs`` is (T, B, ...) — token ids (T, B) for a language
model, features (T, B, F) for the others. ``lengths`` (B,) says how many steps of each
sequence are real where a batch pads sequences of different lengths (the padding is at the
end of each); the models hand it to ``Recurrent``, whose kernels skip the padding.

``Batches`` is what the trainer reads batches from: training data as a stream whose reading
position can be saved and restored, so that a resumed run reads what it would have read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

import torch


@dataclass
class Batch:
    inputs: torch.Tensor  # (T, B, ...)
    targets: torch.Tensor | None = None  # per task: (T, B) next tokens, (B,) classes or values, ...
    lengths: torch.Tensor | None = None  # (B,) real steps of each sequence; None: all T
    starts_epoch: bool = False  # the first batch of a pass over the data: a carried state starts afresh here
    metadata: list[dict] | None = None  # per sequence, in batch order: whatever a task keeps beside it (ids, text)

    @property
    def size(self) -> int:
        """Sequences in the batch (B)."""
        return self.inputs.shape[1]

    def to(self, device: torch.device) -> Batch:
        """The tensors on ``device``; ``lengths`` stay on the CPU, where ``Recurrent`` reads them."""
        targets = None if self.targets is None else self.targets.to(device)
        return replace(self, inputs=self.inputs.to(device), targets=targets)


class Batches(Protocol):
    """Training batches with a saveable reading position (``TokenStreams``, ``SampledBatches``, ``ShuffledBatches``)."""

    def next_batch(self) -> Batch: ...

    def epoch_progress(self) -> float: ...  # passes over the data so far, fractional

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...
