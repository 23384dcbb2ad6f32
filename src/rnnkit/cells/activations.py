"""Element-wise activation functions a cell may be configured with, by name.

One registry for every cell, so that ``activation="relu"`` means the same thing
everywhere and an unknown name fails in one place with one message.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from rnnkit._checks import ArgumentError

Activation = Callable[[torch.Tensor], torch.Tensor]

ACTIVATIONS: dict[str, Activation] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "hard_sigmoid": F.hardsigmoid,
    "linear": lambda x: x,
}


def get_activation(name: str, argument: str = "activation", allowed: tuple[str, ...] | None = None) -> Activation:
    """Look up an activation by name; ``argument`` names the option in the error message."""
    choices = allowed if allowed is not None else tuple(ACTIVATIONS)
    if name not in choices:
        raise ArgumentError(f"{argument}: expected one of {list(choices)}, got {name!r}")
    return ACTIVATIONS[name]
