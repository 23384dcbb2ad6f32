"""GRU: forward pass and backpropagation through time in NumPy, both published variants.

Forward, t = 1..T (gates stacked r, z, n as in torch.nn; W_h· are row blocks of W_hh):
    r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
    z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
    n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))       reset_after=True (torch, cuDNN)
    n_t = tanh(W_in x_t + b_in + W_hn (r_t ⊙ h_{t-1}) + b_hn)       reset_after=False (Cho et al. 2014)
    h_t = z_t ⊙ h_{t-1} + (1 - z_t) ⊙ n_t

Backward, t = T..1, with δh_t = ∂ℓ_t/∂h_t + (what flows back from t+1):
    δz = δh ⊙ (h_{t-1} - n_t),   δn = δh ⊙ (1 - z_t),   δh_{t-1} ∋ δh ⊙ z_t
    δa_n = δn ⊙ (1 - n_t²)
    reset_after=True:   δr = δa_n ⊙ (W_hn h_{t-1} + b_hn);  recurrent δ for the n block is δa_n ⊙ r_t
    reset_after=False:  δ(r⊙h) = W_hnᵀ δa_n;  δr = δ(r⊙h) ⊙ h_{t-1};  δh_{t-1} ∋ δ(r⊙h) ⊙ r_t
    δa_r = δr ⊙ r(1-r),   δa_z = δz ⊙ z(1-z)
"""

from __future__ import annotations

import numpy as np

from rnnkit.reference._math import dsigmoid_from_output, dtanh_from_output, sigmoid


def forward(
    params: dict[str, np.ndarray], xs: np.ndarray, h0: np.ndarray, reset_after: bool = True
) -> tuple[np.ndarray, dict]:
    """xs (T, B, I), h0 (B, H) -> hs (T, B, H) and the cache backward needs."""
    W_ih, W_hh, b_ih, b_hh = params["weight_ih"], params["weight_hh"], params["bias_ih"], params["bias_hh"]
    H = W_hh.shape[1]
    W_hrz, W_hn = W_hh[: 2 * H], W_hh[2 * H :]
    b_hrz, b_hn = b_hh[: 2 * H], b_hh[2 * H :]
    T, B = xs.shape[:2]
    keep = {name: np.empty((T, B, H)) for name in ("r", "z", "n", "hn", "h")}
    h = h0
    for t in range(T):
        a_ir, a_iz, a_in = np.split(xs[t] @ W_ih.T + b_ih, 3, axis=1)
        a_hr, a_hz = np.split(h @ W_hrz.T + b_hrz, 2, axis=1)
        r, z = sigmoid(a_ir + a_hr), sigmoid(a_iz + a_hz)
        hn = h @ W_hn.T + b_hn if reset_after else (r * h) @ W_hn.T + b_hn
        n = np.tanh(a_in + r * hn) if reset_after else np.tanh(a_in + hn)
        h = z * h + (1.0 - z) * n
        for name, value in zip(("r", "z", "n", "hn", "h"), (r, z, n, hn, h)):
            keep[name][t] = value
    return keep["h"], {"xs": xs, "h0": h0, "reset_after": reset_after, **keep}


def backward(params: dict[str, np.ndarray], cache: dict, dhs: np.ndarray) -> tuple[dict[str, np.ndarray], dict]:
    """dhs (T, B, H) = ∂ℓ_t/∂h_t -> parameter gradients, and {"x", "h0"} gradients."""
    W_ih, W_hh = params["weight_ih"], params["weight_hh"]
    H = W_hh.shape[1]
    W_hrz, W_hn = W_hh[: 2 * H], W_hh[2 * H :]
    xs, reset_after = cache["xs"], cache["reset_after"]
    grads = {name: np.zeros_like(value) for name, value in params.items()}
    dxs = np.zeros_like(xs)
    dh_future = np.zeros_like(cache["h0"])
    for t in reversed(range(xs.shape[0])):
        r, z, n, hn = (cache[name][t] for name in ("r", "z", "n", "hn"))
        h_prev = cache["h"][t - 1] if t > 0 else cache["h0"]
        dh = dhs[t] + dh_future
        dz = dh * (h_prev - n)
        dn = dh * (1.0 - z)
        dh_prev = dh * z
        da_n = dn * dtanh_from_output(n)
        if reset_after:
            dr = da_n * hn
            da_hn = da_n * r  # δ of W_hn h_{t-1} + b_hn
            grads["weight_hh"][2 * H :] += da_hn.T @ h_prev
            dh_prev += da_hn @ W_hn
        else:
            da_hn = da_n  # δ of W_hn (r ⊙ h_{t-1}) + b_hn
            grads["weight_hh"][2 * H :] += da_hn.T @ (r * h_prev)
            d_reset_h = da_hn @ W_hn
            dr = d_reset_h * h_prev
            dh_prev += d_reset_h * r
        da_rz = np.concatenate([dr * dsigmoid_from_output(r), dz * dsigmoid_from_output(z)], axis=1)
        grads["weight_hh"][: 2 * H] += da_rz.T @ h_prev
        grads["bias_hh"] += np.concatenate([da_rz, da_hn], axis=1).sum(axis=0)
        dh_prev += da_rz @ W_hrz
        da_i = np.concatenate([da_rz, da_n], axis=1)
        grads["weight_ih"] += da_i.T @ xs[t]
        grads["bias_ih"] += da_i.sum(axis=0)
        dxs[t] = da_i @ W_ih
        dh_future = dh_prev
    return grads, {"x": dxs, "h0": dh_future}
