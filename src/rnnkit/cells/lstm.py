"""Long short-term memory (Hochreiter & Schmidhuber 1997; forget gate: Gers et al. 2000)."""

from __future__ import annotations

import torch
from torch import nn

from rnnkit._checks import ArgumentError, check_positive_int
from rnnkit.cells.activations import ACTIVATIONS, get_activation
from rnnkit.cells.base import RecurrentCell, State
from rnnkit.cells.noise import RecurrentNoise
from rnnkit.cells.normalization import gate_layer_norm


class LSTMCell(RecurrentCell):
    r"""LSTM cell; with the defaults, the same maths and weights as one layer of ``torch.nn.LSTM``.

    .. math::
        i_t = σ(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi})        input gate
        f_t = σ(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf})        forget gate
        g_t = φ(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg})        candidate memory
        o_t = σ(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho})        output gate
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t                               memory cell
        h_t = o_t ⊙ φ(c_t)                  (h_t = W_{hr}(o_t ⊙ φ(c_t)) with proj_size > 0)

    σ is ``recurrent_activation`` (default sigmoid), φ is ``activation`` (default tanh).
    Gates are stacked in the order i, f, g, o, as in torch.nn.

    With ``layer_norm=True`` (Ba et al. 2016) each gate's W x and W h blocks are layer-normalised
    separately (see ``rnnkit.cells.normalization``) and the cell is normalised before φ:
    h_t = o_t ⊙ φ(LN(c_t)).

    Initialisation: weights ~ U(-1/sqrt(H), 1/sqrt(H)); biases 0 except the forget gate,
    whose total bias b_if + b_hf is ``forget_bias`` (1.0; Gers et al. 2000, Jozefowicz et al. 2015).

    Shapes: x_t (B, I); state (h, c) with h (B, P) and c (B, H), where P = proj_size or H.
    Parameters: weight_ih (4H, I), weight_hh (4H, P), bias_ih (4H), bias_hh (4H),
    weight_hr (P, H) when proj_size > 0, ln_ih_weight, ln_hh_weight (4H), ln_cell_weight,
    ln_cell_bias (H) with layer_norm.

    Other keyword arguments (``bias``, ``layer_norm``, ``recurrent_dropout``, ``zoneout``,
    ``weight_dropout``) are those of ``RecurrentCell``.
    """

    num_gates = 4
    state_names = ("h", "c")
    supports_layer_norm = True
    supports_projection = True
    activations = tuple(ACTIVATIONS)  # Keras' activation/recurrent_activation; torch.nn has tanh/sigmoid only
    gate_names = ("input", "forget", "output")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        proj_size: int = 0,
        activation: str = "tanh",
        recurrent_activation: str = "sigmoid",
        forget_bias: float = 1.0,
        device=None,
        dtype=None,
        **options,
    ) -> None:
        super().__init__(input_size, hidden_size, **options)
        if proj_size != 0:
            check_positive_int("proj_size", proj_size)
            if proj_size >= hidden_size:
                raise ArgumentError(f"proj_size: expected 0 or a value below hidden_size={hidden_size}, got {proj_size}")
        self.proj_size = proj_size
        self.activation = activation
        self.recurrent_activation = recurrent_activation
        self.phi = get_activation(activation, "activation")
        self.sigma = get_activation(recurrent_activation, "recurrent_activation")
        self.forget_bias = float(forget_bias)
        factory = dict(device=device, dtype=dtype)
        self._create_parameters((4 * hidden_size, self.output_size), factory)
        if proj_size:
            self.weight_hr = nn.Parameter(torch.empty(proj_size, hidden_size, **factory))
        else:
            self.register_parameter("weight_hr", None)
        if self.layer_norm:
            self.ln_cell_weight = nn.Parameter(torch.empty(hidden_size, **factory))
            self.ln_cell_bias = nn.Parameter(torch.empty(hidden_size, **factory))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.bias_ih is not None:
            with torch.no_grad():
                self.bias_ih[self.hidden_size : 2 * self.hidden_size].fill_(self.forget_bias)

    @property
    def output_size(self) -> int:
        return self.proj_size or self.hidden_size

    def state_sizes(self) -> tuple[int, ...]:
        return (self.output_size, self.hidden_size)

    def step(self, x_t: torch.Tensor, state: State, noise: RecurrentNoise) -> State:
        h_prev, c_prev = state
        W_hh = self.recurrent_weight(noise)
        preactivation = self.project(x_t, self.weight_ih, self.bias_ih, self.ln_ih_weight) + self.project(
            noise.drop_hidden(h_prev), W_hh, self.bias_hh, self.ln_hh_weight
        )  # (..., 4H)
        i, f, g, o = preactivation.chunk(4, dim=-1)
        i, f, g, o = self.sigma(i), self.sigma(f), self.phi(g), self.sigma(o)
        self.observe_gates(input=i, forget=f, output=o)
        c = f * c_prev + i * g
        h = o * self.phi(self._normalise_cell(c))
        if self.weight_hr is not None:
            h = self.project(h, self.weight_hr, None, None)
        return h, c

    def _normalise_cell(self, c: torch.Tensor) -> torch.Tensor:
        if not self.layer_norm:
            return c
        return gate_layer_norm(c, 1, self.ln_cell_weight) + self.ln_cell_bias

    def extra_repr(self) -> str:
        options = [super().extra_repr()]
        if self.proj_size:
            options.append(f"proj_size={self.proj_size}")
        if self.activation != "tanh" or self.recurrent_activation != "sigmoid":
            options.append(f"activation={self.activation!r}, recurrent_activation={self.recurrent_activation!r}")
        return ", ".join(options)

