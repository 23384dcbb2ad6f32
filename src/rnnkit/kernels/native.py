"""PyTorch's own fused recurrent kernels (ATen/oneDNN on CPU, cuDNN on GPU) for plain RNN, LSTM and GRU layers.

rnnkit's cells keep torch.nn's weight names and gate order, so a layer whose cells
compute exactly what ``torch.nn.RNN/LSTM/GRU`` compute can hand its weights to the same
kernels torch.nn uses (``torch.rnn_tanh``, ``torch.rnn_relu``, ``torch.lstm``,
``torch.gru``). ``NativeKernel`` says when that is exact and runs one layer, one or
both directions, through them; ``run_native_stack`` runs several layers chained as
torch.nn chains them in one call.
"""

from __future__ import annotations

import functools

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.cells import GRUCell, LSTMCell, RecurrentCell, RNNCell, State
from rnnkit.kernels.kernel import DirectionResults, Kernel, exact_class, first_reason


def _kernel_for(cell: RecurrentCell):
    """The torch op computing ``cell`` exactly, or None. Exact classes only: a subclass may change step()."""
    kind = exact_class(cell)
    if kind is RNNCell:
        return torch.rnn_tanh if cell.activation == "tanh" else torch.rnn_relu
    if kind is LSTMCell and cell.activation == "tanh" and cell.recurrent_activation == "sigmoid":
        return torch.lstm
    if kind is GRUCell and cell.reset_after and cell.activation == "tanh" and cell.recurrent_activation == "sigmoid":
        return torch.gru
    return None


def _cell_reason(cell: RecurrentCell) -> str | None:
    """Why ``cell`` cannot run on PyTorch's fused kernel, or None if it can."""
    if _kernel_for(cell) is None:
        return (
            f"{type(cell).__name__} with these options has no torch.nn kernel "
            "(supported: RNNCell, LSTMCell with tanh/sigmoid, GRUCell with reset_after=True and tanh/sigmoid)"
        )
    if cell.layer_norm:
        return "layer_norm=True has no torch.nn kernel"
    for option in ("recurrent_dropout", "zoneout", "weight_dropout"):
        if getattr(cell, option):
            return f"{option}={getattr(cell, option)} has no torch.nn kernel"
    return None


@functools.cache
def cpu_computes_bf16() -> bool:
    """Whether this CPU has bf16 matrix instructions (AVX512-BF16 or AMX)."""
    cpu = torch.cpu
    return any(getattr(cpu, probe, lambda: False)() for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


class NativeKernel(Kernel):
    """PyTorch's fused RNN/LSTM/GRU kernels: torch.nn's own speed for the cells torch.nn has."""

    name = "native"
    opaque = True

    def why_not(self, cells):
        return first_reason(_cell_reason, cells)

    def why_not_for(self, cells, inputs):
        """oneDNN's fused CPU kernels have no bf16 implementation without bf16 instructions ("could not
        create a primitive descriptor"). Nothing traces torch's fused RNN ops (their oneDNN op,
        aten.mkldnn_rnn_layer, fails on fake tensors): under torch.compile they run inside a custom
        operator (``graph_op.py``), which an exported graph, standing alone, cannot hold."""
        if torch.compiler.is_exporting():
            return "torch.export cannot trace PyTorch's fused RNN kernels"
        if inputs.device.type != "cpu":
            return None
        bf16 = inputs.dtype == torch.bfloat16 or (
            torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        )
        if bf16 and not cpu_computes_bf16():
            return "bf16 on a CPU without AVX512-BF16 or AMX has no fused kernel"
        return None

    def run_directions(self, cells, inputs, states, lengths) -> DirectionResults:
        forward_output, backward_output, final_states = run_native_stack(
            [cells], inputs, None if states is None else [states], lengths
        )
        return forward_output, backward_output, final_states[0]


def _flat_weights(cell: RecurrentCell) -> list[torch.Tensor]:
    """Weights in the order torch's kernels expect for one direction of one layer."""
    weights = [cell.weight_ih, cell.weight_hh]
    if cell.bias:
        weights += [cell.bias_ih, cell.bias_hh]
    if getattr(cell, "weight_hr", None) is not None:
        weights.append(cell.weight_hr)
    return weights


def run_native_stack(
    layers: list[list[RecurrentCell]], inputs: torch.Tensor, states: list[list[State]] | None, lengths: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, list[list[State]]]:
    """Stacked layers (each one cell per direction) in one call of torch's kernel, as torch.nn runs them.

    The layers must chain as torch.nn's do: each takes the one below's output, both
    directions concatenated, with no dropout between them. Returns the top layer's forward
    and backward outputs and, per layer, one final state per direction.
    """
    first = layers[0][0]
    kernel = _kernel_for(first)
    num_directions = len(layers[0])
    bidirectional = num_directions == 2
    max_time, batch_size = inputs.shape[:2]
    if states is None:
        states = [[cell.initial_state(batch_size, device=inputs.device, dtype=inputs.dtype) for cell in cells] for cells in layers]
    # torch wants each state part stacked over layers and directions: (L·D, B, size), layer-major
    hx = tuple(torch.stack(parts) for parts in zip(*(state for layer_states in states for state in layer_states)))
    hx = hx if len(hx) > 1 else hx[0]
    weights = [w for cells in layers for cell in cells for w in _flat_weights(cell)]
    dropout, train, num_layers = 0.0, first.training, len(layers)

    if lengths is None:
        output, *final = kernel(inputs, hx, weights, first.bias, num_layers, dropout, train, bidirectional, False)
    else:
        packed = pack_padded_sequence(inputs, lengths, enforce_sorted=False)
        order, inverse = packed.sorted_indices, packed.unsorted_indices
        hx_sorted = tuple(part.index_select(1, order) for part in hx) if isinstance(hx, tuple) else hx.index_select(1, order)
        data, *final = kernel(packed.data, packed.batch_sizes, hx_sorted, weights, first.bias, num_layers, dropout, train, bidirectional)
        output, _ = pad_packed_sequence(
            type(packed)(data, packed.batch_sizes, order, inverse), total_length=max_time
        )
        final = [part.index_select(1, inverse) for part in final]
    width = first.output_size
    forward_output = output[..., :width]
    backward_output = output[..., width:] if bidirectional else None
    final_states = [
        [tuple(part[layer * num_directions + direction] for part in final) for direction in range(num_directions)]
        for layer in range(num_layers)
    ]
    return forward_output, backward_output, final_states


def run_native_stack_of(layers: list, inputs: torch.Tensor, layer_states: list, lengths: torch.Tensor | None):
    """Layers that each run on the native kernel, chained as torch.nn chains them (each on the one below's
    output, directions concatenated, nothing between them), in one call of torch's kernel instead of one
    per layer: what a layer stack costs around each call counts most in generation, one step at a time.

    ``layer_states``: per layer, None or one state per direction. Returns the top layer's merged output
    and, per layer, the final state of each direction.
    """
    states = None if layer_states[0] is None else layer_states
    forward_output, backward_output, final_states = run_native_stack(
        [layer.direction_cells for layer in layers], inputs, states, lengths
    )
    top = layers[-1]
    output = forward_output if top.num_directions == 1 else top.merge(forward_output, backward_output)
    return output, final_states
