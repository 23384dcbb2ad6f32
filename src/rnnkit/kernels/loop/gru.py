"""GRU steps for the loop kernel, both published variants (reference: ``rnnkit.cells.gru.GRUCell``).

reset_after=True (cuDNN, torch.nn):  [g_r g_z g_n] = W_hh h_{t-1} (+ b_hn, kept inside: r multiplies it)
    r = σ(xp_r + g_r), z = σ(xp_z + g_z), n = tanh(xp_n + r ⊙ g_n)
reset_after=False (Cho et al. 2014):  [g_r g_z] = W_hr,z h_{t-1};  r, z as above;  g_n = W_hn (r ⊙ h_{t-1})
    n = tanh(xp_n + g_n)
both:  h_t = z ⊙ h_{t-1} + (1 - z) ⊙ n

Backward, with dh reaching h_t:  dn = dh ⊙ (1-z), dz = dh ⊙ (h_{t-1} - n), dh_{t-1} ⊇ dh ⊙ z,
    da_n = dn ⊙ (1-n²), da_z = dz ⊙ z(1-z), da_r = dr ⊙ r(1-r) where
    dr = da_n ⊙ g_n (reset after) or dr = (da_n W_hn) ⊙ h_{t-1} (reset before).

With layer norm (the ``LayerNorm*`` steps), each recurrent block W h is replaced by
γ_hh ⊙ LN(W h) per gate (b_hh still added after), and its gradient passes LN's backward
before reaching W_hh: d(W h) = LN'(γ_hh ⊙ d g).  γ_hh's gradient is summed at each step.
"""

from __future__ import annotations

import torch

from rnnkit.kernels.loop.layer_norm import normalise, normalise_backward
from rnnkit.kernels.loop.step import LoopStep, StepGradients


def _gates_backward(dh, previous_h, r, z, n):
    """dh -> (da_z, da_n, the direct share of dh_{t-1}), common to both variants."""
    d_n = dh * (1.0 - z) * (1.0 - n * n)
    d_z = dh * (previous_h - n) * z * (1.0 - z)
    return d_z, d_n, dh * z


class GRUStep(LoopStep):
    """reset_after=True."""

    compiled_id = 3

    def split_recurrent_bias(self, bias_hh):
        if bias_hh is None:
            return None, None
        H = self.hidden_size
        # b_hr, b_hz add to the input terms; b_hn is multiplied by r, so it stays inside the loop.
        return torch.cat([bias_hh[: 2 * H], bias_hh.new_zeros(H)]), bias_hh[2 * H :]

    def forward(self, xp_t, state, rec_in, weight_t, inner):
        return self.gates_forward(xp_t, state, rec_in @ weight_t, inner[0] if inner else None)

    def gates_forward(self, xp_t, state, recurrent, inner_bias):
        """The step from the recurrent term [g_r g_z g_n] (B, 3H) on."""
        H = self.hidden_size
        rz = torch.sigmoid(xp_t[:, : 2 * H] + recurrent[:, : 2 * H])
        r, z = rz.chunk(2, dim=1)
        g_n = recurrent[:, 2 * H :] if inner_bias is None else recurrent[:, 2 * H :] + inner_bias
        n = torch.tanh(torch.addcmul(xp_t[:, 2 * H :], r, g_n))
        h = torch.addcmul(n, z, state[0] - n)  # z h + (1 - z) n
        return (h,), (r, z, n, g_n)

    def backward(self, saved, previous, d_state, weight, inner):
        d_input, d_direct, d_recurrent = self.gates_backward(saved, previous, d_state)
        return d_input, (d_direct,), d_recurrent @ weight, d_recurrent

    def gates_backward(self, saved, previous, d_state):
        """(d input term, direct share of dh_{t-1}, d recurrent term [g_r g_z g_n])."""
        r, z, n, g_n = saved[:4]
        d_z, d_n, d_direct = _gates_backward(d_state[0], previous[0], r, z, n)
        d_r = d_n * g_n * r * (1.0 - r)
        return torch.cat([d_r, d_z, d_n], dim=1), d_direct, torch.cat([d_r, d_z, d_n * r], dim=1)

    def weight_gradients(self, d_recurrent, rec_inputs, inner, reset=None):
        d_weight, _ = super().weight_gradients(d_recurrent, rec_inputs, inner)
        d_inner = tuple(d_recurrent[..., 2 * self.hidden_size :].sum(dim=(0, 1)) for _ in inner)  # b_hn, if any
        return d_weight, d_inner


class LayerNormGRUStep(GRUStep):
    """reset_after=True, layer_norm=True; inner = (b_hn, γ_hh) or (γ_hh,)."""

    compiled_id = 9

    def inner_tensors(self, cell, inner_bias):
        return super().inner_tensors(cell, inner_bias) + (cell.ln_hh_weight,)

    def forward(self, xp_t, state, rec_in, weight_t, inner):
        normalised, inverse_std = normalise(rec_in @ weight_t, 3)
        new, saved = self.gates_forward(xp_t, state, normalised * inner[-1], inner[0] if len(inner) == 2 else None)
        return new, saved + (normalised, inverse_std)

    def backward(self, saved, previous, d_state, weight, inner):
        normalised, inverse_std = saved[4:]
        d_input, d_direct, d_recurrent = self.gates_backward(saved, previous, d_state)
        d_raw = normalise_backward(d_recurrent * inner[-1], normalised, inverse_std)  # d(W_hh h_{t-1})
        d_gain = (d_recurrent * normalised).sum(0)
        d_inner = (d_gain,) if len(inner) == 1 else (d_recurrent[:, 2 * self.hidden_size :].sum(0), d_gain)
        return StepGradients(d_input, (d_direct,), d_raw @ weight, d_raw, d_inner)

    def weight_gradients(self, d_recurrent, rec_inputs, inner, reset=None):
        d_weight, _ = LoopStep.weight_gradients(self, d_recurrent, rec_inputs, inner)
        return d_weight, (None,) * len(inner)  # the loops give b_hn's and γ_hh's, summed over the steps


