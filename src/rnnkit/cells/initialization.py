"""Initialisations from the papers that make gated and independent recurrences remember long."""

from __future__ import annotations

import torch

from rnnkit._checks import ArgumentError


def chrono_forget_bias(hidden_size: int, t_max: float) -> torch.Tensor:
    """Chrono initialisation (Tallec & Ollivier 2018, "Can recurrent neural networks warp time?").

    b_f ~ log(U(1, t_max - 1)). A forget gate with bias b keeps information for about
    1 + e^b steps, so the units' memory spans are spread over 1..t_max.
    """
    if t_max <= 2:
        raise ArgumentError(f"t_max: expected a number above 2 for chrono initialisation, got {t_max}")
    spans = torch.empty(hidden_size).uniform_(1.0, t_max - 1.0)
    return torch.log(spans)


def indrnn_recurrent_max(t_max: float | None) -> float | None:
    """The largest |u| that keeps a unit's gradient from exploding over t_max steps: 2^(1/t_max).

    (Li et al. 2018, Sec. 3.1: u^T stays within [0, 2] over T steps of a ReLU IndRNN.)
    """
    if t_max is None:
        return None
    if t_max < 1:
        raise ArgumentError(f"t_max: expected a number of steps >= 1, got {t_max}")
    return 2.0 ** (1.0 / t_max)
