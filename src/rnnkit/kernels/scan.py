"""The scan kernel: the cell's own step inside ``torch.scan``-style control flow, for graphs that keep T symbolic.

Traced, the reference loop is unrolled: one copy of the step per time step, so an exported
graph holds the T of its example input and nothing else. PyTorch's ``scan`` higher-order
operator carries the state through a step function that is traced once, so the graph runs
any T (and any B); ``torch.onnx`` turns it into ONNX's ``Scan``. The step is the cell's own
``advance``, so this kernel computes exactly what the reference loop computes, for every cell
and option.

Lengths are a mask rather than a shorter loop: every sequence runs all T steps and its state
is frozen past its length, which is what the reference loop computes without asking the
(data-dependent) longest length. Eagerly the reference loop is the same computation with
less overhead, so this kernel runs only while ``torch.export`` traces.
"""

from __future__ import annotations

import torch

from rnnkit.cells import RecurrentCell, State
from rnnkit.kernels.kernel import DirectionResults, Kernel, each_direction
from rnnkit.sequences import reverse_padded, step_mask


class ScanKernel(Kernel):
    """Every cell, as one traced step repeated by ``scan``: what export needs for a symbolic time axis."""

    name = "scan"

    def why_not(self, cells):
        return None

    def run_directions(self, cells, inputs, states, lengths) -> DirectionResults:
        return each_direction(_scan_direction, cells, inputs, states, lengths)


def _scan_direction(
    cell: RecurrentCell, inputs: torch.Tensor, state: State | None, lengths: torch.Tensor | None, reverse: bool
) -> tuple[torch.Tensor, State]:
    from torch._higher_order_ops.scan import scan  # imported where used: it pulls in Dynamo

    max_time, batch_size = inputs.shape[:2]
    if state is None:
        state = cell.initial_state(batch_size, device=inputs.device, dtype=inputs.dtype)
    if reverse:
        inputs = reverse_padded(inputs, lengths)
    noise = cell.sample_noise(batch_size, inputs)  # one draw for the whole sequence, as the reference loop
    alive = None if lengths is None else step_mask(lengths, max_time, inputs.device)  # (T, B)

    def step(previous: State, x_t: torch.Tensor, keep: torch.Tensor | None = None):
        h, new_state = cell.advance(x_t, previous, noise)
        if keep is not None:
            keep = keep.unsqueeze(1)  # (B, 1)
            new_state = tuple(torch.where(keep, new, old) for new, old in zip(new_state, previous))
            h = torch.where(keep, h, torch.zeros_like(h))
        # scan's outputs may not alias its carried state, and an LSTM's h is both
        return tuple(part.clone() for part in new_state), h.clone()

    if alive is None:
        final, outputs = scan(lambda previous, x_t: step(previous, x_t), tuple(state), inputs)
    else:
        final, outputs = scan(lambda previous, xs: step(previous, *xs), tuple(state), (inputs, alive))
    if reverse:
        outputs = reverse_padded(outputs, lengths)
    return outputs, tuple(final)
