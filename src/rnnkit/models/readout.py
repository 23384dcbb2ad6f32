"""What a model reads off a ``Recurrent``: its outputs at every step, or the top layer's final state.

Shared by the many-to-one and many-to-many models (SequenceModel, TextClassifier, SequenceTagger).
"""

from __future__ import annotations

import torch

from rnnkit.cells import State


def step_outputs(hidden: torch.Tensor) -> torch.Tensor:
    """Outputs at every step as (T, B, W): merge_mode none's (T, B, 2, H) becomes (T, B, 2H), forward first."""
    return hidden.flatten(2) if hidden.dim() == 4 else hidden


def step_width(rnn, directions: int, merge_mode: str) -> int:
    """W of ``step_outputs``."""
    return rnn.output_size * (directions if merge_mode == "none" else 1)


def final_hidden(state: State, directions: int) -> torch.Tensor:
    """The top layer's final h, its directions concatenated: (B, D*H). With lengths, each sequence's own last step
    (and, backward, its first)."""
    final = state[0][-directions:]  # (D, B, H)
    return final.permute(1, 0, 2).reshape(final.shape[1], -1)
