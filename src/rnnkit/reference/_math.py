"""The element-wise functions the reference cells need, and their derivatives written via outputs."""

from __future__ import annotations

import numpy as np


def sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def dsigmoid_from_output(s: np.ndarray) -> np.ndarray:
    """σ'(a) written with s = σ(a): s (1 - s)."""
    return s * (1.0 - s)


def dtanh_from_output(t: np.ndarray) -> np.ndarray:
    """tanh'(a) written with t = tanh(a): 1 - t²."""
    return 1.0 - t * t
