"""Drop-in replacements for ``torch.nn.RNN``, ``LSTM`` and ``GRU``, and the same API for JANET and IndRNN.

Same constructor, forward signature, return types and ``state_dict`` keys
(``weight_ih_l0``, ``bias_hh_l1_reverse``, ``weight_hr_l0``, ...) as torch.nn, so
``torch.nn.LSTM`` can be replaced by ``rnnkit.LSTM`` in existing code and existing
state dicts load. Everything extra (``merge_mode``, ``residual``, ``layer_norm``,
``lengths=`` in forward, ...) is an addition; nothing torch.nn accepts changes meaning.

Internally the weights live in the cells of ``Recurrent``; two state-dict hooks and
``__getattr__`` translate between the cells' module paths and torch's flat names.
"""

from __future__ import annotations

import re
from typing import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from rnnkit._checks import check_choice
from rnnkit.cells import RecurrentCell
from rnnkit.layers.recurrent import Recurrent

# torch's flat name: <parameter>_l<layer>[_reverse]
_TORCH_NAME = re.compile(r"^(?P<parameter>.+)_l(?P<layer>\d+)(?P<reverse>_reverse)?$")
# rnnkit's module path of the same parameter
_MODULE_PATH = re.compile(
    r"^layers\.(?P<layer>\d+)\.(?:(?P<direction>forward_layer|backward_layer)\.)?cell\.(?P<parameter>[^.]+)$"
)


def _module_path_to_torch_name(path: str) -> str | None:
    match = _MODULE_PATH.match(path)
    if match is None:
        return None
    suffix = "_reverse" if match["direction"] == "backward_layer" else ""
    return f"{match['parameter']}_l{match['layer']}{suffix}"


class TorchCompatibleRecurrent(Recurrent):
    """``Recurrent`` with torch.nn's parameter names, forward signature and return types."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.register_state_dict_post_hook(_rename_to_torch)
        self.register_load_state_dict_pre_hook(_rename_from_torch)

    def _torch_path(self, layer: int, reverse: bool) -> str:
        if not self.bidirectional:
            return f"layers.{layer}.cell"
        return f"layers.{layer}.{'backward_layer' if reverse else 'forward_layer'}.cell"

    def _cell_at(self, layer: int, reverse: bool) -> RecurrentCell:
        return self.get_submodule(self._torch_path(layer, reverse))

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            match = _TORCH_NAME.match(name)
            if match is None or int(match["layer"]) >= self.num_layers or (match["reverse"] and not self.bidirectional):
                raise
            cell = self._cell_at(int(match["layer"]), bool(match["reverse"]))
            parameter = cell._parameters.get(match["parameter"])  # None for bias_* with bias=False
            if parameter is None:
                raise
            return parameter

    @property
    def _flat_weights_names(self) -> list[str]:
        return [_module_path_to_torch_name(path) for path, _ in self.named_parameters()]

    @property
    def _flat_weights(self) -> list[torch.Tensor]:
        return [parameter for _, parameter in self.named_parameters()]

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        """Parameters grouped per layer and direction, as torch.nn's ``all_weights``."""
        return [list(cell.parameters()) for cell in self.cells]

    def flatten_parameters(self) -> None:
        """No-op, kept so code written for torch.nn (which calls it for cuDNN) runs unchanged."""

    def forward(
        self,
        input: torch.Tensor | PackedSequence,
        hx: torch.Tensor | tuple[torch.Tensor, ...] | None = None,
        lengths: torch.Tensor | Sequence[int] | None = None,
    ):
        """``output, h_n = rnn(input, h_0)``; for LSTM ``output, (h_n, c_n) = lstm(input, (h_0, c_0))``."""
        output, state = super().forward(input, hx, lengths)
        return output, (state if len(state) > 1 else state[0])


def _rename_to_torch(module, state_dict, prefix, local_metadata) -> None:
    for key in [key for key in state_dict if key.startswith(prefix)]:
        name = _module_path_to_torch_name(key[len(prefix):])
        if name is not None:
            state_dict[prefix + name] = state_dict.pop(key)


def _rename_from_torch(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs) -> None:
    for key in [key for key in state_dict if key.startswith(prefix)]:
        match = _TORCH_NAME.match(key[len(prefix):])
        if match is None or "." in match["parameter"]:
            continue
        layer, reverse = int(match["layer"]), bool(match["reverse"])
        if layer >= module.num_layers or (reverse and not module.bidirectional):
            continue  # left as is, so strict loading reports it as unexpected
        state_dict[f"{prefix}{module._torch_path(layer, reverse)}.{match['parameter']}"] = state_dict.pop(key)


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
