"""The scan kernel's time loop: a custom autograd function with a hand-written backward.

Where the reference path builds an autograd graph of a dozen small ops at every step,
this loop runs the steps without autograd, keeps only what the backward needs, and in
backward walks the steps in reverse. It is generic over cells (``ScanStep``) and does
what the reference ``SequenceLayer`` does around each step, in the same order:

    new = step(x_t, state)                      the cell's equations
    new = zoneout(state, new)                   each unit keeps its old value with prob. p
    state = alive_t ? new : state               variable lengths: frozen past the end
    output_t = alive_t ? new.h : 0

The input terms W_ih x_t + b for all t are one GEMM before the loop (autograd does
that, and its gradients, outside this function); W_hh's gradient is one GEMM after the
backward loop (``ScanStep.weight_gradients``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rnnkit.kernels.scan.step import ScanStep, StepGradients


@dataclass(frozen=True)
class LoopOptions:
    """What varies between calls besides the tensors."""

    steps: int  # steps to run: T, or the longest length
    zoneout: float = 0.0
    training: bool = False
    alive: torch.Tensor | None = None  # (steps, B, 1) bool, True on real steps; None: all real
    backward_follows: bool = True  # False in inference: the compiled loops then keep only the last step


def split_state_and_inner(step: ScanStep, tensors: tuple) -> tuple[tuple, tuple]:
    """The loop functions take the state parts, then the step's inner tensors, as one argument list."""
    return tuple(tensors[: step.state_parts]), tuple(tensors[step.state_parts :])


class ScanFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, step: ScanStep, options: LoopOptions, inputs, weight, hidden_mask, *state_and_inner):
        state, inner = split_state_and_inner(step, state_and_inner)
        weight_t = step.forward_weight(weight)
        states, saved_steps, zoneout_keeps, outputs = [state], [], [], []
        for t in range(options.steps):
            rec_in = state[0] if hidden_mask is None else state[0] * hidden_mask
            new, saved = step.forward(inputs[t], state, rec_in, weight_t, inner)
            if options.zoneout > 0.0:
                new, keep = _zoneout(state, new, options)
                zoneout_keeps.append(keep)
            output = new[0]
            if options.alive is not None:
                alive = options.alive[t]
                new = tuple(torch.where(alive, n, s) for n, s in zip(new, state))
                output = output * alive
            saved_steps.append(saved)
            outputs.append(output)
            states.append(new)
            state = new
        ctx.step, ctx.options = step, options
        ctx.states, ctx.saved_steps, ctx.zoneout_keeps = states, saved_steps, zoneout_keeps
        ctx.save_for_backward(weight, hidden_mask, *inner)
        return (torch.stack(outputs), *state)

    @staticmethod
    def backward(ctx, d_outputs, *d_final):
        step, options = ctx.step, ctx.options
        weight, hidden_mask, *inner = ctx.saved_tensors
        inner = tuple(inner)
        states = ctx.states
        d_carry = list(d_final)
        d_inputs, d_recurrent = [None] * options.steps, [None] * options.steps
        d_inner_steps = [None] * len(inner)  # the sum of the steps' shares
        for t in reversed(range(options.steps)):
            d_new = list(d_carry)
            d_new[0] = d_new[0] + d_outputs[t]  # autograd hands zeros, never None, for unused outputs
            d_keep = [None] * len(d_carry)  # what reaches the previous state without passing the step
            if options.alive is not None:
                alive = options.alive[t]
                d_keep = [d * ~alive for d in d_carry]
                d_new = [d * alive for d in d_new]
            if options.zoneout > 0.0:
                d_new, d_zoned_out = _zoneout_backward(d_new, ctx.zoneout_keeps[t], options)
                d_keep = [add_gradients(a, b) for a, b in zip(d_keep, d_zoned_out)]
            grads = StepGradients(*step.backward(ctx.saved_steps[t], states[t], d_new, weight, inner))
            d_rec_in = grads.rec_in if hidden_mask is None else grads.rec_in * hidden_mask
            d_previous = list(grads.previous)
            d_previous[0] = add_gradients(d_previous[0], d_rec_in)
            d_carry = [add_gradients(a, b) for a, b in zip(d_keep, d_previous)]
            d_inputs[t], d_recurrent[t] = grads.input, grads.recurrent
            if grads.inner:
                d_inner_steps = [add_gradients(a, b) for a, b in zip(d_inner_steps, grads.inner)]

        previous_h = torch.stack([state[0] for state in states[:-1]])  # (steps, B, H)
        rec_inputs = previous_h if hidden_mask is None else previous_h * hidden_mask
        reset = torch.stack([saved[0] for saved in ctx.saved_steps]) if step.needs_reset_gates else None
        d_weight, d_inner = step.weight_gradients(torch.stack(d_recurrent), rec_inputs, inner, reset)
        d_inner = [add_gradients(a, b) for a, b in zip(d_inner, d_inner_steps)]
        d_state = [torch.zeros_like(s) if d is None else d for d, s in zip(d_carry, states[0])]
        return (None, None, torch.stack(d_inputs), d_weight, None, *d_state, *d_inner)  # the dropout mask is a constant


def add_gradients(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    """Sum of two gradients where None means zero."""
    if a is None:
        return b
    return a if b is None else a + b


def _zoneout(previous, proposed, options: LoopOptions):
    """As ``RecurrentCell._apply_zoneout``, drawing the same random numbers in the same order."""
    p = options.zoneout
    if not options.training:
        return tuple(p * old + (1.0 - p) * new for old, new in zip(previous, proposed)), None
    keeps = tuple(torch.rand_like(new) < p for new in proposed)
    return tuple(torch.where(keep, old, new) for keep, old, new in zip(keeps, previous, proposed)), keeps


def _zoneout_backward(d_new, keeps, options: LoopOptions):
    """Split the gradient of a zoned-out state into the proposed state's and the previous state's shares."""
    p = options.zoneout
    if keeps is None:  # eval: the expectation p old + (1 - p) new
        return [None if d is None else d * (1.0 - p) for d in d_new], [None if d is None else d * p for d in d_new]
    to_new = [None if d is None else d * ~keep for d, keep in zip(d_new, keeps)]
    to_old = [None if d is None else d * keep for d, keep in zip(d_new, keeps)]
    return to_new, to_old
