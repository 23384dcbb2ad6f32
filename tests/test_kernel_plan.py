"""The kernel plan: made at every call from the layer as it is then, forced through a public option, and clear
about inputs no kernel can take."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils import parametrizations, prune

import rnnkit
from rnnkit.kernels import KERNELS, plan_layers

T, B, I, H = 6, 3, 4, 5
LENGTHS = [6, 2, 4]


def _outputs_and_gradients(model, x):
    """Output, final state and the gradients of a loss that weighs every output differently."""
    output, state = model(x, lengths=LENGTHS)
    weights = torch.linspace(-1, 1, output.numel()).reshape(output.shape)
    loss = (output * weights).sum() + sum(part.square().sum() for part in state)
    return [output, *state, *torch.autograd.grad(loss, [x, *model.parameters()])]


def _assert_all_close(got, expected, tolerance=1e-5):
    assert len(got) == len(expected)
    for value, want in zip(got, expected):
        torch.testing.assert_close(value, want, atol=tolerance, rtol=tolerance)


@pytest.mark.parametrize("cell,kernel", [("lstm", "native"), ("janet", "loop"), ("gru", "native")])
def test_a_cell_parametrized_after_construction_runs_its_parametrized_weight(cell, kernel, monkeypatch):
    monkeypatch.setenv("RNNKIT_COMPILED", "0")  # the GRU then stays on torch's kernel, as on a GPU
    torch.manual_seed(0)
    fast = rnnkit.Recurrent(cell, I, H, bidirectional=True)
    reference = rnnkit.Recurrent(cell, I, H, bidirectional=True, kernel="reference")
    reference.load_state_dict(fast.state_dict())
    x = torch.randn(T, B, I, requires_grad=True)
    assert fast.kernel_plan(x)[0].kernel == kernel  # planned before: the bug ran this plan on the new weights
    for model in (fast, reference):
        for direction in model.layers[0].direction_cells:
            parametrizations.weight_norm(direction, "weight_hh")
    assert fast.kernel_plan(x)[0].kernel == kernel  # weight norm changes no equation: still the fast kernel
    with torch.no_grad():  # away from the initial g = ‖v‖, so that a kernel reading v alone fails
        for name, parameter in fast.named_parameters():
            if name.endswith("original0"):
                parameter.mul_(1.5)
        reference.load_state_dict(fast.state_dict())
    _assert_all_close(_outputs_and_gradients(fast, x), _outputs_and_gradients(reference, x))


def test_a_cell_replaced_after_construction_is_planned_again():
    class Doubled(rnnkit.LSTMCell):
        def step(self, x_t, state, noise):
            h, c = super().step(x_t, state, noise)
            return 2 * h, c

    model = rnnkit.Recurrent("lstm", I, H)
    x = torch.randn(T, B, I)
    before, _ = model(x)
    replacement = Doubled(I, H)
    replacement.load_state_dict(model.layers[0].cell.state_dict())
    model.layers[0].cell = replacement
    assert model.kernel_plan(x)[0].kernel == "reference"
    after, _ = model(x)
    assert not torch.allclose(after, before)  # torch's kernel would have computed the plain LSTM again


def test_a_pruned_cell_runs_its_current_pruned_weight():
    torch.manual_seed(0)
    model = rnnkit.Recurrent("lstm", I, H)
    cell = model.layers[0].cell
    prune.l1_unstructured(cell, "weight_hh", amount=0.5)
    x = torch.randn(T, B, I)
    with torch.no_grad():
        cell.weight_hh_orig.add_(1.0)  # an optimiser step on the parameter behind the pruned weight
    output, _ = model(x)
    expected_weight = (cell.weight_hh_orig * cell.weight_hh_mask).detach()
    reference = rnnkit.Recurrent("lstm", I, H, kernel="reference")
    with torch.no_grad():
        for name in ("weight_ih", "bias_ih", "bias_hh"):
            getattr(reference.layers[0].cell, name).copy_(getattr(cell, name))
        reference.layers[0].cell.weight_hh.copy_(expected_weight)
    torch.testing.assert_close(output, reference(x)[0])


def test_a_kernel_can_be_forced_and_says_why_it_cannot_run():
    model = rnnkit.Recurrent("gru", I, H, kernel="loop")
    x = torch.randn(T, B, I)
    assert [choice.kernel for choice in model.kernel_plan(x)] == ["loop"]
    model.kernel = "reference"
    assert [choice.kernel for choice in model.kernel_plan(x)] == ["reference"]
    with pytest.raises(ValueError, match=r"kernel='native': layer 0 cannot run on it: JANETCell with these options has no torch.nn"):
        rnnkit.Recurrent("janet", I, H, kernel="native")
    with pytest.raises(ValueError, match=r"kernel: expected one of \['auto', 'native', 'loop', 'scan', 'reference'\], got 'fast'"):
        rnnkit.Recurrent("janet", I, H, kernel="fast")
    expected = model(x, lengths=[T, 1, 2][:B] + [T] * (B - 3))[0]  # on the reference loop
    model.kernel = "scan"  # torch.export's kernel runs eagerly too, and computes what the reference loop computes
    torch.testing.assert_close(model(x, lengths=[T, 1, 2][:B] + [T] * (B - 3))[0], expected)


def test_the_plan_of_the_cells_alone_and_of_a_call():
    layers = rnnkit.Recurrent("janet", I, H, num_layers=2).layers
    assert [choice.kernel for choice in plan_layers(layers, None)] == ["loop", "loop"]
    assert "JANETCell with these options has no torch.nn kernel" in plan_layers(layers, None)[0].reason
    assert list(KERNELS) == ["native", "loop", "scan", "reference"]  # fastest first; scan only for torch.export


def test_an_input_of_another_dtype_than_the_weights_gets_one_clear_error():
    model = rnnkit.LSTM(3, 4).double()
    with pytest.raises(ValueError, match=r"^input: dtype torch.float32 differs from the weights' torch.float64; "
                                         r"convert the input with input.to\(torch.float64\) or the model with "
                                         r"model.to\(torch.float32\)$"):
        model(torch.randn(5, 2, 3))
    model(torch.randn(5, 2, 3, dtype=torch.float64))  # the same dtype runs
