"""LSTM: forward pass and backpropagation through time in NumPy.

Forward, t = 1..T (gates stacked i, f, g, o as in torch.nn):
    a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh = [a_i; a_f; a_g; a_o]
    i_t = σ(a_i),  f_t = σ(a_f),  g_t = tanh(a_g),  o_t = σ(a_o)
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    h_t = o_t ⊙ tanh(c_t)

Backward, t = T..1 (δ = ∂L/∂·):
    δh_t = ∂ℓ_t/∂h_t + W_hhᵀ δa_{t+1}
    δo_t = δh_t ⊙ tanh(c_t)
    δc_t = δc_t(from t+1) + δh_t ⊙ o_t ⊙ (1 - tanh²(c_t))
    δi_t = δc_t ⊙ g_t,   δg_t = δc_t ⊙ i_t,   δf_t = δc_t ⊙ c_{t-1}
    δc_{t-1} = δc_t ⊙ f_t                     the "constant error carousel": only ⊙ f_t
    δa = [δi ⊙ i(1-i); δf ⊙ f(1-f); δg ⊙ (1-g²); δo ⊙ o(1-o)]
    ∂L/∂W_ih += δa x_tᵀ,  ∂L/∂W_hh += δa h_{t-1}ᵀ,  ∂L/∂b += δa,  ∂L/∂x_t = W_ihᵀ δa

The cell path δc_{t-1} = δc_t ⊙ f_t has no matrix product and no squashing derivative,
which is why an LSTM with open forget gates carries gradients over long spans.
"""

from __future__ import annotations

import numpy as np

from rnnkit.reference._math import dsigmoid_from_output, dtanh_from_output, sigmoid


def forward(
    params: dict[str, np.ndarray], xs: np.ndarray, h0: np.ndarray, c0: np.ndarray
) -> tuple[np.ndarray, dict]:
    """xs (T, B, I), h0, c0 (B, H) -> hs (T, B, H) and the cache backward needs."""
    W_ih, W_hh, b_ih, b_hh = params["weight_ih"], params["weight_hh"], params["bias_ih"], params["bias_hh"]
    T, B = xs.shape[:2]
    H = W_hh.shape[1]
    keep = {name: np.empty((T, B, H)) for name in ("i", "f", "g", "o", "c", "h")}
    h, c = h0, c0
    for t in range(T):
        a = xs[t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh
        a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)
        i, f, g, o = sigmoid(a_i), sigmoid(a_f), np.tanh(a_g), sigmoid(a_o)
        c = f * c + i * g
        h = o * np.tanh(c)
        for name, value in zip(("i", "f", "g", "o", "c", "h"), (i, f, g, o, c, h)):
            keep[name][t] = value
    return keep["h"], {"xs": xs, "h0": h0, "c0": c0, **keep}


def backward(params: dict[str, np.ndarray], cache: dict, dhs: np.ndarray) -> tuple[dict[str, np.ndarray], dict]:
    """dhs (T, B, H) = ∂ℓ_t/∂h_t -> parameter gradients, and {"x", "h0", "c0"} gradients."""
    W_ih, W_hh = params["weight_ih"], params["weight_hh"]
    xs = cache["xs"]
    grads = {name: np.zeros_like(value) for name, value in params.items()}
    dxs = np.zeros_like(xs)
    dh_future = np.zeros_like(cache["h0"])
    dc = np.zeros_like(cache["c0"])
    for t in reversed(range(xs.shape[0])):
        i, f, g, o, c = (cache[name][t] for name in ("i", "f", "g", "o", "c"))
        h_prev = cache["h"][t - 1] if t > 0 else cache["h0"]
        c_prev = cache["c"][t - 1] if t > 0 else cache["c0"]
        dh = dhs[t] + dh_future
        tanh_c = np.tanh(c)
        do = dh * tanh_c
        dc = dc + dh * o * dtanh_from_output(tanh_c)
        di, dg, df = dc * g, dc * i, dc * c_prev
        da = np.concatenate(
            [di * dsigmoid_from_output(i), df * dsigmoid_from_output(f), dg * dtanh_from_output(g), do * dsigmoid_from_output(o)],
            axis=1,
        )
        grads["weight_ih"] += da.T @ xs[t]
        grads["weight_hh"] += da.T @ h_prev
        grads["bias_ih"] += da.sum(axis=0)
        grads["bias_hh"] += da.sum(axis=0)
        dxs[t] = da @ W_ih
        dh_future = da @ W_hh
        dc = dc * f
    return grads, {"x": dxs, "h0": dh_future, "c0": dc}
