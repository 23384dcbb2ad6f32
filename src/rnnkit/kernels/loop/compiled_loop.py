"""The loop kernel's time loop on the compiled C++ loops (``rnnkit/kernels/compiled``).

Same contract and same maths as ``LoopFunction`` (time_loop.py), which stays the readable
version and the fallback; tests hold the two equal. Zoneout is not compiled: calls with it
run the PyTorch loops. W_hh's gradient is formed here from all steps at once
(``LoopStep.weight_gradients``); the layer-norm gains' are summed inside the C++ loops.
"""

from __future__ import annotations

import torch

from rnnkit.cells.normalization import EPSILON
from rnnkit.kernels.loop.time_loop import LoopOptions, add_optional, split_state_and_inner
from rnnkit.kernels.loop.step import LoopStep


class CompiledLoopFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, loops, step: LoopStep, options: LoopOptions, inputs, weight, hidden_mask, *state_and_inner):
        state, inner = split_state_and_inner(step, state_and_inner)
        inner = tuple(tensor.contiguous() for tensor in inner)
        outputs, saved, *histories = loops.forward(
            step.compiled_id, inputs.contiguous(), weight, list(inner), _contiguous(hidden_mask), options.alive,
            [part.contiguous() for part in state], getattr(step, "beta", 0.0), EPSILON, options.backward_follows,
        )
        ctx.loops, ctx.step, ctx.options = loops, step, options
        ctx.input_width = inputs.shape[-1]
        ctx.num_inner = len(inner)
        ctx.save_for_backward(weight, hidden_mask, saved, *inner, *histories)
        return (outputs, *(history[-1].clone() for history in histories))

    @staticmethod
    def backward(ctx, d_outputs, *d_final):
        weight, hidden_mask, saved, *rest = ctx.saved_tensors
        inner, histories = tuple(rest[: ctx.num_inner]), rest[ctx.num_inner :]
        step, H = ctx.step, histories[0].shape[-1]
        d_inputs, d_recurrent, *d_state_and_inner = ctx.loops.backward(
            step.compiled_id, saved, histories, d_outputs.contiguous(), [d.contiguous() for d in d_final],
            weight, list(inner), _contiguous(hidden_mask), ctx.options.alive, ctx.input_width,
        )
        # The inner gradients the loops summed (the layer-norm gains'); empty where weight_gradients forms them.
        d_state, d_inner_summed = split_state_and_inner(step, d_state_and_inner)
        d_recurrent = d_recurrent if d_recurrent.numel() else d_inputs  # empty: the same as d_inputs
        rec_inputs = histories[0][:-1] if hidden_mask is None else histories[0][:-1] * hidden_mask
        reset = saved[..., :H] if step.needs_reset_gates else None
        d_weight, d_inner = step.weight_gradients(d_recurrent, rec_inputs, inner, reset)
        d_inner = tuple(add_optional(a, b if b.numel() else None) for a, b in zip(d_inner, d_inner_summed))
        return (None, None, None, d_inputs, d_weight, None, *d_state, *d_inner)  # the dropout mask is a constant


def _contiguous(tensor: torch.Tensor | None) -> torch.Tensor | None:
    return None if tensor is None else tensor.contiguous()
