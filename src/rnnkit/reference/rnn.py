"""Elman RNN: forward pass and backpropagation through time in NumPy.

Forward, t = 1..T:
    a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
    h_t = tanh(a_t)

Backward, t = T..1, given ∂ℓ_t/∂h_t from the per-step losses:
    δh_t = ∂ℓ_t/∂h_t + W_hhᵀ δa_{t+1}        what reaches h_t: its own loss, and the future
    δa_t = δh_t ⊙ (1 - h_t²)                  through tanh
    ∂L/∂W_ih += δa_t x_tᵀ,   ∂L/∂W_hh += δa_t h_{t-1}ᵀ,   ∂L/∂b += δa_t
    ∂L/∂x_t = W_ihᵀ δa_t

The product of the Jacobians W_hhᵀ diag(1 - h_t²) over many steps is what vanishes or
explodes: that is the whole story of long-term dependencies in one line.
"""

from __future__ import annotations

import numpy as np

from rnnkit.reference._math import dtanh_from_output


def forward(params: dict[str, np.ndarray], xs: np.ndarray, h0: np.ndarray) -> tuple[np.ndarray, dict]:
    """xs (T, B, I), h0 (B, H) -> hs (T, B, H) and the cache backward needs."""
    W_ih, W_hh, b_ih, b_hh = params["weight_ih"], params["weight_hh"], params["bias_ih"], params["bias_hh"]
    hs = np.empty((xs.shape[0], xs.shape[1], W_hh.shape[0]))
    h = h0
    for t in range(xs.shape[0]):
        h = np.tanh(xs[t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh)
        hs[t] = h
    return hs, {"xs": xs, "h0": h0, "hs": hs}


def backward(params: dict[str, np.ndarray], cache: dict, dhs: np.ndarray) -> tuple[dict[str, np.ndarray], dict]:
    """dhs (T, B, H) = ∂ℓ_t/∂h_t -> parameter gradients, and {"x": ∂L/∂xs, "h0": ∂L/∂h0}."""
    W_ih, W_hh = params["weight_ih"], params["weight_hh"]
    xs, hs, h0 = cache["xs"], cache["hs"], cache["h0"]
    grads = {name: np.zeros_like(value) for name, value in params.items()}
    dxs = np.zeros_like(xs)
    dh_future = np.zeros_like(h0)  # W_hhᵀ δa_{t+1}: gradient reaching h_t from step t+1
    for t in reversed(range(xs.shape[0])):
        h_prev = hs[t - 1] if t > 0 else h0
        dh = dhs[t] + dh_future
        da = dh * dtanh_from_output(hs[t])
        grads["weight_ih"] += da.T @ xs[t]
        grads["weight_hh"] += da.T @ h_prev
        grads["bias_ih"] += da.sum(axis=0)
        grads["bias_hh"] += da.sum(axis=0)
        dxs[t] = da @ W_ih
        dh_future = da @ W_hh
    return grads, {"x": dxs, "h0": dh_future}
