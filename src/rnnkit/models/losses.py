"""The losses models own, by name, and the masking of padded steps they share.

Every model's ``forward(inputs, state=None, *, lengths=None, targets=None)`` returns
``(outputs, loss, state)`` with ``loss`` None without targets. Cross-entropy's
``ignore_index`` is how padded steps are left out: their targets are set to it.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from rnnkit.sequences import step_mask

IGNORED = -100  # F.cross_entropy's default ignore_index


def ignore_padding(targets: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """(T, B, ...) class targets with the steps past each sequence's length set to ``IGNORED``."""
    if lengths is None:
        return targets
    mask = step_mask(lengths, targets.shape[0], targets.device)  # (T, B)
    return targets.masked_fill(~mask.reshape(mask.shape + (1,) * (targets.dim() - 2)), IGNORED)


def cross_entropy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy in nats: (..., C) logits against (...) classes, one per position."""
    return F.cross_entropy(outputs.float().reshape(-1, outputs.shape[-1]), targets.reshape(-1))


def mean_squared_error(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error: (..., 1) predictions against (...) values."""
    return F.mse_loss(outputs.float().squeeze(-1), targets)


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "cross_entropy": cross_entropy,
    "mse": mean_squared_error,
}
