"""``Bidirectional``: two ``SequenceLayer``s, one per direction, and a merge of their outputs."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from rnnkit._checks import ArgumentError
from rnnkit.cells.base import State
from rnnkit.layers.sequence_layer import SequenceLayer

Merge = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# How the forward and backward outputs (T, B, H) are combined (Keras' merge modes).
# None keeps both: (T, B, 2, H), forward first, the layout torch documents for
# output.view(T, B, 2, H).
MERGE_MODES: dict[str | None, Merge] = {
    "concat": lambda forward, backward: torch.cat([forward, backward], dim=-1),
    "sum": lambda forward, backward: forward + backward,
    "ave": lambda forward, backward: (forward + backward) / 2,
    "mul": lambda forward, backward: forward * backward,
    "max": torch.maximum,
    None: lambda forward, backward: torch.stack([forward, backward], dim=-2),
}


def merged_width(merge_mode: str | None, width: int) -> int:
    """Last-dimension width of merged outputs (for None: the width of each of the two slices)."""
    return 2 * width if merge_mode == "concat" else width


class Bidirectional(nn.Module):
    """Run ``forward_layer`` left to right and ``backward_layer`` right to left, then merge.

    ``backward_layer`` must have ``reverse=True``. State in and out is a pair
    (forward state, backward state).
    """

    num_directions = 2

    def __init__(self, forward_layer: SequenceLayer, backward_layer: SequenceLayer, merge_mode: str | None = "concat"):
        super().__init__()
        if merge_mode not in MERGE_MODES:
            raise ArgumentError(f"merge_mode: expected one of {list(MERGE_MODES)}, got {merge_mode!r}")
        if forward_layer.reverse or not backward_layer.reverse:
            raise ArgumentError("Bidirectional: expected forward_layer with reverse=False and backward_layer with reverse=True")
        self.forward_layer = forward_layer
        self.backward_layer = backward_layer
        self.merge_mode = merge_mode

    def forward(
        self,
        inputs: torch.Tensor,
        state: tuple[State, State] | None = None,
        lengths: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, tuple[State, State]]:
        forward_state, backward_state = (None, None) if state is None else state
        forward_output, forward_state = self.forward_layer(inputs, forward_state, lengths)
        backward_output, backward_state = self.backward_layer(inputs, backward_state, lengths)
        return self.merge(forward_output, backward_output), (forward_state, backward_state)

    @property
    def direction_cells(self) -> list:
        """The cell of each direction, forward first: what a kernel runs."""
        return [self.forward_layer.cell, self.backward_layer.cell]

    @property
    def observed(self) -> bool:
        return self.forward_layer.observed or self.backward_layer.observed

    def merge(self, forward_output: torch.Tensor, backward_output: torch.Tensor) -> torch.Tensor:
        return MERGE_MODES[self.merge_mode](forward_output, backward_output)

    def extra_repr(self) -> str:
        return f"merge_mode={self.merge_mode!r}"
