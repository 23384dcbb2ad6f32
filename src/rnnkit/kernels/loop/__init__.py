"""The loop kernel: any rnnkit cell's recurrence as one autograd function with a hand-written backward.

Pure PyTorch, on any device and dtype, with its loops compiled from C++ on CPU where it
can (``kernels/compiled``) and its steps fused by ``torch.compile`` on GPU
(``kernels/loop/fused.py``). It is the fast path of every cell that PyTorch has no fused kernel
for (JANET, IndRNN, the reset-before GRU), of the regularised and layer-normalised cells
(recurrent dropout, DropConnect, zoneout, layer norm), and on CPU of the RNN and GRU,
which it runs faster than torch.nn. ``LoopKernel`` says when it cannot run a layer and
runs one, one or both directions; ``choose_loops`` says which loops run a call.

It is a sequential loop over time, one step after another, like every kernel here: the
name "loop" leaves "scan" for a parallel scan over time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rnnkit.cells import GRUCell, IndRNNCell, JANETCell, LSTMCell, RecurrentCell, RNNCell, State
from rnnkit.cells.normalization import gate_layer_norm
from rnnkit.kernels.compiled import compiled_loops_for, compiled_loops_run
from rnnkit.kernels.loop.fused import CHUNK, fused_runner_for
from rnnkit.kernels.kernel import DirectionResults, Kernel, each_direction, exact_class, first_reason
from rnnkit.kernels.loop.compiled_loop import CompiledLoopFunction
from rnnkit.kernels.loop.elman import ElmanStep
from rnnkit.kernels.loop.gru import GRUResetBeforeStep, GRUStep, LayerNormGRUResetBeforeStep, LayerNormGRUStep
from rnnkit.kernels.loop.indrnn import IndRNNStep
from rnnkit.kernels.loop.janet import JANETStep
from rnnkit.kernels.loop.time_loop import PYTHON_STEPS, LoopOptions, LoopFunction, add_optional
from rnnkit.kernels.loop.lstm import LayerNormLSTMStep, LSTMStep
from rnnkit.kernels.loop.step import LoopStep
from rnnkit.sequences import reverse_padded, step_mask


def step_class(cell: RecurrentCell) -> type[LoopStep] | None:
    """The loop step computing ``cell``, or None. Exact classes only: a subclass may change step()."""
    kind = exact_class(cell)
    if kind in (RNNCell, IndRNNCell, JANETCell):  # IndRNN's layer norm is on its input projection only
        return {RNNCell: ElmanStep, IndRNNCell: IndRNNStep, JANETCell: JANETStep}[kind]
    if kind in (LSTMCell, GRUCell) and cell.activation == "tanh" and cell.recurrent_activation == "sigmoid":
        if kind is LSTMCell:
            return None if cell.proj_size else (LayerNormLSTMStep if cell.layer_norm else LSTMStep)
        if cell.reset_after:
            return LayerNormGRUStep if cell.layer_norm else GRUStep
        return LayerNormGRUResetBeforeStep if cell.layer_norm else GRUResetBeforeStep
    return None


def _cell_reason(cell: RecurrentCell) -> str | None:
    """Why ``cell`` cannot run on the loop kernel, or None if it can."""
    if step_class(cell) is None:
        if exact_class(cell) is LSTMCell and cell.proj_size:
            return "the loop kernel has no LSTM projection (proj_size) with these options"
        return (
            f"{type(cell).__name__} with these options has no loop step (supported: RNNCell, IndRNNCell, "
            "JANETCell, and LSTMCell/GRUCell with tanh/sigmoid)"
        )
    return None


class LoopKernel(Kernel):
    """rnnkit's own loop over time with a hand-written backward, for every cell torch.nn lacks."""

    name = "loop"
    opaque = True

    def why_not(self, cells):
        return first_reason(_cell_reason, cells)

    def why_not_for(self, cells, inputs):
        """Its autograd function takes Python objects (the step, its options) and, on CPU, C++ ops
        without fake implementations: nothing traces them. Under torch.compile it runs inside a
        custom operator (``graph_op.py``), which an exported graph, standing alone, cannot hold."""
        if torch.compiler.is_exporting():
            return "torch.export cannot trace the loop kernel's hand-written backward"
        return None

    def run_directions(self, cells, inputs, states, lengths) -> DirectionResults:
        return each_direction(_run_direction, cells, inputs, states, lengths)

    def detail(self, cells, inputs):
        """Which loops run this call (fused, compiled C++ or PyTorch), and why."""
        return choose_loops(inputs, max(cell.zoneout for cell in cells), any(cell.training for cell in cells)).detail

    @staticmethod
    def runs_compiled(cells, inputs) -> bool:
        """Whether the compiled C++ loops would run this call."""
        return compiled_loops_run(inputs, max(cell.zoneout for cell in cells))


