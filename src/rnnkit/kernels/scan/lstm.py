"""LSTM step for the scan kernel (reference: ``rnnkit.cells.lstm.LSTMCell``).

    [i f g o]_t = xp_t + W_hh h_{t-1}        xp_t = W_ih x_t + b_ih + b_hh, for all t at once
    i, f, o = σ(.), g = tanh(.);  c_t = f ⊙ c_{t-1} + i ⊙ g;  h_t = o ⊙ tanh(c_t)

Backward, with dh, dc the gradients reaching h_t, c_t:
    dc += dh ⊙ o ⊙ (1 - tanh²c_t);   dc_{t-1} = dc ⊙ f
    d[i f g o] = [dc⊙g⊙i(1-i), dc⊙c_{t-1}⊙f(1-f), dc⊙i⊙(1-g²), dh⊙tanh c_t⊙o(1-o)]
"""

from __future__ import annotations

import torch

from rnnkit.kernels.scan.step import ScanStep


class LSTMStep(ScanStep):
    compiled_id = 2

    def forward(self, xp_t, state, rec_in, weight_t, inner_bias):
        H = self.hidden_size
        gates = torch.addmm(xp_t, rec_in, weight_t)  # (B, 4H): i f g o
        gates[:, : 2 * H].sigmoid_()
        gates[:, 2 * H : 3 * H].tanh_()
        gates[:, 3 * H :].sigmoid_()
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.addcmul(f * state[1], i, g)
        tanh_c = torch.tanh(c)
        return (o * tanh_c, c), (gates, tanh_c)

    def backward(self, saved, previous, d_state, weight, inner_bias):
        gates, tanh_c = saved
        i, f, g, o = gates.chunk(4, dim=1)
        dh, dc = d_state
        d_gates = torch.empty_like(gates)
        d_i, d_f, d_g, d_o = d_gates.chunk(4, dim=1)
        dc = torch.addcmul(dc, dh * o, 1.0 - tanh_c * tanh_c)
        torch.mul(dh * tanh_c, o * (1.0 - o), out=d_o)
        torch.mul(dc * g, i * (1.0 - i), out=d_i)
        torch.mul(dc * previous[1], f * (1.0 - f), out=d_f)
        torch.mul(dc * i, 1.0 - g * g, out=d_g)
        return d_gates, (None, dc * f), d_gates @ weight, d_gates
