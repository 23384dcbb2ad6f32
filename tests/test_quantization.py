"""``rnnkit.quantize_dynamic``: every cell's stack and linear layers in int8, close to the float model (LSTM
and GRU on PyTorch's int8 layers, the other cells through ``Int8Matrix`` in their own steps), and what stays in
float named with the reason (torch's own quantize_dynamic cannot see rnnkit layers)."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils import parametrizations, parametrize, prune

import rnnkit
from rnnkit.models import LanguageModelConfig
from rnnkit.models.language_model import LanguageModel
from rnnkit.cells.int8 import Int8Matrix
from rnnkit.quantization import QuantizedRecurrent, quantize_dynamic


def _language_model(cell: str, **options) -> LanguageModel:
    torch.manual_seed(0)
    config = LanguageModelConfig(cell=cell, hidden_size=64, num_layers=2, embedding_size=16, **options)
    return LanguageModel(30, config).eval()


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_lstm_and_gru_models_run_in_int8_close_to_float(cell):
    model = _language_model(cell)
    quantized, report = quantize_dynamic(model)
    assert isinstance(quantized.rnn, QuantizedRecurrent)
    assert report.quantized == {"rnn": f"PyTorch's int8 {cell.upper()}", "head": "PyTorch's int8 Linear"}
    assert isinstance(model.rnn, rnnkit.Recurrent)  # the original is untouched
    tokens = torch.randint(0, 30, (20, 3))
    lengths = torch.tensor([20, 4, 11])
    with torch.no_grad():
        want, _, want_state = model(tokens, lengths=lengths)
        got, _, got_state = quantized(tokens, lengths=lengths)
    relative = (got - want).norm() / want.norm()
    assert float(relative) < 0.05  # int8 weights: about 2% here
    assert float(relative) > 0  # and really quantized
    assert [part.shape for part in got_state] == [part.shape for part in want_state]
    assert torch.equal(got[4:, 1], got[4:5, 1].expand(16, -1))  # past its length a sequence reads zeros: bias only


# What PyTorch's int8 layers cannot compute: the matrices each cell holds in int8, and how far its output may
# move. Layer norm rescales every gate's pre-activation to unit variance, so the rounding of the activations
# (quantized per call, 7 bits on x86) weighs more there: 7-13% over seeds against 1-2% for the others.
OTHER_STACKS = {
    "janet": ({}, "weight_ih, weight_hh", 0.05),
    "indrnn": ({}, "weight_ih", 0.05),
    "rnn": ({}, "weight_ih, weight_hh", 0.05),
    "gru": ({"reset_after": False}, "weight_ih, weight_hh", 0.05),
    "lstm": ({"layer_norm": True, "proj_size": 24}, "weight_ih, weight_hh, weight_hr", 0.15),
    "janet_residual": ({"cell": "janet", "residual": True, "bidirectional": True}, "weight_ih, weight_hh", 0.05),
}


@pytest.mark.parametrize("name", list(OTHER_STACKS))
def test_every_other_stack_runs_its_cells_steps_on_int8_matrices_close_to_float(name):
    options, matrices, bound = OTHER_STACKS[name]
    options = dict(options)
    torch.manual_seed(0)
    stack = rnnkit.Recurrent(options.pop("cell", name), 16, 48, num_layers=2, **options).eval()
    quantized, report = quantize_dynamic(stack)
    assert isinstance(quantized, rnnkit.Recurrent)  # the same layers and equations, int8 weights inside
    assert report.quantized == {"(the model)": f"{matrices} as int8 matrices in the cells' own steps (the reference loop)"}
    for cell in quantized.cells:
        assert cell.int8_weights == tuple(matrices.split(", "))
        assert all(isinstance(getattr(cell, weight), Int8Matrix) for weight in cell.int8_weights)
        assert not any(parameter.dim() == 2 for parameter in cell.parameters())  # no float matrix left behind
    x = torch.randn(20, 3, 16)
    lengths = torch.tensor([20, 4, 11])
    with torch.no_grad():
        want, _ = stack(x, lengths=lengths)
        got, _ = quantized(x, lengths=lengths)
    relative = float((got - want).norm() / want.norm())
    assert 0 < relative < bound  # really int8, and close
    plan = quantized.kernel_plan(x)
    assert {choice.kernel for choice in plan} == {"reference"} and "in int8" in plan[0].reason
    if name == "indrnn":
        assert "vector" in report.left_in_float["(the model) weight_hh"]
    quantized.kernel = "scan"  # the kernel that computes every cell's float weights
    with pytest.raises(ValueError, match="kernel='scan': layer 0 cannot run on it: .* in int8"):
        quantized(x)


def test_int8_matrix_multiplies_by_its_per_row_int8_weight():
    torch.manual_seed(0)
    weight = torch.randn(6, 5) * torch.tensor([[0.01], [1.0], [100.0], [1.0], [1.0], [1.0]])  # rows of unlike ranges
    matrix = Int8Matrix(weight)
    stored = matrix.linear.weight().dequantize()
    scales = weight.abs().amax(dim=1, keepdim=True) / 127
    assert torch.all((stored - weight).abs() <= scales * 0.51 + 1e-7)  # each row rounded on its own scale
    vector = torch.randn(4, 5)
    # the vector is quantized per call, over its range in 7 bits on x86 (fbgemm's reduce_range, which keeps its
    # 16-bit sums from overflowing): each output is off by at most half a step per weight
    vector_step = float(vector.max() - vector.min()) / 127
    bound = vector_step / 2 * stored.abs().sum(dim=1) + 1e-4
    assert torch.all((matrix(vector) - vector @ stored.t()).abs() <= bound)
    assert torch.equal(matrix[2:4].linear.weight().dequantize(), stored[2:4])  # a block of rows: the same int8 rows
    assert matrix[2:4] is matrix[2:4]  # quantized once


def test_a_weight_normed_drop_in_janet_computes_in_int8_with_the_weight_it_computes():
    torch.manual_seed(0)
    layer = rnnkit.JANET(8, 16).eval()
    parametrizations.weight_norm(layer, "weight_hh_l0")
    with torch.no_grad():
        layer.parametrizations.weight_hh_l0.original0.mul_(0.1)  # the magnitudes: the weight is no longer the direction
    quantized, _ = quantize_dynamic(layer)
    stored = quantized.weight_hh_l0.linear.weight().dequantize()
    assert torch.allclose(stored, layer.weight_hh_l0.detach(), atol=float(layer.weight_hh_l0.abs().max()) / 127)
    x = torch.randn(6, 3, 8)
    with torch.no_grad():
        want, got = layer(x)[0], quantized(x)[0]
    assert float((got - want).norm() / want.norm()) < 0.05
    assert parametrize.is_parametrized(layer, "weight_hh_l0")  # the float model keeps its parametrization


def test_a_pruned_model_says_to_make_the_pruning_permanent_first():
    layer = rnnkit.JANET(8, 16).eval()
    prune.l1_unstructured(layer, "weight_hh_l0", 0.5)
    with pytest.raises(ValueError, match=r"cannot be copied .*prune.remove\(module, name\)"):
        quantize_dynamic(layer)
    prune.remove(layer, "weight_hh_l0")
    quantized, _ = quantize_dynamic(layer)
    assert torch.all(quantized.weight_hh_l0.linear.weight().dequantize()[layer.weight_hh_l0 == 0] == 0)


def test_a_cell_class_of_your_own_stays_in_float_and_the_report_says_why():
    class MyCell(rnnkit.RNNCell):
        pass

    model = rnnkit.Recurrent(MyCell, 4, 8).eval()
    quantized, report = quantize_dynamic(model)
    assert "MyCell: a cell class of your own" in report.left_in_float["(the model)"]
    assert report.quantized == {} and "float: (the model)" in str(report)
    assert all(isinstance(parameter, torch.nn.Parameter) for parameter in quantized.cells[0].weights().values())


def test_torch_s_quantize_dynamic_says_it_leaves_rnnkit_layers_in_float():
    model = _language_model("lstm")
    with pytest.warns(UserWarning, match="Recurrent: torch.ao.quantization cannot quantize rnnkit layers .* "
                                         "use rnnkit.quantize_dynamic"):
        quantized = torch.ao.quantization.quantize_dynamic(model, {torch.nn.LSTM, torch.nn.Linear}, dtype=torch.qint8)
    assert isinstance(quantized.rnn, rnnkit.Recurrent)  # what it warned of
    assert quantized.rnn.qconfig is None  # torch.ao removed what it set


@pytest.mark.parametrize("cls", [rnnkit.GRU, rnnkit.LSTM])
def test_a_drop_in_layer_keeps_torch_nn_s_forward_when_quantized(cls):
    torch.manual_seed(0)
    layer = cls(8, 16, num_layers=2, batch_first=True).eval()
    quantized, report = quantize_dynamic(layer)
    assert report.quantized == {"(the model)": f"PyTorch's int8 {cls.__name__}"}
    x = torch.randn(3, 7, 8)
    with torch.no_grad():
        want_output, want_state = layer(x)
        got_output, got_state = quantized(x, want_state)  # the state goes back in as torch.nn's does
        got_output, got_state = quantized(x)
    assert type(got_state) is type(want_state)  # GRU: a tensor; LSTM: (h, c)
    assert float((got_output - want_output).norm() / want_output.norm()) < 0.05


def test_compiling_an_int8_stack_runs_its_layers_eagerly_and_a_full_graph_says_why_not():
    torch.manual_seed(0)
    quantized, _ = quantize_dynamic(rnnkit.Recurrent("janet", 4, 8).eval())
    x = torch.randn(5, 2, 4)
    torch._dynamo.reset()  # each compile traces anew: Dynamo's cache is per code object, not per compiled model
    with torch.no_grad():
        with pytest.raises(Exception, match=r"layer 0: its weights are in int8 \(rnnkit.quantize_dynamic\)"):
            torch.compile(quantized, backend="eager", fullgraph=True)(x)
        torch._dynamo.reset()
        assert torch.equal(torch.compile(quantized, backend="eager")(x)[0], quantized(x)[0])
