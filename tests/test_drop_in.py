"""The drop-in classes behave as torch.nn's where torch.nn defines the behaviour.

Parameters live on the layer under torch's names, so pruning, parametrizations and weight-drop
wrappers act on them, and the weight they produce is what every kernel computes with: each
case compares the forward result and the gradients with ``torch.nn`` given the same weights
and the same modification. Also: a batch of size 0, and argument errors that are both
``ValueError`` and ``RuntimeError``. Several tests port the behaviour that PyTorch's own RNN
tests (``test/test_nn.py``) check; their names say which.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrizations, parametrize, prune

import rnnkit

T, B, I, H = 5, 3, 4, 6
DROP_INS = [(rnnkit.RNN, nn.RNN, {}), (rnnkit.LSTM, nn.LSTM, {}), (rnnkit.GRU, nn.GRU, {}),
            (rnnkit.LSTM, nn.LSTM, {"proj_size": 3})]
IDS = ["rnn", "lstm", "gru", "lstm_proj"]
# every kernel that computes these cells: torch's fused one, rnnkit's loop kernel, the readable loop
KERNELS = ["native", "loop", "reference"]


def _pair(ours, theirs, options, kernel="auto", **shape):
    torch.manual_seed(0)
    layout = dict(num_layers=2, bidirectional=True) | shape
    theirs = theirs(I, H, **layout, **options)
    ours = ours(I, H, **layout, **options, kernel=kernel)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def _assert_same_results(ours, theirs):
    """Equal outputs, final states and gradients of every parameter, under the same names."""
    x = torch.randn(T, B, I)
    got, want = ours(x), theirs(x)
    got_state = got[1] if isinstance(got[1], tuple) else (got[1],)
    want_state = want[1] if isinstance(want[1], tuple) else (want[1],)
    for value, expected in zip([got[0], *got_state], [want[0], *want_state], strict=True):
        torch.testing.assert_close(value, expected, atol=1e-5, rtol=1e-5)
    weights = torch.linspace(-1, 1, got[0].numel()).reshape(got[0].shape)
    (got[0] * weights).sum().backward()
    (want[0] * weights).sum().backward()
    ours_grads = {name: p.grad for name, p in ours.named_parameters()}
    theirs_grads = {name: p.grad for name, p in theirs.named_parameters()}
    assert ours_grads.keys() == theirs_grads.keys()
    for name, grad in theirs_grads.items():
        torch.testing.assert_close(ours_grads[name], grad, atol=1e-5, rtol=1e-5, msg=name)


@pytest.mark.parametrize("ours, theirs, options", DROP_INS, ids=IDS)
def test_parameter_names_and_order_are_torch_nn_s(ours, theirs, options):
    ours, theirs = _pair(ours, theirs, options)
    assert [name for name, _ in ours.named_parameters()] == [name for name, _ in theirs.named_parameters()]
    assert ours._flat_weights_names == theirs._flat_weights_names
    assert [[w.shape for w in group] for group in ours.all_weights] == [[w.shape for w in group] for group in theirs.all_weights]
    assert list(ours.state_dict()) == list(theirs.state_dict())


@pytest.mark.parametrize("cls", [rnnkit.JANET, rnnkit.IndRNN])
def test_janet_and_indrnn_name_their_parameters_by_the_same_convention(cls):
    layer = cls(I, H, num_layers=2, bidirectional=True)
    names = [name for name, _ in layer.named_parameters()]
    assert names[:4] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert names[-4:] == ["weight_ih_l1_reverse", "weight_hh_l1_reverse", "bias_ih_l1_reverse", "bias_hh_l1_reverse"]
    assert all(not list(cell.parameters()) for cell in layer.cells)  # held once, by the layer


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("ours, theirs, options", DROP_INS, ids=IDS)
def test_pruning_changes_the_output_as_it_changes_torch_nn_s(ours, theirs, options, kernel):
    if kernel == "loop" and options.get("proj_size"):
        pytest.skip("the loop kernel has no LSTM projection")
    ours, theirs = _pair(ours, theirs, options, kernel)
    for layer in (ours, theirs):
        prune.l1_unstructured(layer, "weight_hh_l0", amount=0.5)
        prune.random_unstructured(layer, "weight_ih_l1_reverse", amount=0.3)
    theirs.weight_ih_l1_reverse_mask.copy_(ours.weight_ih_l1_reverse_mask)  # the same random mask
    assert int((ours.weight_hh_l0 == 0).sum()) >= ours.weight_hh_l0.numel() // 2
    _assert_same_results(ours, theirs)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("ours, theirs, options", DROP_INS[1:3], ids=IDS[1:3])
def test_parametrizations_change_the_output_as_they_change_torch_nn_s(ours, theirs, options, kernel):
    ours, theirs = _pair(ours, theirs, options, kernel)
    for layer in (ours, theirs):
        parametrizations.weight_norm(layer, "weight_hh_l0")
        parametrizations.orthogonal(layer, "weight_ih_l1")
        parametrizations.spectral_norm(layer, "weight_hh_l1_reverse")
    theirs.load_state_dict(ours.state_dict())  # an orthogonal map's coordinates depend on how it was registered
    with torch.no_grad():
        ours.parametrizations.weight_hh_l0.original0.mul_(3.0)
        theirs.parametrizations.weight_hh_l0.original0.mul_(3.0)
    ours.eval(), theirs.eval()  # spectral norm's power iteration draws nothing in eval
    _assert_same_results(ours, theirs)


@pytest.mark.parametrize("ours, theirs, options", DROP_INS, ids=IDS)
def test_the_old_weight_norm_and_its_removal(ours, theirs, options):
    """Port of test_nn.py's test_rnn_weight_norm."""
    name = "weight_hr_l0" if options.get("proj_size") else "weight_ih_l0"
    layer, _ = _pair(ours, theirs, options)
    count = len(layer._flat_weights)
    layer = torch.nn.utils.weight_norm(layer, name=name)
    assert sum(isinstance(p, nn.Parameter) for p in layer._flat_weights) == count - 1
    layer = torch.nn.utils.remove_weight_norm(layer, name=name)
    assert sum(isinstance(p, nn.Parameter) for p in layer._flat_weights) == count
    assert name in dict(layer.named_parameters()) and name + "_g" not in dict(layer.named_parameters())
    x = torch.randn(T, B, I)
    with torch.no_grad():
        getattr(layer, name).zero_()  # the restored parameter is the one the cells read
    reference = ours(I, H, num_layers=2, bidirectional=True, **options)
    reference.load_state_dict(layer.state_dict())
    torch.testing.assert_close(layer(x)[0], reference(x)[0])


