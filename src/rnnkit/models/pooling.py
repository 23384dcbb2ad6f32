"""Pooling: one vector per sentence from the recurrent outputs at its valid steps (never the padding).

    last       the final state of each direction, concatenated (forward after the last word,
               backward after the first): what Keras' return_sequences=False gives
    mean       the average of h_1 .. h_L
    max        the element-wise maximum of h_1 .. h_L (Collobert et al. 2011; Conneau et al. 2017)
    attention  sum_t a_t h_t with a = softmax_t(v . tanh(W h_t + b)) over t <= L
               (additive attention over the steps, Yang et al. 2016; Zhou et al. 2016)

Padded steps are excluded by a mask built from ``lengths``, so a padded batch pools to what
each sentence pools to alone.
"""

from __future__ import annotations

import torch
from torch import nn

from rnnkit.sequences import step_mask

POOLINGS = ("last", "mean", "max", "attention")


class Pooling(nn.Module):
    """``mode`` (one of ``POOLINGS``) over outputs of ``width`` features per step."""

    def __init__(self, mode: str, width: int, attention_size: int = 128) -> None:
        super().__init__()
        if mode not in POOLINGS:
            raise ValueError(f"mode: expected one of {', '.join(POOLINGS)}, got {mode!r}")
        self.mode = mode
        if mode == "attention":
            self.score = nn.Sequential(nn.Linear(width, attention_size), nn.Tanh(), nn.Linear(attention_size, 1, bias=False))

    def forward(self, hidden: torch.Tensor, lengths: torch.Tensor | None, final: torch.Tensor) -> torch.Tensor:
        """hidden (T, B, W), lengths (B,) or None, final (B, D*H) -> (B, W), or final itself for ``last``."""
        if self.mode == "last":
            return final
        steps, batch = hidden.shape[:2]
        valid = torch.ones(steps, batch, dtype=torch.bool, device=hidden.device) if lengths is None \
            else step_mask(lengths, steps, hidden.device)  # (T, B)
        valid = valid.unsqueeze(-1)  # (T, B, 1)
        if self.mode == "mean":
            return (hidden * valid).sum(0) / valid.sum(0)
        if self.mode == "max":
            return hidden.masked_fill(~valid, float("-inf")).amax(0)
        scores = self.score(hidden).masked_fill(~valid, float("-inf"))  # (T, B, 1)
        weights = torch.softmax(scores, dim=0)  # (T, B, 1), 0 on padding
        return (weights * hidden).sum(0)
