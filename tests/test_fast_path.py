"""The fast path computes what the readable reference path computes, and says when it cannot run."""

import itertools
import logging
from unittest import mock

import pytest
import torch

import rnnkit
from rnnkit.kernels import compiled
from rnnkit.layers import recurrent

T, B, I, H = 7, 4, 5, 6
LENGTHS = [7, 2, 5, 1]

ELIGIBLE = [
    ("rnn", {}),
    ("rnn", dict(activation="relu")),
    ("lstm", {}),
    ("lstm", dict(proj_size=3)),
    ("lstm", dict(bias=False)),
    ("gru", {}),
]


@pytest.mark.parametrize(
    "cell,options,topology,with_lengths",
    [
        (cell, options, topology, with_lengths)
        for (cell, options), topology, with_lengths in itertools.product(
            ELIGIBLE,
            [dict(), dict(bidirectional=True, merge_mode="max"), dict(bidirectional=True, merge_mode=None, num_layers=2),
             dict(bidirectional=True, num_layers=2),  # as torch.nn chains layers: one call of torch's kernel
             dict(num_layers=3, residual=True, bidirectional=True, merge_mode="sum"), dict(num_layers=2, dense=True)],
            [False, True],
        )
        # A projected LSTM's layers never have equal widths, so they have no residual skip.
        if not (options.get("proj_size") and topology.get("residual"))
    ],
)
def test_fast_path_equals_reference_path(cell, options, topology, with_lengths):
    input_size = H if topology.get("residual") else I
    reference = rnnkit.Recurrent(cell, input_size, H, fast_path="off", **options, **topology)
    fast = rnnkit.Recurrent(cell, input_size, H, fast_path="required", **options, **topology)
    fast.load_state_dict(reference.state_dict())
    x = torch.randn(T, B, input_size, requires_grad=True)
    lengths = LENGTHS if with_lengths else None
    expected_output, expected_state = reference(x, lengths=lengths)
    output, state = fast(x, lengths=lengths)
    torch.testing.assert_close(output, expected_output, atol=1e-5, rtol=1e-5)
    for part, expected in zip(state, expected_state):
        torch.testing.assert_close(part, expected, atol=1e-5, rtol=1e-5)
    weights = torch.randn(output.shape)
    expected_grads = torch.autograd.grad((expected_output * weights).sum(), [x, *reference.parameters()])
    grads = torch.autograd.grad((output * weights).sum(), [x, *fast.parameters()])
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "cell,options,reason",
    [
        ("lstm", dict(layer_norm=True, proj_size=2), "layer_norm=True has no torch.nn kernel; .*projection"),
        ("gru", dict(activation="relu"), "GRUCell with these options has no torch.nn kernel .*no loop step"),
        ("lstm", dict(proj_size=2, zoneout=0.1), "zoneout=0.1 has no torch.nn kernel; .*projection"),
    ],
)
def test_required_fast_path_raises_and_says_why(cell, options, reason):
    with pytest.raises(ValueError, match=r"fast_path='required': layer 0 cannot run on a fast kernel: " + reason):
        rnnkit.Recurrent(cell, I, H, fast_path="required", **options)


def test_auto_falls_back_with_a_debug_message(caplog):
    x = torch.randn(T, B, I)
    layer = rnnkit.Recurrent("lstm", I, H, activation="relu")
    with caplog.at_level(logging.DEBUG, logger="rnnkit"):
        assert layer.kernel_plan(x)[0].kernel == "reference"
    assert "layer 0 runs on the reference kernel: LSTMCell with these options" in caplog.text
    assert rnnkit.Recurrent("lstm", I, H).kernel_plan(x)[0].kernel == "native"
    assert rnnkit.Recurrent("janet", I, H).kernel_plan(x)[0].kernel == "loop"
    assert rnnkit.Recurrent("lstm", I, H, fast_path="off").kernel_plan(x)[0].kernel == "reference"


def test_a_custom_subclass_never_takes_the_fast_path():
    class Mine(rnnkit.LSTMCell):
        pass

    assert rnnkit.Recurrent(Mine, I, H).kernel_plan(torch.randn(T, B, I))[0].kernel == "reference"


def test_unknown_fast_path_policy():
    with pytest.raises(ValueError, match=r"fast_path: expected one of \['auto', 'required', 'off'\], got 'fast'"):
        rnnkit.Recurrent("lstm", I, H, fast_path="fast")


def test_bf16_without_bf16_instructions_runs_on_the_loop_kernel(monkeypatch, caplog):
    # oneDNN's fused kernels have no bf16 implementation on such CPUs (AVX2-only machines).
    monkeypatch.setattr("rnnkit.kernels.native.cpu_computes_bf16", lambda: False)
    layer = rnnkit.Recurrent("lstm", 4, 8, fast_path="required")  # the loop kernel is a fast kernel
    x = torch.randn(5, 3, 4)
    with caplog.at_level(logging.DEBUG, logger="rnnkit"), torch.autocast("cpu", dtype=torch.bfloat16):
        output, _ = layer(x)
        output.float().sum().backward()
    assert "layer 0 runs on the loop kernel: bf16 on a CPU without" in caplog.text
    reference = rnnkit.Recurrent("lstm", 4, 8, fast_path="off")
    reference.load_state_dict(layer.state_dict())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected, _ = reference(x)
    # The loop kernel runs its loop in bf16 (as the fused kernels do); the reference promotes its fp32 zero state.
    torch.testing.assert_close(output.float(), expected.float(), atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("steps", [1, T])
def test_a_native_stack_runs_in_one_call_of_torchs_kernel(cell, steps, monkeypatch):
    """Layers chained as torch.nn chains them run in one call, with the per-layer loop's results."""
    monkeypatch.setenv(compiled.SWITCH, "0")  # RNN and GRU then stay on torch's kernel over several steps too
    reference = rnnkit.Recurrent(cell, I, H, num_layers=3, bidirectional=True, fast_path="off")
    fast = rnnkit.Recurrent(cell, I, H, num_layers=3, bidirectional=True)
    fast.load_state_dict(reference.state_dict())
    x = torch.randn(steps, B, I, requires_grad=True)
    state = tuple(torch.randn(6, B, H, requires_grad=True) for _ in fast.state_names)
    lengths = [min(steps, n) for n in LENGTHS]
    with mock.patch.object(recurrent, "run_native_stack_of", wraps=recurrent.run_native_stack_of) as stack:
        output, final = fast(x, state, lengths=lengths)
    single_lstm_step = cell == "lstm" and steps == 1  # runs the cell's own step, layer by layer
    assert stack.call_count == (0 if single_lstm_step else 1)
    expected_output, expected_final = reference(x, state, lengths=lengths)
    got = torch.autograd.grad(output.square().sum() + final[0].sum(), [x, *state, *fast.parameters()], allow_unused=True)
    want = torch.autograd.grad(
        expected_output.square().sum() + expected_final[0].sum(), [x, *state, *reference.parameters()], allow_unused=True
    )
    for value, expected in zip([output, *final, *got], [expected_output, *expected_final, *want]):
        torch.testing.assert_close(value, expected, atol=1e-5, rtol=1e-5)


def test_dropout_between_layers_keeps_the_per_layer_loop():
    model = rnnkit.Recurrent("lstm", I, H, num_layers=2, dropout=0.5)
    x = torch.randn(T, B, I)
    with mock.patch.object(recurrent, "run_native_stack_of", wraps=recurrent.run_native_stack_of) as stack:
        model.train()(x)
        assert stack.call_count == 0  # torch's kernel would draw its own dropout masks
        model.eval()(x)
        assert stack.call_count == 1
