"""Layer normalisation of gate pre-activations (Ba, Kiros & Hinton 2016, "Layer Normalization").

Each gate's block of a stacked pre-activation vector is normalised on its own
(its mean and variance over the hidden units of that gate), then scaled by a learnt
gain. Normalising per gate rather than over all gates at once keeps one gate's scale
from leaking into another's, and it lets the GRU normalise its candidate term
(which is computed separately from the reset and update gates) the same way.
The shift of the normalised value is the cell's own bias, added afterwards.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

EPSILON = 1e-5


def gate_layer_norm(preactivation: torch.Tensor, num_gates: int, gain: torch.Tensor) -> torch.Tensor:
    """Normalise each of ``num_gates`` equal blocks of ``preactivation`` (..., num_gates*H), then scale by ``gain``."""
    *batch, width = preactivation.shape
    blocks = preactivation.reshape(*batch, num_gates, width // num_gates)  # (..., G, H)
    normalised = F.layer_norm(blocks, (width // num_gates,), eps=EPSILON)
    return normalised.reshape(*batch, width) * gain
