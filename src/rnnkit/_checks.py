"""Argument checks shared by cells and layers.

Every message names the argument, what was expected and what was received, so a
caller can fix the call without reading rnnkit's source.
"""

from __future__ import annotations

from typing import Sequence

import torch


class ArgumentError(ValueError, RuntimeError):
    """A bad argument, shape or option of a cell or layer.

    A ``ValueError``, as rnnkit has always raised, and a ``RuntimeError``, as torch.nn raises
    for the same mistakes: code written for either catches it.
    """


def check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected a positive int, got {type(value).__name__} {value!r}")
    if value <= 0:
        raise ArgumentError(f"{name}: expected a positive int, got {value}")
    return value


def check_bool(name: str, value: object) -> bool:
    """A flag must be a bool, as torch.nn's layers require: ``bias=0`` or ``batch_first="False"`` is a mistake."""
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected True or False, got {type(value).__name__} {value!r}")
    return value


def check_probability(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a float in [0, 1), got {type(value).__name__} {value!r}")
    if not 0.0 <= value < 1.0:
        raise ArgumentError(f"{name}: expected a float in [0, 1), got {value}")
    return float(value)


def check_choice(name: str, value: object, choices: Sequence[object]) -> None:
    if value not in choices:
        raise ArgumentError(f"{name}: expected one of {list(choices)}, got {value!r}")


def shape_error(name: str, expected: str, received: torch.Size | tuple[int, ...], hint: str = "") -> ArgumentError:
    message = f"{name}: expected shape {expected}, got {tuple(received)}"
    return ArgumentError(f"{message}; {hint}" if hint else message)


def check_tensor(name: str, value: object) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    return value
