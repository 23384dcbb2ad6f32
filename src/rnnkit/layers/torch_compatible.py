"""Drop-in replacements for ``torch.nn.RNN``, ``LSTM`` and ``GRU``, and the same API for JANET and IndRNN.

Same constructor, forward signature, return types and ``state_dict`` keys
(``weight_ih_l0``, ``bias_hh_l1_reverse``, ``weight_hr_l0``, ...) as torch.nn, so
``torch.nn.LSTM`` can be replaced by ``rnnkit.LSTM`` in existing code and existing
state dicts load. Everything extra (``merge_mode``, ``residual``, ``layer_norm``,
``lengths=`` in forward, ...) is an addition; nothing torch.nn accepts changes meaning.

The layer holds its parameters as torch.nn does, on itself under torch's names: what
``named_parameters()``, ``torch.nn.utils.prune``, ``parametrize`` and weight-drop wrappers
see and change is what the cells compute with (``RecurrentCell.lend_weights``).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch.nn.utils import parametrize
from torch.nn.utils.rnn import PackedSequence

from rnnkit._checks import check_choice
from rnnkit.layers.recurrent import Recurrent


class TorchCompatibleRecurrent(Recurrent):
    """``Recurrent`` with torch.nn's parameters, forward signature and return types.

    Not a subclass of ``torch.nn.RNNBase``: that class's forward, weight layout and cuDNN
    flattening are torch's own kernels' business, and its ``__init__`` builds the
    parameters itself. Code that checks ``isinstance(m, nn.RNNBase)`` should also accept
    ``rnnkit.TorchCompatibleRecurrent`` (see the README).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # torch's order: per layer, per direction, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr
        self._all_weights: list[list[str]] = []
        for index, layer in enumerate(self.layers):
            for direction, cell in enumerate(layer.direction_cells):
                suffix = f"_l{index}" + ("_reverse" if direction else "")
                names = {name: name + suffix for name, value in cell._parameters.items() if value is not None}
                cell.lend_weights(self, names)
                self._all_weights.append(list(names.values()))

    @property
    def _flat_weights_names(self) -> list[str]:
        return [name for names in self._all_weights for name in names]

    @property
    def _flat_weights(self) -> list[torch.Tensor | None]:
        """The weights as the kernels see them now (a pruned or parametrized weight's current value)."""
        return [getattr(self, name, None) for name in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list[torch.Tensor]]:
        """Weights grouped per layer and direction, as torch.nn's ``all_weights``."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def flatten_parameters(self) -> None:
        """No-op, kept so code written for torch.nn (which calls it for cuDNN) runs unchanged."""

    def reset_parameters(self) -> None:
        """Each cell's own initialisation (torch.nn's uniform, the LSTM's forget bias, chrono, ...)."""
        for cell in self.cells:
            cell.reset_parameters()

    def forward(
        self,
        input: torch.Tensor | PackedSequence,
        hx: torch.Tensor | tuple[torch.Tensor, ...] | None = None,
        lengths: torch.Tensor | Sequence[int] | None = None,
    ):
        """``output, h_n = rnn(input, h_0)``; for LSTM ``output, (h_n, c_n) = lstm(input, (h_0, c_0))``."""
        if parametrize.is_parametrized(self) and not torch.compiler.is_compiling():
            with parametrize.cached():  # each parametrized weight computed once per call, not at every step
                output, state = super().forward(input, hx, lengths)
        else:
            output, state = super().forward(input, hx, lengths)
        return output, (state if len(state) > 1 else state[0])


class RNN(TorchCompatibleRecurrent):
    """Elman RNN with the interface of ``torch.nn.RNN`` (nonlinearity "tanh" or "relu")."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, **extra) -> None:
        check_choice("nonlinearity", nonlinearity, ("tanh", "relu"))
        super().__init__("rnn", input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                         dropout=dropout, batch_first=batch_first, bias=bias, activation=nonlinearity,
                         device=device, dtype=dtype, **extra)
        self.nonlinearity = nonlinearity
        self.mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"


class LSTM(TorchCompatibleRecurrent):
    """LSTM with the interface of ``torch.nn.LSTM`` (including ``proj_size``)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device=None, dtype=None, **extra) -> None:
        super().__init__("lstm", input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                         dropout=dropout, batch_first=batch_first, bias=bias, proj_size=proj_size,
                         device=device, dtype=dtype, **extra)
        self.mode = "LSTM"


class GRU(TorchCompatibleRecurrent):
    """GRU with the interface of ``torch.nn.GRU`` (``reset_after=False`` gives Cho et al.'s variant)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, **extra) -> None:
        super().__init__("gru", input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                         dropout=dropout, batch_first=batch_first, bias=bias, device=device, dtype=dtype, **extra)
        self.mode = "GRU"


class JANET(TorchCompatibleRecurrent):
    """JANET layer with torch.nn's conventions; returns ``output, h_n``. ``t_max`` sets chrono init."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, **extra) -> None:
        super().__init__("janet", input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                         dropout=dropout, batch_first=batch_first, bias=bias, device=device, dtype=dtype, **extra)
        self.mode = "JANET"


class IndRNN(TorchCompatibleRecurrent):
    """IndRNN layer with torch.nn's conventions; returns ``output, h_n``. ``t_max`` sets |u| ≤ 2^(1/t_max)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "relu",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, **extra) -> None:
        check_choice("nonlinearity", nonlinearity, ("relu", "tanh"))
        super().__init__("indrnn", input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                         dropout=dropout, batch_first=batch_first, bias=bias, activation=nonlinearity,
                         device=device, dtype=dtype, **extra)
        self.nonlinearity = nonlinearity
        self.mode = "INDRNN"
