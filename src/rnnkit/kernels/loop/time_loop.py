"""The loop kernel's time loop: a custom autograd function with a hand-written backward.

Where the reference path builds an autograd graph of a dozen small ops at every step,
this loop runs the steps without autograd, keeps only what the backward needs, and in
backward walks the steps in reverse. It is generic over cells (``LoopStep``) and does
what the reference ``SequenceLayer`` does around each step, in the same order:

    new = step(x_t, state)                      the cell's equations
    new = zoneout(state, new)                   each unit keeps its old value with prob. p
    state = alive_t ? new : state               variable lengths: frozen past the end
    output_t = alive_t ? new.h : 0

The input terms W_ih x_t + b for all t are one GEMM before the loop (autograd does
that, and its gradients, outside this function); W_hh's gradient is one GEMM after the
backward loop (``LoopStep.weight_gradients``).

The steps themselves run in ``forward_steps`` and ``backward_steps``, each over a run of
consecutive steps. ``LoopFunction`` calls them through a ``StepRunner``: ``PYTHON_STEPS``
runs them as written, over all steps in one call; the fused runner (``kernels/loop/fused``)
runs them compiled by ``torch.compile``, a fixed number of steps per call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch

from rnnkit.kernels.loop.step import LoopStep, StepGradients


@dataclass(frozen=True)
class LoopOptions:
    """What varies between calls besides the tensors."""

    steps: int  # steps to run: T, or the longest length
    zoneout: float = 0.0
    training: bool = False
    alive: torch.Tensor | None = None  # (steps, B, 1) bool, True on real steps; None: all real
    backward_follows: bool = True  # False in inference: the loops then keep nothing for a backward


class StepRunner(NamedTuple):
    """How ``LoopFunction`` runs its steps: functions with the contracts of ``forward_steps`` and
    ``backward_steps``, called on runs of ``chunk`` steps (None: all steps in one call)."""

    forward: Callable
    backward: Callable
    chunk: int | None = None


def split_state_and_inner(step: LoopStep, tensors: tuple) -> tuple[tuple, tuple]:
    """The loop functions take the state parts, then the step's inner tensors, as one argument list."""
    return tuple(tensors[: step.state_parts]), tuple(tensors[step.state_parts :])


def forward_steps(
    step: LoopStep, zoneout: float, training: bool, keep_for_backward: bool, inputs, alive, weight_t, hidden_mask, state, inner
):
    """Run the steps of ``inputs`` (K, B, G) from ``state``.

    Returns the outputs (K, B, H); per state part the state after each step (K, B, ·); per
    tensor the step saves for backward, its K values stacked (none unless ``keep_for_backward``);
    and, for zoneout in training, per state part where each unit kept its old value (K, B, ·),
    else None.
    """
    outputs, states, saved_steps, keeps = [], [], [], []
    for t in range(inputs.shape[0]):
        rec_in = state[0] if hidden_mask is None else state[0] * hidden_mask
        new, saved = step.forward(inputs[t], state, rec_in, weight_t, inner)
        if zoneout > 0.0:
            new, keep = _zoneout(state, new, zoneout, training)
            keeps.append(keep)
        output = new[0]
        if alive is not None:
            new = tuple(torch.where(alive[t], n, s) for n, s in zip(new, state))
            output = output * alive[t]
        if keep_for_backward:
            saved_steps.append(saved)
        outputs.append(output)
        states.append(new)
        state = new
    kept = _stack_parts(keeps) if keeps and keeps[0] is not None else None
    return torch.stack(outputs), _stack_parts(states), _stack_parts(saved_steps), kept


