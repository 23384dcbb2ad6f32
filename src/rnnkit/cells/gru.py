"""Gated recurrent unit (Cho et al. 2014), in both published variants."""

from __future__ import annotations

import torch

from rnnkit.cells.activations import ACTIVATIONS, get_activation
from rnnkit.cells.base import RecurrentCell, State
from rnnkit.cells.noise import RecurrentNoise


class GRUCell(RecurrentCell):
    r"""GRU cell; with ``reset_after=True`` (the default) the same maths and weights as ``torch.nn.GRUCell``.

    .. math::
        r_t = σ(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr})                 reset gate
        z_t = σ(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz})                 update gate
        h̃_t = φ(W_{in} x_t + b_{in} + r_t ⊙ (W_{hn} h_{t-1} + b_{hn}))         reset_after=True
        h̃_t = φ(W_{in} x_t + b_{in} + W_{hn} (r_t ⊙ h_{t-1}) + b_{hn})         reset_after=False
        h_t = z_t ⊙ h_{t-1} + (1 - z_t) ⊙ h̃_t

    ``reset_after=True`` applies the reset gate after the recurrent matrix product, as cuDNN,
    PyTorch and Keras (v3 default) do: all three recurrent products can then be done in one
    matmul. ``reset_after=False`` is the formulation of Cho et al. 2014 and of the classic
    textbook derivation. σ is ``recurrent_activation`` (sigmoid), φ is ``activation`` (tanh).
    Gates are stacked r, z, n, as in torch.nn.

    With ``layer_norm=True`` each gate's W x and W h blocks are layer-normalised separately
    (for reset_after=False the candidate's block W_hn (r ⊙ h) is normalised on its own).

    Shapes: x_t (B, I); state (h,) with h (B, H).
    Parameters: weight_ih (3H, I), weight_hh (3H, H), bias_ih (3H), bias_hh (3H).

    Other keyword arguments (``bias``, ``layer_norm``, ``recurrent_dropout``, ``zoneout``,
    ``weight_dropout``) are those of ``RecurrentCell``.
    """

    num_gates = 3
    state_names = ("h",)
    gate_names = ("reset", "update")
    supports_layer_norm = True
    activations = tuple(ACTIVATIONS)  # Keras' activation/recurrent_activation; torch.nn has tanh/sigmoid only

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        reset_after: bool = True,
        activation: str = "tanh",
        recurrent_activation: str = "sigmoid",
        device=None,
        dtype=None,
        **options,
    ) -> None:
        super().__init__(input_size, hidden_size, **options)
        self.reset_after = bool(reset_after)
        self.activation = activation
        self.recurrent_activation = recurrent_activation
        self.phi = get_activation(activation, "activation")
        self.sigma = get_activation(recurrent_activation, "recurrent_activation")
        self._create_parameters((3 * hidden_size, hidden_size), dict(device=device, dtype=dtype))
        self.reset_parameters()

    def step(self, x_t: torch.Tensor, state: State, noise: RecurrentNoise) -> State:
        (h_prev,) = state
        h_in = noise.drop_hidden(h_prev)
        W_hh = self.recurrent_weight(noise)
        a_ir, a_iz, a_in = self.project(x_t, self.weight_ih, self.bias_ih, self.ln_ih_weight).chunk(3, dim=-1)
        if self.reset_after:
            a_hr, a_hz, a_hn = self.project(h_in, W_hh, self.bias_hh, self.ln_hh_weight).chunk(3, dim=-1)
            r = self.sigma(a_ir + a_hr)
            z = self.sigma(a_iz + a_hz)
            h_candidate = self.phi(a_in + r * a_hn)
        else:
            H = self.hidden_size
            a_hr, a_hz = self.project(
                h_in, W_hh[: 2 * H], _rows(self.bias_hh, 0, 2 * H), _rows(self.ln_hh_weight, 0, 2 * H), num_gates=2
            ).chunk(2, dim=-1)
            r = self.sigma(a_ir + a_hr)
            z = self.sigma(a_iz + a_hz)
            a_hn = self.project(
                r * h_in, W_hh[2 * H :], _rows(self.bias_hh, 2 * H, 3 * H), _rows(self.ln_hh_weight, 2 * H, 3 * H), num_gates=1
            )
            h_candidate = self.phi(a_in + a_hn)
        self.observe_gates(reset=r, update=z)
        h = z * h_prev + (1.0 - z) * h_candidate
        return (h,)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, reset_after={self.reset_after}"


def _rows(vector: torch.Tensor | None, start: int, stop: int) -> torch.Tensor | None:
    return None if vector is None else vector[start:stop]
