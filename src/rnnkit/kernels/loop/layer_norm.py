"""Per-gate layer normalisation inside the loop kernel, with its backward written out.

The same normalisation as ``rnnkit.cells.normalization.gate_layer_norm`` without the gain
(the steps apply it, since its gradient is theirs to sum): each of ``num_gates`` blocks of
H units is centred and scaled by its own statistics,

    x̂ = (x - μ) / √(σ² + ε),   μ, σ² the mean and (biased) variance over the block,

and the backward of y = x̂ (for an incoming dy over one block of H units) is

    dx = (dy - mean(dy) - x̂ ⊙ mean(dy ⊙ x̂)) / √(σ² + ε).
"""

from __future__ import annotations

import torch

from rnnkit.cells.normalization import EPSILON


def normalise(x: torch.Tensor, num_gates: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, G·H) -> (x̂ (B, G·H), 1/√(σ² + ε) (B, G, 1)): what the backward needs."""
    blocks = x.reshape(x.shape[0], num_gates, -1)
    variance, mean = torch.var_mean(blocks, dim=-1, unbiased=False, keepdim=True)
    inverse_std = torch.rsqrt(variance + EPSILON)
    return ((blocks - mean) * inverse_std).reshape(x.shape), inverse_std


def normalise_backward(d_normalised: torch.Tensor, normalised: torch.Tensor, inverse_std: torch.Tensor) -> torch.Tensor:
    """The gradient of x from the gradient of x̂ (both (B, G·H)), given what ``normalise`` returned."""
    batch, num_gates = inverse_std.shape[:2]
    d = d_normalised.reshape(batch, num_gates, -1)
    x_hat = normalised.reshape(batch, num_gates, -1)
    centred = d - d.mean(dim=-1, keepdim=True) - x_hat * (d * x_hat).mean(dim=-1, keepdim=True)
    return (centred * inverse_std).reshape(d_normalised.shape)
