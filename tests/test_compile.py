"""``torch.compile`` and ``torch.export`` of rnnkit layers: they trace, and compute what eager computes.

Under tracing the planner runs the reference loop, the one kernel a compiler can trace
(``rnnkit.kernels.plan``). Most cases compile with the "aot_eager" backend, which runs
Dynamo's tracing and AOTAutograd's joint graph (where fake tensors fail on kernels that
cannot be traced) without Inductor's code generation; one case runs Inductor, the default.
A counting backend checks that a graph was really compiled: past Dynamo's recompile limit
a model would silently run eagerly and compare equal to itself.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from torch._dynamo.testing import CompileCounterWithBackend

import rnnkit

T, B, I, H = 5, 3, 4, 6
LENGTHS = [5, 2, 4]
CELLS = ["rnn", "lstm", "gru", "janet", "indrnn"]


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _results(model, x, lengths, training: bool):
    """Output, final state and (in training) the gradients of a loss that weighs every output differently."""
    output, state = model(x, lengths=lengths)
    results = [output, *state]
    if training:
        weights = torch.linspace(-1, 1, output.numel()).reshape(output.shape)
        loss = (output * weights).sum() + sum(part.square().sum() for part in state)
        results += torch.autograd.grad(loss, [x, *[p for p in model.parameters()]])
    return results


def _compare(model, backend, lengths, training: bool, **compile_options):
    torch.manual_seed(1)
    x = torch.randn(T, B, I, requires_grad=training)
    model.train(training)
    counter = CompileCounterWithBackend(backend)
    compiled = torch.compile(model, backend=counter, **compile_options)
    with torch.set_grad_enabled(training):
        got = _results(compiled, x, lengths, training)
        expected = _results(model, x, lengths, training)
    assert counter.frame_count >= 1, "nothing was compiled"
    for value, want in zip(got, expected, strict=True):
        torch.testing.assert_close(value, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "cell,bidirectional,with_lengths", list(itertools.product(CELLS, [False, True], [False, True]))
)
def test_a_compiled_layer_trains_as_the_eager_one(cell, bidirectional, with_lengths):
    torch.manual_seed(0)
    model = rnnkit.Recurrent(cell, I, H, bidirectional=bidirectional)
    # Without lengths the whole layer is one graph (as export needs); lengths break the graph where
    # their values decide how many steps run, as packing does for torch.nn.
    options = {} if with_lengths else {"fullgraph": True}
    _compare(model, "aot_eager", LENGTHS if with_lengths else None, training=True, **options)


@pytest.mark.parametrize("cell", CELLS)
def test_a_compiled_layer_infers_as_the_eager_one(cell):
    torch.manual_seed(0)
    model = rnnkit.Recurrent(cell, I, H, num_layers=2, bidirectional=True)
    _compare(model, "aot_eager", LENGTHS, training=False)


def test_the_drop_in_lstm_compiles_with_inductor():
    torch.manual_seed(0)
    _compare(rnnkit.LSTM(I, H, num_layers=2), "inductor", None, training=True)


def test_explain_says_a_compiled_model_runs_the_reference_loop():
    model = torch.compile(rnnkit.Recurrent("lstm", I, H), backend="aot_eager")
    (line,) = rnnkit.explain(model, torch.randn(T, B, I))
    assert line.kernel == "reference"
    assert "torch.compile cannot trace PyTorch's fused RNN kernels" in line.reason
    eager = rnnkit.explain(rnnkit.Recurrent("lstm", I, H), torch.randn(T, B, I))
    assert eager[0].kernel == "native"  # outside tracing, the same layer keeps torch's kernel


@pytest.mark.parametrize("cell", ["lstm", "janet"])
def test_an_exported_layer_equals_the_eager_one(cell):
    torch.manual_seed(0)
    model = rnnkit.Recurrent(cell, I, H, num_layers=2, bidirectional=True).eval()
    x = torch.randn(T, B, I)
    exported = torch.export.export(model, (x,))
    got_output, got_state = exported.module()(x)
    want_output, want_state = model(x)
    for value, want in zip([got_output, *got_state], [want_output, *want_state]):
        torch.testing.assert_close(value, want, atol=1e-5, rtol=1e-5)
