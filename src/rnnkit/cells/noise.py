"""Per-sequence regularisation noise for a recurrence, sampled once and reused at every step.

Two of the regularisers of the recurrence need the *same* randomness at every
time step of a sequence:

* variational recurrent dropout (Gal & Ghahramani 2016, "A Theoretically Grounded
  Application of Dropout in Recurrent Neural Networks"): one dropout mask on h_{t-1},
  sampled per sequence;
* DropConnect on the recurrent weights (Wan et al. 2013; Merity et al. 2018, AWD-LSTM):
  one dropped copy of W_hh, sampled per sequence.

The time loop samples a ``RecurrentNoise`` once per forward pass and hands it to every
step. Zoneout (Krueger et al. 2016) samples a fresh mask at every step and so lives in
the cell itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class RecurrentNoise:
    """Randomness shared by all steps of one sequence; ``None`` fields mean "no noise"."""

    hidden_mask: torch.Tensor | None = None  # (B, H_out), entries 0 or 1/(1-p)
    weight_hh: torch.Tensor | None = None  # W_hh with DropConnect applied

    def drop_hidden(self, h: torch.Tensor) -> torch.Tensor:
        """h_{t-1} as the recurrent projection sees it."""
        return h if self.hidden_mask is None else h * self.hidden_mask


NO_NOISE = RecurrentNoise()


def dropout_mask(shape: tuple[int, ...], p: float, like: torch.Tensor) -> torch.Tensor:
    """An inverted-dropout mask: 0 with probability p, else 1/(1-p), so the expectation is unchanged."""
    keep = torch.empty(shape, dtype=like.dtype, device=like.device).bernoulli_(1.0 - p)
    return keep / (1.0 - p)
