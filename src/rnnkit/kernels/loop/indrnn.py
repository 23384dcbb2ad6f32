"""IndRNN step for the loop kernel (reference: ``rnnkit.cells.indrnn.IndRNNCell``).

    h_t = φ(xp_t + u ⊙ h_{t-1})        xp_t = W_ih x_t + b_ih + b_hh

The recurrence is element-wise: no matrix product per step at all, and du = Σ_t Σ_b da_t ⊙ h_{t-1}.
"""

from __future__ import annotations

import torch

from rnnkit.kernels.loop.step import LoopStep, activation_derivative


class IndRNNStep(LoopStep):
    def __init__(self, cell) -> None:
        super().__init__(cell)
        self.activation = cell.activation

    @property
    def compiled_id(self) -> int:
        return 6 if self.activation == "relu" else 7

    def forward_weight(self, weight):
        return weight  # u is a vector

    def forward(self, xp_t, state, rec_in, weight_t, inner):
        h = torch.addcmul(xp_t, rec_in, weight_t)
        h = torch.tanh_(h) if self.activation == "tanh" else torch.relu_(h)
        return (h,), (h,)

    def backward(self, saved, previous, d_state, weight, inner):
        (h,) = saved
        da = d_state[0] * activation_derivative(self.activation, h)
        return da, (None,), da * weight, da

    def weight_gradients(self, d_recurrent, rec_inputs, inner, reset=None):
        return (d_recurrent * rec_inputs).sum(dim=(0, 1)), ()