def backward_steps(step: LoopStep, zoneout: float, saved, previous, d_outputs, d_carry, alive, keeps, weight, hidden_mask, inner):
    """Walk the steps that ``forward_steps`` ran back to front.

    ``saved`` and ``keeps`` as ``forward_steps`` returned them (``keeps`` None: zoneout, if any, was
    its expectation), ``previous`` per state part the
    state before each step (K, B, ·), ``d_carry`` the gradient of the state after the last one.
    Returns d input terms (K, B, G), d recurrent pre-activations (K, B, G') for
    ``LoopStep.weight_gradients``, the gradient of the state before the first step, and per
    inner tensor the sum of the steps' shares of its gradient (None where the steps give none).
    """
    steps = d_outputs.shape[0]
    d_carry = list(d_carry)
    d_inputs, d_recurrent = [None] * steps, [None] * steps
    d_inner = [None] * len(inner)
    for t in reversed(range(steps)):
        d_new = list(d_carry)
        d_new[0] = d_new[0] + d_outputs[t]  # autograd hands zeros, never None, for unused outputs
        d_keep = [None] * len(d_carry)  # what reaches the previous state without passing the step
        if alive is not None:
            d_keep = [d * ~alive[t] for d in d_carry]
            d_new = [d * alive[t] for d in d_new]
        if zoneout > 0.0:
            d_new, d_zoned_out = _zoneout_backward(d_new, zoneout, None if keeps is None else [k[t] for k in keeps])
            d_keep = [add_optional(a, b) for a, b in zip(d_keep, d_zoned_out)]
        state_t = tuple(part[t] for part in previous)
        grads = StepGradients(*step.backward(tuple(s[t] for s in saved), state_t, d_new, weight, inner))
        d_rec_in = grads.rec_in if hidden_mask is None else grads.rec_in * hidden_mask
        d_previous = list(grads.previous)
        d_previous[0] = add_optional(d_previous[0], d_rec_in)
        d_carry = [add_optional(a, b) for a, b in zip(d_keep, d_previous)]
        d_inputs[t], d_recurrent[t] = grads.input, grads.recurrent
        if grads.inner:
            d_inner = [add_optional(a, b) for a, b in zip(d_inner, grads.inner)]
    return torch.stack(d_inputs), torch.stack(d_recurrent), tuple(d_carry), tuple(d_inner)


PYTHON_STEPS = StepRunner(forward_steps, backward_steps)


class LoopFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, runner: StepRunner, step: LoopStep, options: LoopOptions, inputs, weight, hidden_mask, *state_and_inner):
        state, inner = split_state_and_inner(step, state_and_inner)
        chunk = runner.chunk or options.steps
        inputs, alive = _pad_to_chunks(inputs, options.alive, chunk)
        weight_t = step.forward_weight(weight)
        initial, outputs, states, saved, keeps = state, [], [], [], []
        for start in range(0, inputs.shape[0], chunk):
            piece = slice(start, start + chunk)
            results = runner.forward(
                step, options.zoneout, options.training, options.backward_follows,
                inputs[piece], _piece(alive, piece), weight_t, hidden_mask, state, inner,
            )
            for collected, result in zip((outputs, states, saved, keeps), results):
                collected.append(result)
            state = tuple(part[-1] for part in results[1])
        # histories: per state part, the initial state and the state after each step (padded + 1, B, ·)
        ctx.histories = tuple(torch.cat([first.unsqueeze(0), *chunks]) for first, chunks in zip(initial, zip(*states)))
        ctx.saved_steps = _cat_parts(saved)
        ctx.keeps = _cat_parts(keeps) if keeps[0] is not None else None
        ctx.runner, ctx.step, ctx.options, ctx.chunk, ctx.alive = runner, step, options, chunk, alive
        ctx.save_for_backward(weight, hidden_mask, *inner)
        return (torch.cat(outputs)[: options.steps], *state)  # padded steps are dead: the state stays

    @staticmethod
    def backward(ctx, d_outputs, *d_final):
        runner, step, options, chunk = ctx.runner, ctx.step, ctx.options, ctx.chunk
        weight, hidden_mask, *inner = ctx.saved_tensors
        inner = tuple(inner)
        histories, padded = ctx.histories, ctx.histories[0].shape[0] - 1
        d_outputs = _pad(d_outputs, padded)
        d_carry, d_inputs, d_recurrent = tuple(d_final), [], []
        d_inner_steps = (None,) * len(inner)  # the sum of the steps' shares
        for start in reversed(range(0, padded, chunk)):
            piece = slice(start, start + chunk)
            d_input, d_rec, d_carry, d_inner = runner.backward(
                step, options.zoneout, tuple(s[piece] for s in ctx.saved_steps),
                tuple(history[piece] for history in histories), d_outputs[piece], d_carry, _piece(ctx.alive, piece),
                None if ctx.keeps is None else tuple(k[piece] for k in ctx.keeps), weight, hidden_mask, inner,
            )
            d_inputs.insert(0, d_input)
            d_recurrent.insert(0, d_rec)
            d_inner_steps = tuple(add_optional(a, b) for a, b in zip(d_inner_steps, d_inner))

        steps = options.steps
        previous_h = histories[0][:steps]
        rec_inputs = previous_h if hidden_mask is None else previous_h * hidden_mask
        reset = ctx.saved_steps[0][:steps] if step.needs_reset_gates else None
        d_weight, d_inner = step.weight_gradients(torch.cat(d_recurrent)[:steps], rec_inputs, inner, reset)
        d_inner = [add_optional(a, b) for a, b in zip(d_inner, d_inner_steps)]
        d_state = [torch.zeros_like(history[0]) if d is None else d for d, history in zip(d_carry, histories)]
        # the runner, step and options are not tensors; the dropout mask is a constant
        return (None, None, None, torch.cat(d_inputs)[:steps], d_weight, None, *d_state, *d_inner)


