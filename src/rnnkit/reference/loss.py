"""A per-step loss for the reference BPTT: softmax cross-entropy of a linear read-out of h_t.

    y_t = W_hy h_t + b_y,   p_t = softmax(y_t),   L = Σ_t Σ_b -log p_t[target_t]

Returns dL/dh_t for every t; BPTT then adds what flows back through the recurrence.
"""

from __future__ import annotations

import numpy as np


def softmax_cross_entropy(
    W_hy: np.ndarray, b_y: np.ndarray, hs: np.ndarray, targets: np.ndarray
) -> tuple[float, np.ndarray, dict[str, np.ndarray]]:
    """hs (T, B, H), targets (T, B) int -> (loss, dL/dh (T, B, H), {"W_hy", "b_y"} gradients)."""
    logits = hs @ W_hy.T + b_y  # (T, B, V)
    logits = logits - logits.max(axis=-1, keepdims=True)  # stable softmax, same result
    p = np.exp(logits)
    p /= p.sum(axis=-1, keepdims=True)
    T, B = targets.shape
    picked = p[np.arange(T)[:, None], np.arange(B)[None, :], targets]
    loss = float(-np.log(picked).sum())
    dlogits = p.copy()
    dlogits[np.arange(T)[:, None], np.arange(B)[None, :], targets] -= 1.0  # ∂L/∂y_t = p_t - onehot
    dhs = dlogits @ W_hy  # (T, B, H)
    grads = {"W_hy": np.einsum("tbv,tbh->vh", dlogits, hs), "b_y": dlogits.sum(axis=(0, 1))}
    return loss, dhs, grads
