"""Fast execution paths for sequence layers, behind one dispatch; the cells stay the reference.

``layer_fast_path_reason(layer)`` says why a layer cannot leave the reference path
(None when it can), and ``run_fast(layer, inputs, state, lengths)`` runs it with the
same arguments and results as ``layer(inputs, state, lengths)``. Today the fast path is
PyTorch's own fused kernel for plain RNN/LSTM/GRU layers (``native.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from rnnkit.kernels.native import native_input_unsupported_reason, native_unsupported_reason, run_native_layer

FAST_PATH_POLICIES = ("auto", "required", "off")


def _direction_cells(layer: nn.Module) -> list:
    if layer.num_directions == 1:
        return [layer.cell]
    return [layer.forward_layer.cell, layer.backward_layer.cell]


def layer_fast_path_reason(layer: nn.Module) -> str | None:
    """None if ``layer`` (a SequenceLayer or Bidirectional) can run on a fast kernel, else why not."""
    for cell in _direction_cells(layer):
        reason = native_unsupported_reason(cell)
        if reason is not None:
            return reason
    return None


def input_fast_path_reason(inputs: torch.Tensor) -> str | None:
    """None if a layer that can run fast can do so on ``inputs`` in the current autocast context, else why not."""
    return native_input_unsupported_reason(inputs)


def run_fast(layer: nn.Module, inputs: torch.Tensor, state, lengths: torch.Tensor | None):
    """Same contract as ``layer(inputs, state, lengths)``, on the fast kernel."""
    cells = _direction_cells(layer)
    states = None if state is None else ([state] if layer.num_directions == 1 else list(state))
    forward_output, backward_output, final_states = run_native_layer(cells, inputs, states, lengths)
    if layer.num_directions == 1:
        return forward_output, final_states[0]
    return layer.merge(forward_output, backward_output), tuple(final_states)


__all__ = ["FAST_PATH_POLICIES", "input_fast_path_reason", "layer_fast_path_reason", "run_fast"]
