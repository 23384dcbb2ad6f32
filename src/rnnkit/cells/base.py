"""The cell contract: one time step of a recurrence, and nothing else.

A cell maps (x_t, state_{t-1}) to (h_t, state_t). It never loops over time; the
one time loop of rnnkit is ``rnnkit.layers.SequenceLayer``. Every cell keeps its
weights under the names ``torch.nn`` uses (``weight_ih``, ``weight_hh``, ``bias_ih``,
``bias_hh``, ``weight_hr``) in the same gate order, so weights move between rnnkit
and ``torch.nn`` without translation.

What lives here, shared by all cells: argument and shape checks, the zero initial
state, the per-sequence regularisation noise (variational dropout, DropConnect) and
zoneout. What does not: any cell's equations, which live in the cell's own file.
"""

from __future__ import annotations

import contextlib
import math
from abc import ABC, abstractmethod
from typing import Callable, ClassVar

import torch
from torch import nn

from rnnkit._checks import ArgumentError, check_positive_int, check_probability, check_tensor, shape_error
from rnnkit.cells.int8 import Int8Matrix
from rnnkit.cells.noise import NO_NOISE, RecurrentNoise, dropout_mask
from rnnkit.cells.normalization import gate_layer_norm

State = tuple[torch.Tensor, ...]


