"""A recurrent core with a linear read-out: many-to-one or many-to-many (aligned).

    x_1 .. x_T -> Recurrent -> h_1 .. h_T --every_step--> linear -> y_1 .. y_T
                                  └───────── final state ─> linear -> y      (many-to-one)

Many-to-one reads the final hidden state of the top layer (both directions, concatenated,
for a bidirectional model), which with ``lengths`` is the state after each sequence's own
last step. The loss belongs to the task, which knows whether outputs are values or classes.
"""

from __future__ import annotations

import torch
from torch import nn

from rnnkit.models.config import RecurrentConfig


class SequenceModel(nn.Module):
    def __init__(self, input_size: int, output_size: int, config: RecurrentConfig, *, every_step: bool = False,
                 sequence_length: int | None = None) -> None:
        super().__init__()
        self.config, self.every_step = config, every_step
        self.directions = 2 if config.bidirectional else 1
        self.rnn = config.build(input_size, sequence_length)
        self.dropout = nn.Dropout(config.dropout)
        per_step = self.rnn.output_size * (self.directions if config.merge_mode == "none" else 1)
        width = per_step if every_step else self.rnn.cells[0].output_size * self.directions
        self.head = nn.Linear(width, output_size)

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """inputs (T, B, I) -> (T, B, O) with every_step, else (B, O)."""
        hidden, state = self.rnn(inputs, lengths=lengths)  # hidden (T, B, D*H); state[0] (L*D, B, H)
        if self.every_step:
            if hidden.dim() == 4:  # merge_mode none: (T, B, 2, H)
                hidden = hidden.flatten(2)
            return self.head(self.dropout(hidden))
        final = state[0][-self.directions:]  # the top layer's final h, per direction: (D, B, H)
        final = final.permute(1, 0, 2).reshape(final.shape[1], -1)  # (B, D*H)
        return self.head(self.dropout(final))
