"""``rnnkit.quantize_dynamic``: a trained model's LSTM, GRU and linear weights in int8, for CPU inference.

PyTorch's dynamic quantization (``torch.ao.quantization.quantize_dynamic``) swaps modules by
their exact class (``nn.LSTM``, ``nn.Linear``): it cannot see rnnkit's layers and leaves them
in float (each layer warns when that happens, ``Recurrent.qconfig``). This function does the
swap for them: a ``Recurrent`` stack
whose every layer torch.nn could compute (plain LSTM or reset-after GRU, layers connected as
torch.nn connects them) becomes PyTorch's int8 LSTM/GRU (fbgemm's int8 GEMMs, weights
quantized per tensor, activations per call), behind ``Recurrent``'s forward contract; linear
layers go to PyTorch's int8 ``Linear``. A stack that torch's int8 kernels cannot compute
(JANET, IndRNN, Elman, layer norm, recurrent dropout, residual links, ...) stays in float and
the returned report says which and why: nothing is left unchanged silently.

``torch.ao.quantization`` is deprecated in favour of torchao, whose int8 path covers linear
layers only; this uses the former while it exists (torch 2.13 still ships it).
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.cells import GRUCell, LSTMCell
from rnnkit.kernels import KERNELS
from rnnkit.kernels.kernel import exact_class
from rnnkit.layers import Recurrent, TorchCompatibleRecurrent


@dataclass
class QuantizationReport:
    """What ``quantize_dynamic`` did: the modules now in int8, and those left in float with the reason."""

    quantized: list[str] = field(default_factory=list)
    left_in_float: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"int8: {name}" for name in self.quantized]
        lines += [f"float: {name} — {reason}" for name, reason in self.left_in_float.items()]
        return "\n".join(lines) or "no recurrent or linear layers"


def quantize_dynamic(model: nn.Module, dtype: torch.dtype = torch.qint8) -> tuple[nn.Module, QuantizationReport]:
    """A copy of ``model`` (in eval mode) with its LSTM/GRU stacks and linear layers in int8, and the report."""
    if dtype != torch.qint8:
        raise ValueError(f"dtype: rnnkit quantizes to torch.qint8, got {dtype}")
    quantized = copy.deepcopy(model).eval()
    report = QuantizationReport()
    for name, module in list(quantized.named_modules()):
        if isinstance(module, Recurrent):
            reason = _why_not(module)
            if reason is None and not name:
                quantized = QuantizedRecurrent(module)  # the model is the layer
                report.quantized.append("(the model)")
            elif reason is None:
                _replace(quantized, name, QuantizedRecurrent(module))
                report.quantized.append(name)
            else:
                report.left_in_float[name or "(the model)"] = reason
    with warnings.catch_warnings():
        # torch.ao's notice of its move to torchao, and the layers' own that torch.ao leaves them in float (the report says so)
        warnings.simplefilter("ignore")
        quantized = torch.ao.quantization.quantize_dynamic(quantized, {nn.Linear}, dtype=dtype)
    report.quantized += [name for name, module in quantized.named_modules()
                         if isinstance(module, torch.ao.nn.quantized.dynamic.Linear)]
    return quantized, report


def _why_not(stack: Recurrent) -> str | None:
    """Why PyTorch's int8 LSTM/GRU cannot compute ``stack``, or None."""
    cells = stack.cells
    kinds = {exact_class(cell) for cell in cells}
    if not kinds <= {LSTMCell, GRUCell}:
        return f"{', '.join(sorted(kind.__name__ for kind in kinds))}: PyTorch's int8 kernels are LSTM and GRU only"
    reason = KERNELS["native"].why_not(cells)
    if reason is not None:
        return reason
    if any(getattr(cell, "proj_size", 0) for cell in cells):
        return "proj_size: PyTorch's int8 LSTM has no projection"
    if stack.residual or stack.dense or stack.merge_mode != "concat":
        return "residual, dense or merge_mode other than concat: torch.nn's layers are not connected so"
    return None


def _replace(root: nn.Module, name: str, replacement: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent_name) if parent_name else root, child, replacement)


class QuantizedRecurrent(nn.Module):
    """PyTorch's int8 LSTM or GRU behind the forward of the layer it replaces: ``output, state = layer(input, state,
    lengths)``, the state a tuple as ``Recurrent`` returns it, or as torch.nn does for a drop-in (``rnnkit.GRU``: h)."""

    def __init__(self, stack: Recurrent) -> None:
        super().__init__()
        kind = nn.LSTM if exact_class(stack.cells[0]) is LSTMCell else nn.GRU
        float_layer = kind(stack.input_size, stack.hidden_size, num_layers=stack.num_layers, bias=stack.bias,
                           dropout=0.0, bidirectional=stack.bidirectional)
        for index, layer in enumerate(stack.layers):
            for direction, cell in enumerate(layer.direction_cells):
                suffix = f"_l{index}" + ("_reverse" if direction else "")
                for weight_name, weight in cell.weights().items():
                    getattr(float_layer, weight_name + suffix).data.copy_(weight.detach())
        float_layer.qconfig = torch.ao.quantization.default_dynamic_qconfig
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao's deprecation notices
            quantized_class = torch.ao.nn.quantized.dynamic.LSTM if kind is nn.LSTM else torch.ao.nn.quantized.dynamic.GRU
            self.layer = quantized_class.from_float(float_layer)
        self.batch_first = stack.batch_first
        self.state_names = stack.state_names
        self.output_size = stack.output_size
        self.num_layers, self.num_directions = stack.num_layers, stack.num_directions
        self.returns_bare_state = isinstance(stack, TorchCompatibleRecurrent) and len(stack.state_names) == 1

    def forward(self, input: torch.Tensor, state=None, lengths=None):
        inputs = input.transpose(0, 1) if self.batch_first else input  # (T, B, I)
        if isinstance(state, torch.Tensor):
            state = (state,)
        hx = None if state is None else (tuple(state) if len(self.state_names) > 1 else state[0])
        if lengths is None:
            output, final = self.layer(inputs, hx)
        else:
            packed = pack_padded_sequence(inputs, torch.as_tensor(lengths).cpu(), enforce_sorted=False)
            output, final = self.layer(packed, hx)
            output, _ = pad_packed_sequence(output, total_length=inputs.shape[0])
        final = tuple(final) if isinstance(final, tuple) else (final,)
        output = output.transpose(0, 1) if self.batch_first else output
        return output, (final[0] if self.returns_bare_state else final)