@dataclass(frozen=True)
class Loops:
    """The loops that run a loop-kernel call, fastest first: "fused" (steps compiled by torch.compile,
    ``implementation`` a StepRunner), "compiled" (the C++ loops, ``implementation`` their ops) or
    "python" (``PYTHON_STEPS``); ``detail`` says which, and why not a faster one."""

    kind: str
    implementation: object
    detail: str


def choose_loops(inputs: torch.Tensor, zoneout: float, training: bool) -> Loops:
    """The loops for a call on ``inputs`` (the input terms, or any tensor of their device and dtype)."""
    runner, no_fused = fused_runner_for(inputs, zoneout, training)
    if runner is not None:
        return Loops("fused", runner, f"torch.compile fused loops, {CHUNK} steps a call")
    loops, no_compiled = compiled_loops_for(inputs, zoneout)
    if loops is not None:
        return Loops("compiled", loops, "compiled C++ loops")
    return Loops("python", PYTHON_STEPS, f"PyTorch loops ({no_compiled}; {no_fused})")


def _run_direction(cell: RecurrentCell, inputs, state: State | None, lengths, reverse: bool):
    """One direction, in the order the reference ``SequenceLayer`` takes (its random draws included)."""
    max_time, batch_size = inputs.shape[:2]
    if state is None:
        state = cell.initial_state(batch_size, device=inputs.device, dtype=inputs.dtype)
    if reverse:
        inputs = reverse_padded(inputs, lengths)
    noise = cell.sample_noise(batch_size, inputs)
    steps = max_time if lengths is None else int(lengths.max())
    alive = None
    if lengths is not None and int(lengths.min()) < steps:
        alive = step_mask(lengths, steps, inputs.device).unsqueeze(2)  # (steps, B, 1)

    step = step_class(cell)(cell)
    outer_bias, inner_bias = step.split_recurrent_bias(cell.bias_hh)
    terms = _input_terms(cell, inputs[:steps], outer_bias)  # (steps, B, G): one GEMM for all steps
    dtype = terms.dtype  # under autocast, the autocast dtype: the loop then runs in it throughout
    weight = cell.recurrent_weight(noise).to(dtype)
    inner = tuple(tensor.to(dtype) for tensor in step.inner_tensors(cell, inner_bias))
    mask = None if noise.hidden_mask is None else noise.hidden_mask.to(dtype)
    state = tuple(part.to(dtype) for part in state)
    backward_follows = torch.is_grad_enabled() and any(t.requires_grad for t in (terms, weight, *inner, *state))
    options = LoopOptions(
        steps=steps, zoneout=cell.zoneout, training=cell.training, alive=alive, backward_follows=backward_follows
    )
    loops = choose_loops(terms, cell.zoneout, cell.training)
    function = CompiledLoopFunction if loops.kind == "compiled" else LoopFunction
    with torch.autocast(inputs.device.type, enabled=False):
        output, *final = function.apply(loops.implementation, step, options, terms, weight, mask, *state, *inner)
    if steps < max_time:
        output = torch.cat([output, output.new_zeros((max_time - steps,) + output.shape[1:])])
    if reverse:
        output = reverse_padded(output, lengths)
    return output, tuple(final)


def _input_terms(cell: RecurrentCell, inputs: torch.Tensor, outer_bias: torch.Tensor | None) -> torch.Tensor:
    """W_ih x_t (layer-normalised per gate where the cell says so) + b_ih + ``outer_bias``, for all steps at once.

    The steps are flattened to (T·B, I) rows and the biases summed first, so that ``F.linear``
    adds them inside the GEMM (addmm) instead of in passes over the (T, B, G) result.
    """
    steps, batch_size = inputs.shape[:2]
    rows = inputs.reshape(steps * batch_size, -1)
    bias = add_optional(cell.bias_ih, outer_bias)
    if cell.ln_ih_weight is None:
        return F.linear(rows, cell.weight_ih, bias).reshape(steps, batch_size, -1)
    projected = gate_layer_norm(F.linear(rows, cell.weight_ih), cell.num_gates, cell.ln_ih_weight)
    return (projected if bias is None else projected + bias).reshape(steps, batch_size, -1)


__all__ = ["LoopKernel", "Loops", "choose_loops", "step_class"]