def add_optional(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    """a + b where None means zero (a gradient that is structurally zero, a bias that is absent)."""
    if a is None:
        return b
    return a if b is None else a + b


def _pad_to_chunks(inputs: torch.Tensor, alive: torch.Tensor | None, chunk: int):
    """Pad the steps to a whole number of chunks with dead steps (zero input, state unchanged, output 0):
    a runner compiled for ``chunk`` steps then runs every call with the same shapes."""
    steps = inputs.shape[0]
    padded = -(-steps // chunk) * chunk
    if padded == steps:
        return inputs, alive
    if alive is None:
        alive = torch.ones(steps, 1, 1, dtype=torch.bool, device=inputs.device)
    return _pad(inputs, padded), torch.cat([alive, alive.new_zeros((padded - steps,) + alive.shape[1:])])


def _pad(tensor: torch.Tensor, steps: int) -> torch.Tensor:
    """``tensor`` (T, ...) followed by zeros up to ``steps`` rows."""
    extra = steps - tensor.shape[0]
    return tensor if extra == 0 else torch.cat([tensor, tensor.new_zeros((extra,) + tensor.shape[1:])])


def _piece(tensor: torch.Tensor | None, piece: slice) -> torch.Tensor | None:
    return None if tensor is None else tensor[piece]


def _stack_parts(per_step: list[tuple]) -> tuple:
    """[(a_0, b_0), (a_1, b_1), ...] -> (stack(a), stack(b))."""
    return tuple(torch.stack(part) for part in zip(*per_step))


def _cat_parts(per_chunk: list[tuple]) -> tuple:
    """Per-chunk tuples of stacked steps -> one tuple over all steps."""
    return tuple(part[0] if len(part) == 1 else torch.cat(part) for part in zip(*per_chunk))


def _zoneout(previous, proposed, p: float, training: bool):
    """As ``RecurrentCell._apply_zoneout``, drawing the same random numbers in the same order."""
    if not training:
        return tuple(p * old + (1.0 - p) * new for old, new in zip(previous, proposed)), None
    keeps = tuple(torch.rand_like(new) < p for new in proposed)
    return tuple(torch.where(keep, old, new) for keep, old, new in zip(keeps, previous, proposed)), keeps


def _zoneout_backward(d_new, p: float, keeps):
    """Split the gradient of a zoned-out state into the proposed state's and the previous state's shares."""
    if keeps is None:  # eval: the expectation p old + (1 - p) new
        return [None if d is None else d * (1.0 - p) for d in d_new], [None if d is None else d * p for d in d_new]
    to_new = [None if d is None else d * ~keep for d, keep in zip(d_new, keeps)]
    to_old = [None if d is None else d * keep for d, keep in zip(d_new, keeps)]
    return to_new, to_old
