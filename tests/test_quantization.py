"""``rnnkit.quantize_dynamic``: LSTM and GRU stacks and linear layers in int8, close to the float model, and
every layer it cannot quantize named with the reason (torch's own quantize_dynamic cannot see rnnkit layers)."""

from __future__ import annotations

import pytest
import torch

import rnnkit
from rnnkit.models import LanguageModelConfig
from rnnkit.models.language_model import LanguageModel
from rnnkit.quantization import QuantizedRecurrent, quantize_dynamic


def _language_model(cell: str, **options) -> LanguageModel:
    torch.manual_seed(0)
    config = LanguageModelConfig(cell=cell, hidden_size=64, num_layers=2, embedding_size=16, **options)
    return LanguageModel(30, config).eval()


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_lstm_and_gru_models_run_in_int8_close_to_float(cell):
    model = _language_model(cell)
    quantized, report = quantize_dynamic(model)
    assert isinstance(quantized.rnn, QuantizedRecurrent) and report.quantized == ["rnn", "head"]
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


def test_a_layer_int8_kernels_cannot_compute_stays_in_float_and_the_report_says_why():
    model = _language_model("janet")
    quantized, report = quantize_dynamic(model)
    assert isinstance(quantized.rnn, rnnkit.Recurrent)
    assert report.left_in_float == {"rnn": "JANETCell: PyTorch's int8 kernels are LSTM and GRU only"}
    assert report.quantized == ["head"]
    layer_norm, report = quantize_dynamic(_language_model("lstm", layer_norm=True))
    assert "layer_norm=True" in report.left_in_float["rnn"] and "float: rnn" in str(report)


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
    assert report.quantized == ["(the model)"]
    x = torch.randn(3, 7, 8)
    with torch.no_grad():
        want_output, want_state = layer(x)
        got_output, got_state = quantized(x, want_state)  # the state goes back in as torch.nn's does
        got_output, got_state = quantized(x)
    assert type(got_state) is type(want_state)  # GRU: a tensor; LSTM: (h, c)
    assert float((got_output - want_output).norm() / want_output.norm()) < 0.05
