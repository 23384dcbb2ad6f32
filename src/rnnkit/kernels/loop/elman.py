"""Elman RNN step for the loop kernel: the forward and the hand-written backward of one step.

Mirrors ``rnnkit.cells.elman.RNNCell`` (the reference), with W_ih x_t + b_ih + b_hh
computed for all steps before the loop:  a_t = xp_t + W_hh h_{t-1};  h_t = φ(a_t).
"""

from __future__ import annotations

import torch

from rnnkit.kernels.loop.step import LoopStep, activation_derivative


class ElmanStep(LoopStep):
    def __init__(self, cell) -> None:
        super().__init__(cell)
        self.activation = cell.activation  # "tanh" or "relu"

    @property
    def compiled_id(self) -> int:
        return 0 if self.activation == "tanh" else 1

    def forward(self, xp_t, state, rec_in, weight_t, inner):
        h = torch.addmm(xp_t, rec_in, weight_t)
        h = torch.tanh_(h) if self.activation == "tanh" else torch.relu_(h)
        return (h,), (h,)

    def backward(self, saved, previous, d_state, weight, inner):
        (h,) = saved
        (dh,) = d_state
        da = dh * activation_derivative(self.activation, h)  # (B, H)
        return da, (None,), da @ weight, da