@pytest.mark.parametrize("kernel", KERNELS)
def test_a_weight_drop_wrapper_drops_what_the_kernels_use(kernel):
    """AWD-LSTM's WeightDrop: the raw weight becomes a parameter of its own, and before each forward a
    dropped copy is assigned, as a plain tensor, under the weight's name."""

    class WeightDrop(nn.Module):
        def __init__(self, module, name, p):
            super().__init__()
            self.module, self.name, self.p = module, name, p
            raw = getattr(module, name)
            del module._parameters[name]
            module.register_parameter(name + "_raw", nn.Parameter(raw.detach().clone()))

        def forward(self, *args):
            raw = getattr(self.module, self.name + "_raw")
            setattr(self.module, self.name, nn.functional.dropout(raw, self.p, self.training))
            return self.module(*args)

    ours, theirs = _pair(rnnkit.LSTM, nn.LSTM, {}, kernel, num_layers=1, bidirectional=False)
    ours, theirs = WeightDrop(ours, "weight_hh_l0", 0.5), WeightDrop(theirs, "weight_hh_l0", 0.5)
    x = torch.randn(T, B, I)
    torch.manual_seed(3)
    got = ours(x)[0]
    torch.manual_seed(3)
    want = theirs(x)[0]
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)
    ours.eval()
    assert not torch.allclose(ours(x)[0], got)  # the dropped connections mattered
    got.sum().backward()
    assert ours.module.weight_hh_l0_raw.grad is not None


