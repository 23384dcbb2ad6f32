"""What every cell's scan step provides, and the derivatives of activations from their outputs.

A ``ScanStep`` is one cell's equations split the way the scan kernel needs them:

* the input term W_ih x_t + b_ih (+ the recurrent bias where it can be added outside the
  recurrence) is computed for all steps in one GEMM before the loop (``input_terms``);
* ``forward`` runs one step without autograd and returns what ``backward`` will need;
* ``backward`` turns the gradient of the new state into the gradients of the step's input
  term, of the previous state, of the recurrent input and of the recurrent pre-activation;
* ``weight_gradients`` forms the gradients of W_hh (and of any bias kept inside the loop)
  from all steps at once: one GEMM over T·B rows instead of T small ones.

The readable cells in ``rnnkit.cells`` stay the reference; tests hold each step to them.
"""

from __future__ import annotations

import torch

ACTIVATIONS = ("tanh", "relu", "sigmoid")


def activation_derivative(name: str, output: torch.Tensor) -> torch.Tensor:
    """φ'(a) written in terms of y = φ(a), so the forward pass need not keep a."""
    if name == "tanh":
        return 1.0 - output * output
    if name == "sigmoid":
        return output * (1.0 - output)
    return (output > 0).to(output.dtype)  # relu


class ScanStep:
    """Base of the per-cell steps. ``inner_bias`` is the part of b_hh that must stay inside the loop (or None)."""

    needs_reset_gates = False  # weight_gradients needs the reset gate of every step (reset-before GRU)

    def __init__(self, cell) -> None:
        self.hidden_size = cell.hidden_size

    def input_terms(self, projected: torch.Tensor, bias_hh: torch.Tensor | None):
        """(T, B, G) W_ih x + b_ih -> (input terms with the foldable recurrent bias added, inner bias or None)."""
        return (projected if bias_hh is None else projected + bias_hh), None

    def forward_weight(self, weight: torch.Tensor) -> torch.Tensor:
        """W_hh as ``forward`` takes it: transposed once, not at every step."""
        return weight.t()

    def forward(self, xp_t, state, rec_in, weight_t, inner_bias):
        """One step: (new state, tensors saved for backward). ``weight_t`` is W_hh transposed."""
        raise NotImplementedError

    def backward(self, saved, previous, d_state, weight, inner_bias):
        """Gradients of one step: (d input term, d previous state without the recurrent input's share
        (None where zero), d recurrent input, d recurrent pre-activation for the weight gradients)."""
        raise NotImplementedError

    @property
    def compiled_id(self) -> int:
        """This step's number in the compiled loops (``kernels/compiled/scan_loops.cpp``, enum Cell)."""
        raise NotImplementedError

    def weight_gradients(self, d_recurrent: torch.Tensor, rec_inputs: torch.Tensor, inner_bias, reset=None):
        """d W_hh and d inner bias from all steps: d_recurrent (T, B, G), rec_inputs (T, B, H),
        reset (T, B, H) the reset gates where ``needs_reset_gates``."""
        rows = d_recurrent.shape[0] * d_recurrent.shape[1]
        d_weight = d_recurrent.reshape(rows, -1).t() @ rec_inputs.reshape(rows, -1)
        return d_weight, None
