"""``torch.compile`` and ``torch.export`` of rnnkit layers: they compile, and compute what eager computes.

Under ``torch.compile`` a layer with a fast kernel runs it eagerly between two compiled graphs
(as Dynamo runs torch.nn's recurrent layers); with ``kernel="reference"``, and always under
``torch.export``, the reference loop is traced into the graph (``rnnkit.kernels.plan.compiled_around``).
Most cases compile with the "aot_eager" backend, which runs Dynamo's tracing and AOTAutograd's
joint graph (where fake tensors fail on kernels that cannot be traced) without Inductor's code
generation; two cases run Inductor, the default. A counting backend checks that a graph was
really compiled: past Dynamo's recompile limit a model would silently run eagerly and compare
equal to itself.
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
    output, state = model(x) if lengths is None else model(x, lengths=lengths)
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
def test_a_traced_layer_trains_as_the_eager_one(cell, bidirectional, with_lengths):
    torch.manual_seed(0)
    model = rnnkit.Recurrent(cell, I, H, bidirectional=bidirectional, kernel="reference")
    # Without lengths the whole layer is one graph (as export needs); lengths break the graph where
    # their values decide how many steps run, as packing does for torch.nn.
    options = {} if with_lengths else {"fullgraph": True}
    _compare(model, "aot_eager", LENGTHS if with_lengths else None, training=True, **options)


@pytest.mark.parametrize("cell", CELLS)
def test_a_traced_layer_infers_as_the_eager_one(cell):
    torch.manual_seed(0)
    model = rnnkit.Recurrent(cell, I, H, num_layers=2, bidirectional=True, kernel="reference")
    _compare(model, "aot_eager", LENGTHS, training=False)


@pytest.mark.parametrize("cell,training", [(cell, training) for cell in CELLS for training in (True, False)])
def test_a_compiled_layer_runs_its_fast_kernel_between_graphs(cell, training):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(I, I), rnnkit.Recurrent(cell, I, H, num_layers=2, bidirectional=True))
    _compare(model, "aot_eager", None, training=training)
    eager_kernels = [line.kernel for line in rnnkit.explain(model, torch.randn(T, B, I))]
    compiled_kernels = [line.kernel for line in rnnkit.explain(torch.compile(model, backend="aot_eager"), torch.randn(T, B, I))]
    assert compiled_kernels == eager_kernels and "reference" not in compiled_kernels


@pytest.mark.parametrize("kernel", ["auto", "reference"])
def test_the_drop_in_lstm_compiles_with_inductor(kernel):
    torch.manual_seed(0)
    _compare(rnnkit.LSTM(I, H, num_layers=2, kernel=kernel), "inductor", None, training=True)


def test_explain_says_what_a_compiled_model_ran():
    x = torch.randn(T, B, I)
    (line,) = rnnkit.explain(torch.compile(rnnkit.Recurrent("lstm", I, H), backend="aot_eager"), x)
    assert line.kernel == "native"  # run eagerly, between graphs
    torch._dynamo.reset()
    (line,) = rnnkit.explain(torch.compile(rnnkit.Recurrent("lstm", I, H, kernel="reference"), backend="aot_eager"), x)
    assert line.kernel == "reference"


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
