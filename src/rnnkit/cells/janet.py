"""JANET, the forget-gate-only LSTM (van der Westhuizen & Lasenby 2018,
"The unreasonable effectiveness of the forget gate")."""

from __future__ import annotations

import torch

from rnnkit.cells.base import RecurrentCell, State
from rnnkit.cells.initialization import chrono_forget_bias
from rnnkit.cells.noise import RecurrentNoise


class JANETCell(RecurrentCell):
    r"""JANET cell: an LSTM with only a forget gate, whose complement writes the candidate.

    .. math::
        s_t = W_f x_t + b_{if} + U_f h_{t-1} + b_{hf}
        c̃_t = tanh(W_c x_t + b_{ic} + U_c h_{t-1} + b_{hc})
        c_t = σ(s_t) ⊙ c_{t-1} + (1 - σ(s_t - β)) ⊙ c̃_t
        h_t = c_t

    β = 1 (the paper's value) lets slightly more information in than 1 - σ(s_t) would.
    The paper's single bias b_f is split into b_if + b_hf like every rnnkit cell's bias.
    Gates are stacked f, c (weight_ih is [W_f; W_c], weight_hh is [U_f; U_c]).

    Initialisation: with ``t_max`` the forget bias b_if gets the chrono initialisation
    log(U(1, t_max - 1)) (Tallec & Ollivier 2018; recommended by the paper, with t_max the
    sequence length); without it b_if = ``forget_bias`` (1.0). Other biases 0.

    Shapes: x_t (B, I); state (h,) with h = c (B, H).
    Parameters: weight_ih (2H, I), weight_hh (2H, H), bias_ih (2H), bias_hh (2H).

    Other keyword arguments (``bias``, ``layer_norm``, ``recurrent_dropout``, ``zoneout``,
    ``weight_dropout``) are those of ``RecurrentCell``.
    """

    num_gates = 2
    state_names = ("h",)
    supports_t_max = True
    gate_names = ("forget",)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        beta: float = 1.0,
        t_max: float | None = None,
        forget_bias: float = 1.0,
        device=None,
        dtype=None,
        **options,
    ) -> None:
        super().__init__(input_size, hidden_size, **options)
        self.beta = float(beta)
        self.t_max = t_max
        self.forget_bias = float(forget_bias)
        if t_max is not None:
            chrono_forget_bias(1, t_max)  # validates t_max now rather than at reset time
        self._create_parameters((2 * hidden_size, hidden_size), dict(device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.bias_ih is None:
            return
        with torch.no_grad():
            forget = self.bias_ih[: self.hidden_size]
            if self.t_max is None:
                forget.fill_(self.forget_bias)
            else:
                forget.copy_(chrono_forget_bias(self.hidden_size, self.t_max))

    def step(self, x_t: torch.Tensor, state: State, noise: RecurrentNoise) -> State:
        (c_prev,) = state
        W_hh = self.recurrent_weight(noise)
        preactivation = self.project(x_t, self.weight_ih, self.bias_ih, None) + self.project(
            noise.drop_hidden(c_prev), W_hh, self.bias_hh, None
        )  # (..., 2H)
        s, a_c = preactivation.chunk(2, dim=-1)
        c_candidate = torch.tanh(a_c)
        f = torch.sigmoid(s)
        self.observe_gates(forget=f)
        c = f * c_prev + (1.0 - torch.sigmoid(s - self.beta)) * c_candidate
        return (c,)

    def extra_repr(self) -> str:
        extra = f", t_max={self.t_max}" if self.t_max is not None else ""
        return f"{super().extra_repr()}, beta={self.beta}{extra}"
