"""``Batch``: one batch of sequences, what every batcher yields and every model reads.

Time-major, as ``Recurrent``: ``inputs`` is (T, B, ...) — token ids (T, B) for a language
model, features (T, B, F) for the others. ``lengths`` (B,) says how many steps of each
sequence are real where a batch pads sequences of different lengths (the padding is at the
end of each); the models hand it to ``Recurrent``, whose kernels skip the padding. Whatever
else a model reads goes in ``extras``, passed to it by keyword (a forecaster's
``future_inputs``: the known calendar of the steps it forecasts), so that every batch reaches
every model the same way::

    model(batch.inputs, state, lengths=batch.lengths, targets=batch.targets, **batch.extras)

``references`` holds what the metrics compare an output with when that is not a tensor: the
reference translation of each source sentence (a list per sequence where there are several).

``Batches`` is what the trainer reads batches from: training data as a stream whose reading
position can be saved and restored, so that a resumed run reads what it would have read.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol

import torch


@dataclass
class Batch:
    inputs: torch.Tensor  # (T, B, ...)
    targets: torch.Tensor | None = None  # per task: (T, B) next tokens, (B,) classes or values, ...
    lengths: torch.Tensor | None = None  # (B,) real steps of each sequence; None: all T
    starts_epoch: bool = False  # the first batch of a pass over the data: a carried state starts afresh here
    extras: dict[str, torch.Tensor] = field(default_factory=dict)  # more model inputs, by keyword; batch on dim 1
    references: list | None = None  # per sequence, in batch order: what an output is scored against (texts)

    @property
    def size(self) -> int:
        """Sequences in the batch (B)."""
        return self.inputs.shape[1]

    def to(self, device: torch.device) -> Batch:
        """The tensors on ``device``; ``lengths`` stay on the CPU, where ``Recurrent`` reads them."""
        targets = None if self.targets is None else self.targets.to(device)
        extras = {name: value.to(device) for name, value in self.extras.items()}
        return replace(self, inputs=self.inputs.to(device), targets=targets, extras=extras)


class Batches(Protocol):
    """Training batches with a saveable reading position (``TokenStreams``, ``SampledBatches``, ``ShuffledBatches``)."""

    def next_batch(self) -> Batch: ...

    def epoch_progress(self) -> float: ...  # passes over the data so far, fractional

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...