class GRUResetBeforeStep(LoopStep):
    """reset_after=False; every recurrent bias adds to the input terms."""

    compiled_id = 4
    needs_reset_gates = True

    def forward(self, xp_t, state, rec_in, weight_t, inner):
        H = self.hidden_size
        rz = torch.sigmoid(torch.addmm(xp_t[:, : 2 * H], rec_in, weight_t[:, : 2 * H]))
        r, z = rz.chunk(2, dim=1)
        n = torch.tanh(torch.addmm(xp_t[:, 2 * H :], r * rec_in, weight_t[:, 2 * H :]))
        h = torch.addcmul(n, z, state[0] - n)
        return (h,), (r, z, n, rec_in)

    def backward(self, saved, previous, d_state, weight, inner):
        H = self.hidden_size
        r, z, n, rec_in = saved
        d_z, d_n, d_direct = _gates_backward(d_state[0], previous[0], r, z, n)
        d_reset_input = d_n @ weight[2 * H :]  # gradient of r ⊙ h_{t-1}
        d_r = d_reset_input * rec_in * r * (1.0 - r)
        d_input = torch.cat([d_r, d_z, d_n], dim=1)
        d_rec_in = torch.addmm(d_reset_input * r, d_input[:, : 2 * H], weight[: 2 * H])
        return d_input, (d_direct,), d_rec_in, d_input

    def weight_gradients(self, d_recurrent, rec_inputs, inner, reset=None):
        H = self.hidden_size
        rows = d_recurrent.shape[0] * d_recurrent.shape[1]
        d_flat = d_recurrent.reshape(rows, -1)
        reset = reset.reshape(rows, -1)
        h_in = rec_inputs.reshape(rows, -1)
        d_rz = d_flat[:, : 2 * H].t() @ h_in
        d_n = d_flat[:, 2 * H :].t() @ (reset * h_in)
        return torch.cat([d_rz, d_n]), (None,) * len(inner)


class LayerNormGRUResetBeforeStep(GRUResetBeforeStep):
    """reset_after=False, layer_norm=True; inner = (γ_hh,).

    d_recurrent holds d(W_hr,z h_{t-1}) and d(W_hn (r ⊙ h_{t-1})), before the normalisation,
    so the parent's weight_gradients applies unchanged.
    """

    compiled_id = 10

    def inner_tensors(self, cell, inner_bias):
        return (cell.ln_hh_weight,)

    def forward(self, xp_t, state, rec_in, weight_t, inner):
        H = self.hidden_size
        (gain,) = inner
        rz_hat, rz_inverse_std = normalise(rec_in @ weight_t[:, : 2 * H], 2)
        rz = torch.sigmoid(torch.addcmul(xp_t[:, : 2 * H], rz_hat, gain[: 2 * H]))
        r, z = rz.chunk(2, dim=1)
        n_hat, n_inverse_std = normalise((r * rec_in) @ weight_t[:, 2 * H :], 1)
        n = torch.tanh(torch.addcmul(xp_t[:, 2 * H :], n_hat, gain[2 * H :]))
        h = torch.addcmul(n, z, state[0] - n)
        return (h,), (r, z, n, rec_in, rz_hat, rz_inverse_std, n_hat, n_inverse_std)

    def backward(self, saved, previous, d_state, weight, inner):
        H = self.hidden_size
        (gain,) = inner
        r, z, n, rec_in, rz_hat, rz_inverse_std, n_hat, n_inverse_std = saved
        d_z, d_n, d_direct = _gates_backward(d_state[0], previous[0], r, z, n)
        d_raw_n = normalise_backward(d_n * gain[2 * H :], n_hat, n_inverse_std)  # d(W_hn (r ⊙ h_{t-1}))
        d_reset_input = d_raw_n @ weight[2 * H :]
        d_r = d_reset_input * rec_in * r * (1.0 - r)
        d_rz = torch.cat([d_r, d_z], dim=1)
        d_raw_rz = normalise_backward(d_rz * gain[: 2 * H], rz_hat, rz_inverse_std)  # d(W_hr,z h_{t-1})
        d_rec_in = torch.addmm(d_reset_input * r, d_raw_rz, weight[: 2 * H])
        d_gain = torch.cat([(d_rz * rz_hat).sum(0), (d_n * n_hat).sum(0)])
        d_input = torch.cat([d_rz, d_n], dim=1)
        return StepGradients(d_input, (d_direct,), d_rec_in, torch.cat([d_raw_rz, d_raw_n], dim=1), (d_gain,))
