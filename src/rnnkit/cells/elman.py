"""The Elman recurrent cell (Elman 1990, "Finding Structure in Time")."""

from __future__ import annotations

import torch

from rnnkit.cells.activations import get_activation
from rnnkit.cells.base import RecurrentCell, State
from rnnkit.cells.noise import RecurrentNoise


class RNNCell(RecurrentCell):
    r"""Elman RNN cell, the same maths and weights as ``torch.nn.RNNCell``.

    .. math::
        h_t = φ(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}),   φ ∈ {tanh, relu}

    The textbook bias b is split into b_ih + b_hh, as in torch.nn, so weights load unchanged.

    Shapes: x_t (B, input_size); state (h,) with h (B, hidden_size).
    Parameters: weight_ih (H, I), weight_hh (H, H), bias_ih (H), bias_hh (H).

    Other keyword arguments (``bias``, ``layer_norm``, ``recurrent_dropout``, ``zoneout``,
    ``weight_dropout``) are those of ``RecurrentCell``.
    """

    num_gates = 1
    state_names = ("h",)
    activations = ("tanh", "relu")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        activation: str = "tanh",
        device=None,
        dtype=None,
        **options,
    ) -> None:
        super().__init__(input_size, hidden_size, **options)
        self.activation = activation
        self.phi = get_activation(activation, "activation", allowed=self.activations)
        self._create_parameters((hidden_size, hidden_size), dict(device=device, dtype=dtype))
        self.reset_parameters()

    def step(self, x_t: torch.Tensor, state: State, noise: RecurrentNoise) -> State:
        (h_prev,) = state
        W_hh = self.recurrent_weight(noise)
        h = self.phi(
            self.project(x_t, self.weight_ih, self.bias_ih, None)
            + self.project(noise.drop_hidden(h_prev), W_hh, self.bias_hh, None)
        )
        return (h,)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, activation={self.activation!r}"
