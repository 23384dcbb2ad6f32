"""``rnnkit.quantize_dynamic``: a trained model's recurrent and linear weights in int8, for CPU inference.

PyTorch's dynamic quantization (``torch.ao.quantization.quantize_dynamic``) swaps modules by
their exact class (``nn.LSTM``, ``nn.Linear``): it cannot see rnnkit's layers and leaves them
in float (each layer warns when that happens, ``Recurrent.qconfig``). This function does the
swap for them, two ways:

* a ``Recurrent`` stack torch.nn could compute (plain LSTM or reset-after GRU, layers connected
  as torch.nn connects them) becomes PyTorch's int8 LSTM/GRU (fbgemm's int8 GEMMs, weights
  quantized per tensor, activations per call), behind ``Recurrent``'s forward contract;
* any other stack of rnnkit's cells (JANET, IndRNN, Elman, the reset-before GRU, layer norm,
  projections, residual links, ...) keeps its layers and its cells' equations, and each cell's
  weight matrices become ``Int8Matrix``es (``cells/int8.py``: one scale per row) that the
  cell's own step multiplies by (``RecurrentCell.project``).

Linear layers go to PyTorch's int8 ``Linear``. What stays in float (an IndRNN's recurrent
weight, a vector; a cell class of the user's own) is in the returned report with the reason:
nothing is left unchanged silently.

``torch.ao.quantization`` is deprecated in favour of torchao, whose int8 path covers linear
layers only; this uses the former while it exists (torch 2.13 still ships it).
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit._checks import ArgumentError
from rnnkit.cells import CELLS, GRUCell, IndRNNCell, LSTMCell
from rnnkit.cells.int8 import Int8Matrix
from rnnkit.kernels import KERNELS
from rnnkit.kernels.kernel import exact_class
from rnnkit.layers import Recurrent, TorchCompatibleRecurrent


@dataclass
class QuantizationReport:
    """What ``quantize_dynamic`` did: the modules now in int8 (and how), and those left in float with the reason."""

    quantized: dict[str, str] = field(default_factory=dict)
    left_in_float: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"int8: {name} — {how}" for name, how in self.quantized.items()]
        lines += [f"float: {name} — {reason}" for name, reason in self.left_in_float.items()]
        return "\n".join(lines) or "no recurrent or linear layers"


def quantize_dynamic(model: nn.Module, dtype: torch.dtype = torch.qint8) -> tuple[nn.Module, QuantizationReport]:
    """A copy of ``model`` (in eval mode) with its recurrent stacks and linear layers in int8, and the report."""
    if dtype != torch.qint8:
        raise ValueError(f"dtype: rnnkit quantizes to torch.qint8, got {dtype}")
    try:
        quantized = copy.deepcopy(model).eval()
    except RuntimeError as error:  # what torch.ao's quantize_dynamic fails with too, without saying what to do
        raise ArgumentError(
            f"quantize_dynamic works on a copy of the model, and this one cannot be copied ({str(error).split('.')[0]}): "
            "torch.nn.utils.prune holds a pruned weight as a computed tensor; make the pruning permanent first with "
            "torch.nn.utils.prune.remove(module, name)"
        ) from error
    report = QuantizationReport()
    for name, module in list(quantized.named_modules()):
        if not isinstance(module, Recurrent):
            continue
        label = name or "(the model)"
        if _why_not_torch_s(module) is None:
            replacement = QuantizedRecurrent(module)
            if name:
                _replace(quantized, name, replacement)
            else:
                quantized = replacement  # the model is the layer
            report.quantized[label] = f"PyTorch's int8 {'LSTM' if exact_class(module.cells[0]) is LSTMCell else 'GRU'}"
            continue
        custom = {type(cell).__name__ for cell in module.cells if exact_class(cell) not in CELLS.values()}
        if custom:
            report.left_in_float[label] = (f"{', '.join(sorted(custom))}: a cell class of your own, whose step may not "
                                           "multiply through RecurrentCell.project")
            continue
        held = _hold_matrices_in_int8(module)
        report.quantized[label] = f"{', '.join(held)} as int8 matrices in the cells' own steps (the reference loop)"
        if any(exact_class(cell) is IndRNNCell for cell in module.cells):
            report.left_in_float[f"{label} weight_hh"] = ("IndRNN's recurrent weight is a vector (an element-wise "
                                                          "product): nothing to multiply in int8")
    with warnings.catch_warnings():
        # torch.ao's notice of its move to torchao, and the layers' own that torch.ao leaves them in float (the report says so)
        warnings.simplefilter("ignore")
        quantized = torch.ao.quantization.quantize_dynamic(quantized, {nn.Linear}, dtype=dtype)
    inside_matrices = {id(module.linear) for module in quantized.modules() if isinstance(module, Int8Matrix)}
    report.quantized |= {name: "PyTorch's int8 Linear" for name, module in quantized.named_modules()
                         if isinstance(module, torch.ao.nn.quantized.dynamic.Linear) and id(module) not in inside_matrices}
    return quantized, report


def _why_not_torch_s(stack: Recurrent) -> str | None:
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


def _hold_matrices_in_int8(stack: Recurrent) -> list[str]:
    """Replace every cell's weight matrices by ``Int8Matrix``es of the weights it computes with now; their names."""
    held: dict[str, None] = {}
    for cell in stack.cells:
        names = []
        for name in _MATRICES:
            weight = getattr(cell, name, None)  # as computed now: a pruning mask, a parametrization applied
            if weight is None or weight.dim() != 2:  # absent (no projection), or a vector (IndRNN's recurrence)
                continue
            home, attribute = cell.weight_home(name)
            if parametrize.is_parametrized(home, attribute):
                _give_its_own_class(home)
                parametrize.remove_parametrizations(home, attribute, leave_parametrized=True)
            delattr(home, attribute)
            home.add_module(attribute, Int8Matrix(weight))
            names.append(name)
            held[name] = None
        cell.int8_weights = tuple(names)
    return list(held)


_MATRICES = ("weight_ih", "weight_hh", "weight_hr")


def _give_its_own_class(module: nn.Module) -> None:
    """Give a deep copy of a parametrized module a class of its own. ``copy.deepcopy`` keeps the class, which
    ``parametrize`` made for the original alone and which holds the weights' properties; removing a
    parametrization from the copy deletes the property from that class, and the original then loses its weight."""
    shared = type(module)
    members = {name: value for name, value in vars(shared).items() if name not in ("__dict__", "__weakref__")}
    module.__class__ = type(shared.__name__, shared.__bases__, members)


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
