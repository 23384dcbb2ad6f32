"""GRU steps for the scan kernel, both published variants (reference: ``rnnkit.cells.gru.GRUCell``).

reset_after=True (cuDNN, torch.nn):  [g_r g_z g_n] = W_hh h_{t-1} (+ b_hn, kept inside: r multiplies it)
    r = σ(xp_r + g_r), z = σ(xp_z + g_z), n = tanh(xp_n + r ⊙ g_n)
reset_after=False (Cho et al. 2014):  [g_r g_z] = W_hr,z h_{t-1};  r, z as above;  g_n = W_hn (r ⊙ h_{t-1})
    n = tanh(xp_n + g_n)
both:  h_t = z ⊙ h_{t-1} + (1 - z) ⊙ n

Backward, with dh reaching h_t:  dn = dh ⊙ (1-z), dz = dh ⊙ (h_{t-1} - n), dh_{t-1} ⊇ dh ⊙ z,
    da_n = dn ⊙ (1-n²), da_z = dz ⊙ z(1-z), da_r = dr ⊙ r(1-r) where
    dr = da_n ⊙ g_n (reset after) or dr = (da_n W_hn) ⊙ h_{t-1} (reset before).
"""

from __future__ import annotations

import torch

from rnnkit.kernels.scan.step import ScanStep


def _gates_backward(dh, previous_h, r, z, n):
    """dh -> (da_z, da_n, the direct share of dh_{t-1}), common to both variants."""
    d_n = dh * (1.0 - z) * (1.0 - n * n)
    d_z = dh * (previous_h - n) * z * (1.0 - z)
    return d_z, d_n, dh * z


class GRUStep(ScanStep):
    """reset_after=True."""

    compiled_id = 3

    def input_terms(self, projected, bias_hh):
        if bias_hh is None:
            return projected, None
        H = self.hidden_size
        # b_hr, b_hz add to the input terms; b_hn is multiplied by r, so it stays inside the loop.
        return torch.cat([projected[..., : 2 * H] + bias_hh[: 2 * H], projected[..., 2 * H :]], dim=-1), bias_hh[2 * H :]

    def forward(self, xp_t, state, rec_in, weight_t, inner_bias):
        H = self.hidden_size
        recurrent = rec_in @ weight_t  # (B, 3H)
        rz = torch.sigmoid(xp_t[:, : 2 * H] + recurrent[:, : 2 * H])
        r, z = rz.chunk(2, dim=1)
        g_n = recurrent[:, 2 * H :] if inner_bias is None else recurrent[:, 2 * H :] + inner_bias
        n = torch.tanh(torch.addcmul(xp_t[:, 2 * H :], r, g_n))
        h = torch.addcmul(n, z, state[0] - n)  # z h + (1 - z) n
        return (h,), (r, z, n, g_n)

    def backward(self, saved, previous, d_state, weight, inner_bias):
        r, z, n, g_n = saved
        d_z, d_n, d_direct = _gates_backward(d_state[0], previous[0], r, z, n)
        d_r = d_n * g_n * r * (1.0 - r)
        d_input = torch.cat([d_r, d_z, d_n], dim=1)
        d_recurrent = torch.cat([d_r, d_z, d_n * r], dim=1)
        return d_input, (d_direct,), d_recurrent @ weight, d_recurrent

    def weight_gradients(self, d_recurrent, rec_inputs, inner_bias, reset=None):
        d_weight, _ = super().weight_gradients(d_recurrent, rec_inputs, inner_bias)
        d_inner = None if inner_bias is None else d_recurrent[..., 2 * self.hidden_size :].sum(dim=(0, 1))
        return d_weight, d_inner


class GRUResetBeforeStep(ScanStep):
    """reset_after=False; every recurrent bias adds to the input terms."""

    compiled_id = 4
    needs_reset_gates = True

    def forward(self, xp_t, state, rec_in, weight_t, inner_bias):
        H = self.hidden_size
        rz = torch.sigmoid(torch.addmm(xp_t[:, : 2 * H], rec_in, weight_t[:, : 2 * H]))
        r, z = rz.chunk(2, dim=1)
        n = torch.tanh(torch.addmm(xp_t[:, 2 * H :], r * rec_in, weight_t[:, 2 * H :]))
        h = torch.addcmul(n, z, state[0] - n)
        return (h,), (r, z, n, rec_in)

    def backward(self, saved, previous, d_state, weight, inner_bias):
        H = self.hidden_size
        r, z, n, rec_in = saved
        d_z, d_n, d_direct = _gates_backward(d_state[0], previous[0], r, z, n)
        d_reset_input = d_n @ weight[2 * H :]  # gradient of r ⊙ h_{t-1}
        d_r = d_reset_input * rec_in * r * (1.0 - r)
        d_input = torch.cat([d_r, d_z, d_n], dim=1)
        d_rec_in = torch.addmm(d_reset_input * r, d_input[:, : 2 * H], weight[: 2 * H])
        return d_input, (d_direct,), d_rec_in, d_input

    def weight_gradients(self, d_recurrent, rec_inputs, inner_bias, reset=None):
        H = self.hidden_size
        rows = d_recurrent.shape[0] * d_recurrent.shape[1]
        d_flat = d_recurrent.reshape(rows, -1)
        reset = reset.reshape(rows, -1)
        h_in = rec_inputs.reshape(rows, -1)
        d_rz = d_flat[:, : 2 * H].t() @ h_in
        d_n = d_flat[:, 2 * H :].t() @ (reset * h_in)
        return torch.cat([d_rz, d_n]), None