def test_weights_can_be_reassigned_and_deleted():
    ours, theirs = _pair(rnnkit.GRU, nn.GRU, {})
    replacement = torch.randn_like(theirs.weight_hh_l1)
    ours.weight_hh_l1 = nn.Parameter(replacement.clone())
    theirs.weight_hh_l1 = nn.Parameter(replacement.clone())
    assert any(p is ours.weight_hh_l1 for p in ours.parameters())
    _assert_same_results(ours, theirs)
    del ours.weight_hh_l1
    with pytest.raises(AttributeError, match="weight_hh_l1"):
        ours(torch.randn(T, B, I))


@pytest.mark.parametrize("cls", [rnnkit.RNN, rnnkit.LSTM, rnnkit.GRU, rnnkit.JANET, rnnkit.IndRNN])
@pytest.mark.parametrize("kernel", ["auto", "loop", "reference"])
def test_a_batch_of_size_zero(cls, kernel):
    """Port of test_nn.py's test_RNN_input_size_zero, for every cell, with and without lengths."""
    layer = cls(3, 4, num_layers=2, bidirectional=True, kernel=kernel)
    output, state = layer(torch.zeros(5, 0, 3))
    assert output.shape == (5, 0, 8)
    assert (state[0] if isinstance(state, tuple) else state).shape == (4, 0, 4)
    output.sum().backward()  # no hard error
    output, _ = layer(torch.zeros(5, 0, 3), lengths=torch.zeros(0, dtype=torch.long))
    assert output.shape == (5, 0, 8)
    with pytest.raises(RuntimeError, match="T must be at least 1"):
        layer(torch.zeros(0, 2, 3))


@pytest.mark.parametrize("call", [
    lambda: rnnkit.LSTM(I, H)(torch.randn(T, B, I + 1)),  # wrong input size
    lambda: rnnkit.LSTM(I, H)(torch.randn(T, B, I), (torch.randn(1, B, H + 1), torch.randn(1, B, H))),  # hidden size
    lambda: rnnkit.GRU(I, H)(torch.randn(T, B, I), torch.randn(1, B + 1, H)),  # batch of the state
    lambda: rnnkit.GRU(I, H, num_layers=2)(torch.randn(T, B, I), torch.randn(1, B, H)),  # layers of the state
    lambda: rnnkit.LSTM(I, H, proj_size=2)(torch.randn(T, B, I), (torch.randn(1, B, H), torch.randn(1, B, H))),
    lambda: rnnkit.LSTM(I, H)(torch.randn(T, B, I), lengths=[T + 1] * B),  # a length past T
], ids=["input_size", "hidden_size", "batch", "num_layers", "proj_size", "lengths"])
def test_argument_errors_are_both_value_and_runtime_errors(call):
    """test_nn.py's test_rnn_args_check and test_rnn_proj_args_check expect RuntimeError; rnnkit has raised
    ValueError, with messages that say what was expected."""
    with pytest.raises(ValueError, match="expected|must be") as raised:
        call()
    assert isinstance(raised.value, RuntimeError)


def test_parametrized_weights_are_computed_once_per_call():
    calls = []

    class Counted(nn.Module):
        def forward(self, weight):
            calls.append(1)
            return weight

    layer = rnnkit.LSTM(I, H, kernel="reference")
    parametrize.register_parametrization(layer, "weight_hh_l0", Counted())
    calls.clear()
    layer(torch.randn(T, B, I))
    assert len(calls) == 1  # not once per step
