"""The kernel contract: what a fast path says about itself, and how it runs one layer.

A kernel runs one recurrent layer (one cell per direction) over a whole sequence and
computes exactly what the layer's own loop (``SequenceLayer``) computes. It says *why
not* instead of *whether*: ``why_not(cells)`` for what the layer's cells decide (their
class and options), ``why_not_for(cells, inputs)`` for what one call's input decides
(device, dtype, tracing by ``torch.compile``). ``None`` means it applies. The planner
(``plan.py``) asks each registered kernel, fastest first, at every call.

A layer, seen from here, is anything with ``direction_cells`` (forward first),
``num_directions``, ``merge(forward, backward)`` and ``layer(inputs, state, lengths)``:
kernels never import ``rnnkit.layers``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Sequence

import torch
from torch.nn.utils import parametrize

from rnnkit.cells import RecurrentCell, State

# (forward output (T, B, P), backward output or None, one final state per direction)
DirectionResults = tuple[torch.Tensor, torch.Tensor | None, list[State]]


@dataclass(frozen=True)
class KernelChoice:
    """The kernel a layer runs on for one call, and why that one rather than a faster one."""

    kernel: str  # a name of KERNELS
    reason: str
    for_speed: bool = False  # chosen over a faster-in-general kernel because it is measured faster here


class Kernel:
    """One fast path (or the reference loop). Subclasses set ``name`` and implement the three methods."""

    name: ClassVar[str]
    # Whether tracing cannot see inside it: torch.compile then calls it through a custom operator.
    opaque: ClassVar[bool] = False

    def why_not(self, cells: Sequence[RecurrentCell]) -> str | None:
        """Why this kernel cannot compute these cells exactly (their class or options), or None."""
        raise NotImplementedError

    def why_not_for(self, cells: Sequence[RecurrentCell], inputs: torch.Tensor) -> str | None:
        """Why this kernel cannot run this call (``inputs``: the layer's (T, B, I) input), or None."""
        return None

    def run_directions(
        self, cells: Sequence[RecurrentCell], inputs: torch.Tensor, states: list[State] | None, lengths: torch.Tensor | None
    ) -> DirectionResults:
        """Both directions' outputs, unmerged, and their final states."""
        raise NotImplementedError

    def run(self, layer, inputs: torch.Tensor, state, lengths: torch.Tensor | None):
        """The contract of ``layer(inputs, state, lengths)``: merged output and the layer's final state."""
        cells = layer.direction_cells
        states = None if state is None else ([state] if layer.num_directions == 1 else list(state))
        forward_output, backward_output, final_states = self.run_directions(cells, inputs, states, lengths)
        if layer.num_directions == 1:
            return forward_output, final_states[0]
        return layer.merge(forward_output, backward_output), tuple(final_states)

    def detail(self, cells: Sequence[RecurrentCell], inputs: torch.Tensor) -> str:
        """More about how this call runs (which loops), for ``rnnkit.explain``; empty if nothing to add."""
        return ""


class ReferenceKernel(Kernel):
    """The layer's own readable loop (``SequenceLayer``) under autograd: runs every cell, every input."""

    name = "reference"

    def why_not(self, cells):
        return None

    def run(self, layer, inputs, state, lengths):
        return layer(inputs, state, lengths)


def exact_class(cell: RecurrentCell) -> type[RecurrentCell]:
    """The cell's class as written. Kernels accept exact classes only (a subclass may change ``step``),
    but ``torch.nn.utils.parametrize`` swaps in a subclass that only turns weights into properties."""
    kind = type(cell)
    return kind.__bases__[0] if parametrize.is_parametrized(cell) else kind


def first_reason(check, cells: Sequence[RecurrentCell]) -> str | None:
    """The first cell's reason from ``check(cell)``, or None if no cell has one."""
    return next((reason for reason in map(check, cells) if reason is not None), None)


def each_direction(run_one, cells: Sequence[RecurrentCell], inputs: torch.Tensor, states, lengths) -> DirectionResults:
    """``run_one(cell, inputs, state, lengths, reverse)`` for each direction's cell, as ``run_directions`` returns it."""
    outputs, final_states = [], []
    for direction, cell in enumerate(cells):
        state = None if states is None else states[direction]
        output, final = run_one(cell, inputs, state, lengths, reverse=direction == 1)
        outputs.append(output)
        final_states.append(final)
    return outputs[0], (outputs[1] if len(cells) == 2 else None), final_states
