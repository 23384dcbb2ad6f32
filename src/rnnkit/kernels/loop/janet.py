"""JANET step for the loop kernel (reference: ``rnnkit.cells.janet.JANETCell``).

    [s a]_t = xp_t + W_hh c_{t-1}        xp_t = W_ih x_t + b_ih + b_hh
    f = σ(s), q = σ(s - β), c̃ = tanh(a);  c_t = f ⊙ c_{t-1} + (1 - q) ⊙ c̃;  h_t = c_t

Backward: dc_{t-1} = dc ⊙ f;  ds = dc ⊙ (c_{t-1} ⊙ f(1-f) - c̃ ⊙ q(1-q));  da = dc ⊙ (1-q) ⊙ (1-c̃²)
"""

from __future__ import annotations

import torch

from rnnkit.kernels.loop.step import LoopStep


class JANETStep(LoopStep):
    compiled_id = 5

    def __init__(self, cell) -> None:
        super().__init__(cell)
        self.beta = cell.beta

    def forward(self, xp_t, state, rec_in, weight_t, inner):
        s, a = torch.addmm(xp_t, rec_in, weight_t).chunk(2, dim=1)
        f = torch.sigmoid(s)
        q = torch.sigmoid(s - self.beta)
        candidate = torch.tanh(a)
        c = torch.addcmul(f * state[0], 1.0 - q, candidate)
        return (c,), (f, q, candidate)

    def backward(self, saved, previous, d_state, weight, inner):
        f, q, candidate = saved
        (dc,) = d_state
        d_s = dc * (previous[0] * f * (1.0 - f) - candidate * q * (1.0 - q))
        d_a = dc * (1.0 - q) * (1.0 - candidate * candidate)
        d_pre = torch.cat([d_s, d_a], dim=1)
        return d_pre, (dc * f,), d_pre @ weight, d_pre