class RecurrentCell(nn.Module, ABC):
    """Base class of all cells. Subclasses define ``num_gates``, ``state_names`` and ``step``.

    Args:
        input_size: features of x_t.
        hidden_size: units of the cell (the width of each gate).
        bias: if False, the cell has no ``bias_ih``/``bias_hh``.
        layer_norm: normalise gate pre-activations (only cells with ``supports_layer_norm``).
        recurrent_dropout: variational dropout on h_{t-1} in the recurrent projection,
            one mask per sequence (Gal & Ghahramani 2016). Training mode only.
        zoneout: probability that each state unit keeps its previous value at a step
            (Krueger et al. 2016). In eval mode the expectation is used.
        weight_dropout: DropConnect on the recurrent weights W_hh, one draw per
            sequence (Wan et al. 2013; AWD-LSTM). Training mode only.
    """

    num_gates: ClassVar[int] = 1
    state_names: ClassVar[tuple[str, ...]] = ("h",)
    gate_names: ClassVar[tuple[str, ...]] = ()  # the gates step() reports to a gate observer
    # What the cell supports, declared once here for configuration, layers and kernels to ask:
    supports_layer_norm: ClassVar[bool] = False  # layer_norm=True
    supports_projection: ClassVar[bool] = False  # proj_size (the LSTM's h_t = W_hr (o ⊙ φ(c_t)))
    supports_t_max: ClassVar[bool] = False  # t_max, the longest span to remember (chrono init, |u| bound)
    activations: ClassVar[tuple[str, ...]] = ()  # what activation= accepts, its default first; () if none
    has_recurrent_weight: ClassVar[bool] = True  # a W_hh, on which recurrent_dropout and weight_dropout act
    int8_weights: tuple[str, ...] = ()  # the weights rnnkit.quantize_dynamic holds as Int8Matrix: no fast kernel reads them

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        bias: bool = True,
        layer_norm: bool = False,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        weight_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        if layer_norm and not self.supports_layer_norm:
            raise ArgumentError(f"layer_norm: not supported by {type(self).__name__}; use lstm, gru or indrnn")
        for name, value in (("recurrent_dropout", recurrent_dropout), ("weight_dropout", weight_dropout)):
            if value and not self.has_recurrent_weight:
                raise ArgumentError(f"{name}: {type(self).__name__} has no recurrent weight W_hh for it to act on")
        self.bias = bool(bias)
        self.layer_norm = bool(layer_norm)
        self.recurrent_dropout = check_probability("recurrent_dropout", recurrent_dropout)
        self.zoneout = check_probability("zoneout", zoneout)
        self.weight_dropout = check_probability("weight_dropout", weight_dropout)
        # rnnkit.inspect sets this to a function of {gate name: (B, H) activations}, called at every step.
        self.gate_observer: Callable[[dict[str, torch.Tensor]], None] | None = None

    def observe_gates(self, **gates: torch.Tensor) -> None:
        """Hand this step's gate activations to the observer, if one is watching (see rnnkit.inspect)."""
        if self.gate_observer is not None:
            self.gate_observer(gates)

    # ----------------------------------------------------------------- parameters
    def _create_parameters(
        self, weight_hh_shape: tuple[int, ...], factory: dict, normalise_recurrence: bool = True
    ) -> None:
        """Register weight_ih, weight_hh, bias_ih, bias_hh and the layer-norm gains, all gates stacked."""
        gates_width = self.num_gates * self.hidden_size
        self.weight_ih = nn.Parameter(torch.empty(gates_width, self.input_size, **factory))
        self.weight_hh = nn.Parameter(torch.empty(weight_hh_shape, **factory))
        if self.bias:
            self.bias_ih = nn.Parameter(torch.empty(gates_width, **factory))
            self.bias_hh = nn.Parameter(torch.empty(gates_width, **factory))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        if self.layer_norm:
            self.ln_ih_weight = nn.Parameter(torch.empty(gates_width, **factory))
        else:
            self.register_parameter("ln_ih_weight", None)
        if self.layer_norm and normalise_recurrence:
            self.ln_hh_weight = nn.Parameter(torch.empty(gates_width, **factory))
        else:
            self.register_parameter("ln_hh_weight", None)

    def reset_parameters(self) -> None:
        """Weights ~ U(-1/sqrt(H), 1/sqrt(H)) as in torch.nn; biases 0; layer-norm gains 1."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for name, parameter in self.weights().items():
            if name.startswith("weight_"):
                nn.init.uniform_(parameter, -bound, bound)
            elif name.startswith("bias_") or name.endswith("_bias"):
                nn.init.zeros_(parameter)
            elif name.startswith("ln_"):
                nn.init.ones_(parameter)

    def weights(self) -> dict[str, torch.Tensor]:
        """The cell's weights by their names here (``weight_ih``, ...), wherever they are held."""
        lent = self.__dict__.get("_lent_to")
        names = self._parameters if lent is None else lent[1]
        values = {name: getattr(self, name) for name in names}  # once each: a parametrized weight is computed
        return {name: value for name, value in values.items() if value is not None}

    def lend_weights(self, owner: nn.Module, names: dict[str, str]) -> None:
        """Move the parameters ``names`` maps to ``owner``, registered there under the mapped names.

        A drop-in layer (``rnnkit.LSTM``) holds its cells' weights as torch.nn does, under
        ``weight_hh_l0`` and so on, on itself. The cell then reads each weight from the owner at
        every access, so whatever the owner's hooks and parametrizations make of it (a pruning
        mask, weight norm, a weight-drop wrapper's dropped copy, a reassigned tensor) is what
        every kernel and the cell's own step compute with.
        """
        for name, owner_name in names.items():
            owner.register_parameter(owner_name, self._parameters.pop(name))
        # A plain attribute, not a submodule: the owner holds the cell, not the other way round.
        object.__setattr__(self, "_lent_to", (owner, dict(names)))

    def weight_home(self, name: str) -> tuple[nn.Module, str]:
        """Where the weight ``name`` is held: (this cell, name), or (the drop-in layer it was lent to, its name there)."""
        lent = self.__dict__.get("_lent_to")
        if lent is not None and name in lent[1]:
            return lent[0], lent[1][name]
        return self, name

    @contextlib.contextmanager
    def weights_replaced(self, weights: dict[str, torch.Tensor]):
        """Compute with ``weights`` (by the names of ``weights()``) instead of the cell's own, inside the block:
        how a kernel called from a compiled graph uses the weights that graph computed."""
        object.__setattr__(self, "_replaced", weights)
        try:
            yield
        finally:
            object.__setattr__(self, "_replaced", None)

    def __getattr__(self, name: str):
        replaced = self.__dict__.get("_replaced")
        if replaced and name in replaced:
            return replaced[name]
        home, attribute = self.weight_home(name)
        if home is not self:
            return getattr(home, attribute)
        return super().__getattr__(name)

    # ----------------------------------------------------------------- sizes and state
    @property
    def output_size(self) -> int:
        """Width of h_t (``proj_size`` for a projected LSTM, else ``hidden_size``)."""
        return self.hidden_size

    def state_sizes(self) -> tuple[int, ...]:
        """Width of each state tensor, in the order of ``state_names``."""
        return (self.output_size,)

    def initial_state(self, batch_size: int, *, device=None, dtype=None) -> State:
        """The zero state: one (batch_size, size) tensor per entry of ``state_names``."""
        return tuple(torch.zeros(batch_size, size, device=device, dtype=dtype) for size in self.state_sizes())

    def check_state(self, state: State | torch.Tensor, batch_size: int, name: str = "state") -> State:
        """Return ``state`` as a tuple after checking it against the cell's state shapes."""
        if isinstance(state, torch.Tensor):
            state = (state,)
        if not isinstance(state, (tuple, list)) or len(state) != len(self.state_names):
            raise ArgumentError(
                f"{name}: expected a tuple of {len(self.state_names)} tensors {self.state_names}, "
                f"got {type(state).__name__}" + (f" of length {len(state)}" if isinstance(state, (tuple, list)) else "")
            )
        for part, part_name, size in zip(state, self.state_names, self.state_sizes()):
            check_tensor(f"{name}.{part_name}", part)
            if part.shape != (batch_size, size):
                raise shape_error(f"{name}.{part_name}", f"(B={batch_size}, {size})", part.shape)
        return tuple(state)

    # ----------------------------------------------------------------- regularisation
    def sample_noise(self, batch_size: int | tuple[int, ...], like: torch.Tensor) -> RecurrentNoise:
        """Draw the randomness that every step of one sequence shares (training mode only); ``batch_size`` is B, or
        the batch shape of steps on broadcast batches (see ``step``)."""
        if not self.training or (self.recurrent_dropout == 0.0 and self.weight_dropout == 0.0):
            return NO_NOISE
        hidden_mask = None
        if self.recurrent_dropout > 0.0:
            batch = (batch_size,) if isinstance(batch_size, int) else tuple(batch_size)
            hidden_mask = dropout_mask((*batch, self.output_size), self.recurrent_dropout, like)
        weight_hh = None
        if self.weight_dropout > 0.0:
            weight_hh = nn.functional.dropout(self.weight_hh, self.weight_dropout, training=True)
        return RecurrentNoise(hidden_mask=hidden_mask, weight_hh=weight_hh)

    def _apply_zoneout(self, previous: State, proposed: State) -> State:
        """Each unit keeps its previous value with probability p; eval mode uses the expectation."""
        p = self.zoneout
        if self.training:
            return tuple(
                torch.where(torch.rand_like(new) < p, old, new) for old, new in zip(previous, proposed)
            )
        return tuple(p * old + (1.0 - p) * new for old, new in zip(previous, proposed))

    # ----------------------------------------------------------------- helpers for step()
    def recurrent_weight(self, noise: RecurrentNoise) -> torch.Tensor:
        """W_hh, or its DropConnect'ed copy for this sequence."""
        return self.weight_hh if noise.weight_hh is None else noise.weight_hh

    def project(
        self,
        vector: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        gain: torch.Tensor | None,
        num_gates: int | None = None,
    ) -> torch.Tensor:
        """W v (+ per-gate layer norm with ``gain``) (+ b): one pre-activation block.

        ``weight`` is a tensor, or an ``Int8Matrix`` (``rnnkit.quantize_dynamic``) that computes W v itself."""
        out = weight(vector) if isinstance(weight, Int8Matrix) else vector @ weight.t()
        if gain is not None:
            out = gate_layer_norm(out, num_gates or self.num_gates, gain)
        return out if bias is None else out + bias

    # ----------------------------------------------------------------- the step
    @abstractmethod
    def step(self, x_t: torch.Tensor, state: State, noise: RecurrentNoise) -> State:
        """The cell's equations: new state from x_t (B, input_size) and the previous state.

        The first entry of the returned state is h_t. The equations are written per row on the last
        dimension, so x_t (..., input_size) and state parts (..., size) of leading shapes that broadcast
        against each other work too, giving a state of the broadcast shape: a decoder that starts many
        inputs from few states (``Recurrent.step``) then computes each product once per distinct row.
        """

    def advance(self, x_t: torch.Tensor, state: State, noise: RecurrentNoise = NO_NOISE) -> tuple[torch.Tensor, State]:
        """One step without argument checks: what the time loop calls once inputs are validated."""
        new_state = self.step(x_t, state, noise)
        if self.zoneout > 0.0:
            new_state = self._apply_zoneout(state, new_state)
        return new_state[0], new_state

    def forward(
        self,
        x_t: torch.Tensor,
        state: State | torch.Tensor | None = None,
        noise: RecurrentNoise | None = None,
    ) -> tuple[torch.Tensor, State]:
        """One checked step: x_t (B, input_size), state (tuple of (B, size)) -> (h_t, new_state).

        When stepping a cell by hand over a sequence in training mode, draw
        ``noise = cell.sample_noise(B, x)`` once and pass it to every step: that is what makes
        recurrent dropout and DropConnect variational (the same at every step). Without it
        a fresh draw is made at each call.
        """
        check_tensor("x_t", x_t)
        if x_t.dim() != 2 or x_t.shape[1] != self.input_size:
            raise shape_error("x_t", f"(B, {self.input_size})", x_t.shape)
        batch_size = x_t.shape[0]
        if state is None:
            state = self.initial_state(batch_size, device=x_t.device, dtype=x_t.dtype)
        state = self.check_state(state, batch_size)
        if noise is None:
            noise = self.sample_noise(batch_size, x_t)
        return self.advance(x_t, state, noise)

    def constrain_(self) -> None:
        """Project parameters back onto their constraint set after an optimiser step (default: none)."""

    def extra_repr(self) -> str:
        options = [f"{self.input_size}, {self.hidden_size}"]
        if not self.bias:
            options.append("bias=False")
        for name in ("layer_norm", "recurrent_dropout", "zoneout", "weight_dropout"):
            if getattr(self, name):
                options.append(f"{name}={getattr(self, name)}")
        return ", ".join(options)
