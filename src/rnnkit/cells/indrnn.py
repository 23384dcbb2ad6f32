"""Independently recurrent neural network (Li et al. 2018, "Independently Recurrent Neural
Network (IndRNN): Building A Longer and Deeper RNN")."""

from __future__ import annotations

import torch

from rnnkit.cells.activations import get_activation
from rnnkit.cells.base import RecurrentCell, State
from rnnkit.cells.initialization import indrnn_recurrent_max
from rnnkit.cells.noise import RecurrentNoise


class IndRNNCell(RecurrentCell):
    r"""IndRNN cell: each unit sees only its own previous value, through one scalar weight.

    .. math::
        h_t = φ(W_{ih} x_t + b_{ih} + u ⊙ h_{t-1} + b_{hh}),    φ ∈ {relu, tanh}

    u (``weight_hh``) is a vector, so the recurrence is element-wise: a unit's gradient over
    T steps scales like u^T φ'^T and can be kept from vanishing or exploding by bounding |u|.

    ``t_max``: the longest span to remember. It sets the paper's constraint
    |u| ≤ 2^(1/t_max), applied by ``constrain_()`` (call ``rnnkit.apply_constraints(model)``
    after each optimiser step). Initialisation as in the authors' code (IndRNN_pytorch):
    u ~ U(0, 2^(1/t_max)), or U(0, 1) without t_max; biases 0. W_ih ~ U(-1/sqrt(H), 1/sqrt(H))
    as in torch.nn (the authors initialise their separate input layers per task).

    With ``layer_norm=True`` the input projection W_ih x_t is layer-normalised, never the
    recurrence: normalising u ⊙ h across units would couple the units the IndRNN keeps
    independent (the paper normalises the feed-forward input as well, with batch norm).

    Shapes: x_t (B, I); state (h,) with h (B, H).
    Parameters: weight_ih (H, I), weight_hh (H,), bias_ih (H), bias_hh (H), ln_ih_weight (H).

    Other keyword arguments (``bias``, ``layer_norm``, ``recurrent_dropout``, ``zoneout``,
    ``weight_dropout``) are those of ``RecurrentCell``.
    """

    num_gates = 1
    state_names = ("h",)
    supports_layer_norm = True
    supports_t_max = True
    activations = ("relu", "tanh")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        activation: str = "relu",
        t_max: float | None = None,
        device=None,
        dtype=None,
        **options,
    ) -> None:
        super().__init__(input_size, hidden_size, **options)
        self.activation = activation
        self.phi = get_activation(activation, "activation", allowed=self.activations)
        self.t_max = t_max
        self.recurrent_max = indrnn_recurrent_max(t_max)
        # The recurrence is never normalised (see above): only the input gain exists.
        self._create_parameters((hidden_size,), dict(device=device, dtype=dtype), normalise_recurrence=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        with torch.no_grad():
            self.weight_hh.uniform_(0.0, self.recurrent_max or 1.0)

    def constrain_(self) -> None:
        """Clamp |u| to 2^(1/t_max) (no-op without t_max)."""
        if self.recurrent_max is not None:
            with torch.no_grad():
                self.weight_hh.clamp_(-self.recurrent_max, self.recurrent_max)

    def step(self, x_t: torch.Tensor, state: State, noise: RecurrentNoise) -> State:
        (h_prev,) = state
        u = self.recurrent_weight(noise)
        recurrence = u * noise.drop_hidden(h_prev)
        if self.bias_hh is not None:
            recurrence = recurrence + self.bias_hh
        h = self.phi(self.project(x_t, self.weight_ih, self.bias_ih, self.ln_ih_weight) + recurrence)
        return (h,)

    def extra_repr(self) -> str:
        extra = f", t_max={self.t_max}" if self.t_max is not None else ""
        return f"{super().extra_repr()}, activation={self.activation!r}{extra}"
