"""What every cell's loop step provides, and the derivatives of activations from their outputs.

A ``LoopStep`` is one cell's equations split the way the loop kernel needs them:

* the input term W_ih x_t + b_ih (+ the recurrent bias where it can be added outside the
  recurrence, ``split_recurrent_bias``) is computed for all steps in one GEMM before the loop;
* ``forward`` runs one step without autograd and returns what ``backward`` will need;
* ``backward`` turns the gradient of the new state into the gradients of the step's input
  term, of the previous state, of the recurrent input and of the recurrent pre-activation
  (``StepGradients``);
* ``weight_gradients`` forms the gradients of W_hh (and of any bias kept inside the loop)
  from all steps at once: one GEMM over T·B rows instead of T small ones.

``inner`` is the tuple of tensors a step uses inside the loop besides W_hh (the reset-after
GRU's b_hn, the layer-norm gains): ``inner_tensors`` builds it from the cell, and their
gradients come from ``weight_gradients`` and from the per-step ``StepGradients.inner`` (which
the compiled loops form in C++ and sum row by row).

The readable cells in ``rnnkit.cells`` stay the reference; tests hold each step to them.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

ACTIVATIONS = ("tanh", "relu", "sigmoid")


def activation_derivative(name: str, output: torch.Tensor) -> torch.Tensor:
    """φ'(a) written in terms of y = φ(a), so the forward pass need not keep a."""
    if name == "tanh":
        return 1.0 - output * output
    if name == "sigmoid":
        return output * (1.0 - output)
    return (output > 0).to(output.dtype)  # relu


class StepGradients(NamedTuple):
    """What ``LoopStep.backward`` returns for one step."""

    input: torch.Tensor  # d input term (B, G)
    previous: tuple  # d previous state without the recurrent input's share; None where zero
    rec_in: torch.Tensor  # d recurrent input (B, H)
    recurrent: torch.Tensor  # d recurrent pre-activation, for weight_gradients
    inner: tuple = ()  # this step's share of the inner tensors' gradients (None where none); the loop sums them


class LoopStep:
    """Base of the per-cell steps."""

    state_parts = 1  # h, or (h, c) for the LSTM
    needs_reset_gates = False  # weight_gradients needs the reset gate of every step (reset-before GRU)

    def __init__(self, cell) -> None:
        self.hidden_size = cell.hidden_size

    def split_recurrent_bias(self, bias_hh: torch.Tensor | None):
        """b_hh -> (the part added to the input terms before the loop (G,) or None, the part kept inside or None)."""
        return bias_hh, None

    def inner_tensors(self, cell, inner_bias: torch.Tensor | None) -> tuple:
        """The tensors ``forward`` uses inside the loop besides W_hh, given the bias kept inside."""
        return () if inner_bias is None else (inner_bias,)

    def forward_weight(self, weight: torch.Tensor) -> torch.Tensor:
        """W_hh as ``forward`` takes it: transposed once, not at every step."""
        return weight.t()

    def forward(self, xp_t, state, rec_in, weight_t, inner):
        """One step: (new state, tensors saved for backward). ``weight_t`` is W_hh transposed."""
        raise NotImplementedError

    def backward(self, saved, previous, d_state, weight, inner) -> StepGradients:
        """Gradients of one step (a ``StepGradients`` or a tuple in its order)."""
        raise NotImplementedError

    @property
    def compiled_id(self) -> int:
        """This step's number in the compiled loops (``kernels/compiled/loops.cpp``, enum Cell)."""
        raise NotImplementedError

    def weight_gradients(self, d_recurrent: torch.Tensor, rec_inputs: torch.Tensor, inner: tuple, reset=None):
        """d W_hh and the inner tensors' gradients from all steps (a tuple like ``inner``, None where the
        steps give them): d_recurrent (T, B, G), rec_inputs (T, B, H), reset (T, B, H) the reset gates
        where ``needs_reset_gates``."""
        rows = d_recurrent.shape[0] * d_recurrent.shape[1]
        d_weight = d_recurrent.reshape(rows, -1).t() @ rec_inputs.reshape(rows, -1)
        return d_weight, (None,) * len(inner)
