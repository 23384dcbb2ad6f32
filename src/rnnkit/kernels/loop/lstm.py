"""LSTM steps for the loop kernel (reference: ``rnnkit.cells.lstm.LSTMCell``).

    [i f g o]_t = xp_t + W_hh h_{t-1}        xp_t = W_ih x_t + b_ih + b_hh, for all t at once
    i, f, o = σ(.), g = tanh(.);  c_t = f ⊙ c_{t-1} + i ⊙ g;  h_t = o ⊙ tanh(c_t)

Backward, with dh, dc the gradients reaching h_t, c_t:
    dc += dh ⊙ o ⊙ (1 - tanh²c_t);   dc_{t-1} = dc ⊙ f
    d[i f g o] = [dc⊙g⊙i(1-i), dc⊙c_{t-1}⊙f(1-f), dc⊙i⊙(1-g²), dh⊙tanh c_t⊙o(1-o)]

With layer norm (Ba et al. 2016; ``LayerNormLSTMStep``), per gate block and on the cell:
    [i f g o]_t = xp_t + γ_hh ⊙ LN(W_hh h_{t-1})       xp_t = γ_ih ⊙ LN(W_ih x_t) + b_ih + b_hh
    h_t = o ⊙ tanh(m_t),  m_t = γ_c ⊙ LN(c_t) + β_c
so dc gains dh ⊙ o ⊙ (1 - tanh²m) through LN's backward, and W_hh's gradient is taken
before the normalisation: d(W_hh h) = LN'(γ_hh ⊙ d[i f g o]).  γ and β gradients are summed
over the batch at each step.
"""

from __future__ import annotations

import torch

from rnnkit.kernels.loop.layer_norm import normalise, normalise_backward
from rnnkit.kernels.loop.step import LoopStep, StepGradients


def _activate(gates: torch.Tensor, H: int) -> torch.Tensor:
    """i, f, o = σ, g = tanh, in place on the (B, 4H) pre-activations."""
    gates[:, : 2 * H].sigmoid_()
    gates[:, 2 * H : 3 * H].tanh_()
    gates[:, 3 * H :].sigmoid_()
    return gates


def _gate_gradients(gates: torch.Tensor, previous_c: torch.Tensor, dc: torch.Tensor, dh_tanh: torch.Tensor) -> torch.Tensor:
    """d[i f g o] (pre-activation) from the total dc and from dh ⊙ tanh(·) that reaches o."""
    i, f, g, o = gates.chunk(4, dim=1)
    d_i = dc * g * i * (1.0 - i)
    d_f = dc * previous_c * f * (1.0 - f)
    d_g = dc * i * (1.0 - g * g)
    d_o = dh_tanh * o * (1.0 - o)
    return torch.cat([d_i, d_f, d_g, d_o], dim=1)


class LSTMStep(LoopStep):
    compiled_id = 2
    state_parts = 2

    def forward(self, xp_t, state, rec_in, weight_t, inner):
        gates = _activate(torch.addmm(xp_t, rec_in, weight_t), self.hidden_size)  # (B, 4H): i f g o
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.addcmul(f * state[1], i, g)
        tanh_c = torch.tanh(c)
        return (o * tanh_c, c), (gates, tanh_c)

    def backward(self, saved, previous, d_state, weight, inner):
        gates, tanh_c = saved
        dh, dc = d_state
        o = gates[:, 3 * self.hidden_size :]
        dc = torch.addcmul(dc, dh * o, 1.0 - tanh_c * tanh_c)
        d_gates = _gate_gradients(gates, previous[1], dc, dh * tanh_c)
        return d_gates, (None, dc * gates[:, self.hidden_size : 2 * self.hidden_size]), d_gates @ weight, d_gates


class LayerNormLSTMStep(LSTMStep):
    """layer_norm=True; inner = (γ_hh, γ_c, β_c)."""

    compiled_id = 8

    def inner_tensors(self, cell, inner_bias):
        return (cell.ln_hh_weight, cell.ln_cell_weight, cell.ln_cell_bias)

    def forward(self, xp_t, state, rec_in, weight_t, inner):
        gain_hh, gain_c, shift_c = inner
        recurrent, recurrent_inverse_std = normalise(rec_in @ weight_t, 4)
        gates = _activate(torch.addcmul(xp_t, recurrent, gain_hh), self.hidden_size)
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.addcmul(f * state[1], i, g)
        c_hat, c_inverse_std = normalise(c, 1)
        tanh_m = torch.tanh(torch.addcmul(shift_c, c_hat, gain_c))
        saved = (gates, tanh_m, recurrent, recurrent_inverse_std, c_hat, c_inverse_std)
        return (o * tanh_m, c), saved

    def backward(self, saved, previous, d_state, weight, inner):
        gain_hh, gain_c, _ = inner
        gates, tanh_m, recurrent, recurrent_inverse_std, c_hat, c_inverse_std = saved
        dh, dc = d_state
        H = self.hidden_size
        d_m = dh * gates[:, 3 * H :] * (1.0 - tanh_m * tanh_m)
        dc = dc + normalise_backward(d_m * gain_c, c_hat, c_inverse_std)
        d_gates = _gate_gradients(gates, previous[1], dc, dh * tanh_m)
        d_raw = normalise_backward(d_gates * gain_hh, recurrent, recurrent_inverse_std)  # d(W_hh h_{t-1})
        d_inner = ((d_gates * recurrent).sum(0), (d_m * c_hat).sum(0), d_m.sum(0))
        return StepGradients(d_gates, (None, dc * gates[:, H : 2 * H]), d_raw @ weight, d_raw, d_inner)
