"""A recurrent core with a linear read-out: many-to-one or many-to-many (aligned).

    x_1 .. x_T -> Recurrent -> h_1 .. h_T --every_step--> linear -> y_1 .. y_T
                                  └───────── final state ─> linear -> y      (many-to-one)

Many-to-one reads the final hidden state of the top layer (both directions, concatenated,
for a bidirectional model), which with ``lengths`` is the state after each sequence's own
last step. The model owns its loss, named at construction ("cross_entropy" for classes,
"mse" for values; ``rnnkit.models.losses``); with ``lengths``, the padded steps of a
many-to-many model are left out of its cross-entropy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.cells import State
from rnnkit.models.config import RecurrentConfig
from rnnkit.models.losses import LOSSES, ignore_padding
from rnnkit.models.readout import final_hidden, step_outputs, step_width


class SequenceModel(nn.Module):
    """Args:
        input_size: features per step, or with ``token_inputs`` the number of input tokens.
        output_size: classes (cross_entropy) or values (mse) per prediction.
        every_step: a prediction at every step (many-to-many) instead of one per sequence.
        sequence_length: the t_max of JANET and IndRNN when the configuration leaves it 0.
        loss: a name of ``rnnkit.models.losses.LOSSES``.
        token_inputs: inputs are (T, B) token ids, one-hot encoded here, instead of (T, B, input_size) features.
    """

    def __init__(self, input_size: int, output_size: int, config: RecurrentConfig, *, every_step: bool = False,
                 sequence_length: int | None = None, loss: str = "cross_entropy", token_inputs: bool = False) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"loss: expected one of {list(LOSSES)}, got {loss!r}")
        self.config, self.every_step, self.loss_name, self.token_inputs = config, every_step, loss, token_inputs
        self.input_size = input_size
        self.directions = 2 if config.bidirectional else 1
        self.rnn = config.build(input_size, sequence_length)
        self.dropout = nn.Dropout(config.dropout)
        per_step = step_width(self.rnn, self.directions, config.merge_mode)
        width = per_step if every_step else self.rnn.cells[0].output_size * self.directions
        self.head = nn.Linear(width, output_size)

    def forward(
        self,
        inputs: torch.Tensor,
        state: State | None = None,
        *,
        lengths: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, State]:
        """inputs (T, B, I) (or (T, B) token ids) -> outputs (T, B, O) with every_step, else (B, O);
        the loss against targets ((T, B) or (B,)) if given; the final state of the recurrent core."""
        if self.token_inputs:
            inputs = F.one_hot(inputs, self.input_size).float()
        hidden, state = self.rnn(inputs, state, lengths=lengths)  # hidden (T, B, D*H); state[0] (L*D, B, H)
        if self.every_step:
            outputs = self.head(self.dropout(step_outputs(hidden)))  # (T, B, O)
        else:
            outputs = self.head(self.dropout(final_hidden(state, self.directions)))  # (B, O)
        loss = None
        if targets is not None:
            if self.every_step and self.loss_name == "cross_entropy":
                targets = ignore_padding(targets, lengths)
            loss = LOSSES[self.loss_name](outputs, targets)
        return outputs, loss, state
