"""``SequenceLayer``: runs one cell over a sequence in one direction. The only time loop of rnnkit."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from rnnkit.cells.base import RecurrentCell, State
from rnnkit.sequences import reverse_padded, step_mask


class SequenceLayer(nn.Module):
    """Apply ``cell`` at every step of (T, B, input_size) inputs, carrying its state.

    ``reverse=True`` reads each sequence from its last real step to its first (padding is
    skipped, see ``reverse_padded``) and returns outputs in the original time order.

    With ``lengths``: outputs past a sequence's length are zero and the returned state of
    each sequence is the one after its own last real step (the state is frozen on padding).

    Inputs are trusted here (``Recurrent`` checks them); call the layer directly only with
    time-major tensors of the right width.

    Returns (outputs (T, B, cell.output_size), final state).
    """

    num_directions = 1

    def __init__(self, cell: RecurrentCell, reverse: bool = False) -> None:
        super().__init__()
        self.cell = cell
        self.reverse = reverse
        # rnnkit.inspect sets this to observe (or perturb, to probe gradients) the state after every
        # step: (t, new_state) -> new_state. While it is set, the layer runs on this loop, never a kernel.
        self.step_hook: Callable[[int, State], State] | None = None

    def forward(
        self, inputs: torch.Tensor, state: State | None = None, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, State]:
        max_time, batch_size = inputs.shape[:2]
        if state is None:
            state = self.cell.initial_state(batch_size, device=inputs.device, dtype=inputs.dtype)
        if self.reverse:
            inputs = reverse_padded(inputs, lengths)
        noise = self.cell.sample_noise(batch_size, inputs)  # one draw for the whole sequence
        # Steps past the longest sequence change nothing: skip them.
        steps = max_time if lengths is None else int(lengths.max())
        alive = None if lengths is None else step_mask(lengths, steps, inputs.device)  # (steps, B)
        outputs = []
        # unbind, not inputs[t]: the backward of T selects would write T zero tensors of the full
        # input's size (quadratic in T); unbind's backward stacks the T gradients once.
        inputs_at = inputs.unbind(0)
        for t in range(steps):
            h, new_state = self.cell.advance(inputs_at[t], state, noise)
            if self.step_hook is not None:
                new_state = self.step_hook(t, new_state)
                h = new_state[0]
            if alive is not None:
                keep = alive[t].unsqueeze(1)  # (B, 1)
                new_state = tuple(torch.where(keep, new, old) for new, old in zip(new_state, state))
                h = torch.where(keep, h, torch.zeros_like(h))
            state = new_state
            outputs.append(h)
        output = torch.stack(outputs)  # (steps, B, H)
        if steps < max_time:
            padding = output.new_zeros((max_time - steps,) + output.shape[1:])
            output = torch.cat([output, padding])
        if self.reverse:
            output = reverse_padded(output, lengths)
        return output, state

    @property
    def direction_cells(self) -> list[RecurrentCell]:
        """The cell of each direction (one here): what a kernel runs."""
        return [self.cell]

    @property
    def observed(self) -> bool:
        """Whether rnnkit.inspect is recording this layer's steps (a step hook or a gate observer is set)."""
        return self.step_hook is not None or self.cell.gate_observer is not None

    def extra_repr(self) -> str:
        return "reverse=True" if self.reverse else ""
