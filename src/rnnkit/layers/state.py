"""Helpers for recurrent state carried between calls and for cell constraints."""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import nn

from rnnkit.cells import RecurrentCell

StateLike = TypeVar("StateLike")


def detach_state(state: StateLike) -> StateLike:
    """Cut the autograd graph behind a state (tensor, or nested tuples/lists of tensors).

    Truncated BPTT: feed the detached final state of one batch as the initial state of the
    next, so the state carries information forward but gradients stop at the batch boundary.
    """
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.detach()
    if isinstance(state, (tuple, list)):
        return type(state)(detach_state(part) for part in state)
    raise TypeError(f"state: expected a tensor or a tuple of tensors, got {type(state).__name__}")


def apply_constraints(model: nn.Module) -> None:
    """Call ``constrain_()`` on every cell of ``model`` (e.g. IndRNN's |u| ≤ 2^(1/t_max)).

    Call it after each ``optimizer.step()``.
    """
    for module in model.modules():
        if isinstance(module, RecurrentCell):
            module.constrain_()
