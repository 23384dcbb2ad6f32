"""``torch.compile`` and ``torch.export`` of rnnkit layers: one graph, and the same results as eager.

Under ``torch.compile`` a layer on a fast kernel is one node of the graph, a registered custom
operator (``rnnkit.kernels.graph_op``), so ``fullgraph=True`` holds for every cell, with lengths,
in training and inference; with ``kernel="reference"`` the reference loop is traced instead.
Under ``torch.export`` the scan kernel keeps T and B symbolic. Most cases compile with the
"aot_eager" backend, which runs Dynamo's tracing and AOTAutograd's joint graph (where fake
tensors fail on anything that cannot be traced) without Inductor's code generation; two cases
run Inductor, the default. A counting backend checks that exactly one graph was compiled: past
Dynamo's recompile limit a model would silently run eagerly and compare equal to itself.
"""

from __future__ import annotations

import pytest
import torch
from torch._dynamo.testing import CompileCounterWithBackend
from torch.export import Dim
from torch.nn.utils import prune

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
    state = state if isinstance(state, tuple) else (state,)
    results = [output, *state]
    if training:
        weights = torch.linspace(-1, 1, output.numel()).reshape(output.shape)
        loss = (output * weights).sum() + sum(part.square().sum() for part in state)
        results += torch.autograd.grad(loss, [x, *[p for p in model.parameters()]])
    return results


def _compare(model, backend, lengths, training: bool, graphs: int | None = None, **compile_options):
    torch.manual_seed(1)
    x = torch.randn(T, B, I, requires_grad=training)
    model.train(training)
    counter = CompileCounterWithBackend(backend)
    compiled = torch.compile(model, backend=counter, **compile_options)
    with torch.set_grad_enabled(training):
        got = _results(compiled, x, lengths, training)
        expected = _results(model, x, lengths, training)
    assert counter.frame_count >= 1, "nothing was compiled"
    if graphs is not None:
        assert counter.frame_count == graphs
    for value, want in zip(got, expected, strict=True):
        torch.testing.assert_close(value, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell,training", [(cell, training) for cell in CELLS for training in (True, False)])
def test_a_full_graph_runs_the_fast_kernels_inside_it(cell, training):
    torch.manual_seed(0)
    model = rnnkit.Recurrent(cell, I, H, num_layers=2, bidirectional=True)
    _compare(model, "aot_eager", LENGTHS, training=training, graphs=1, fullgraph=True)
    eager_kernels = [line.kernel for line in rnnkit.explain(model, torch.randn(T, B, I))]
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    assert [line.kernel for line in rnnkit.explain(compiled, torch.randn(T, B, I))] == eager_kernels
    assert "reference" not in eager_kernels


def test_a_compiled_layer_s_gradient_repeats_its_forward_s_random_draws():
    """The operator's gradient runs the layer again: with recurrent dropout and zoneout it must draw what the
    forward drew. Checked against the compiled forward itself, by a finite difference along one direction."""
    torch.manual_seed(0)
    model = rnnkit.Recurrent("janet", I, H, recurrent_dropout=0.3, zoneout=0.2, dtype=torch.float64)
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    direction = torch.randn_like(x)
    weights = torch.randn(T, B, H, dtype=torch.float64)

    def loss(inputs):
        torch.manual_seed(7)  # the same draws at every call
        output = compiled(inputs)[0]
        torch.rand(100)  # the generator moves on before the gradient runs the layer again
        return (output * weights).sum()

    (gradient,) = torch.autograd.grad(loss(x), x)
    with torch.no_grad():
        slope = (loss(x + 1e-6 * direction) - loss(x - 1e-6 * direction)) / 2e-6
    torch.testing.assert_close((gradient * direction).sum(), slope, atol=1e-6, rtol=1e-6)


def test_a_forward_without_backward_leaves_no_recorded_graph_behind():
    import gc

    from rnnkit.kernels import graph_op

    compiled = torch.compile(rnnkit.Recurrent("gru", I, H, num_layers=2), backend="aot_eager", fullgraph=True)
    x = torch.randn(T, B, I, requires_grad=True)
    outputs = [compiled(x)[0] for _ in range(3)]  # in training, as validation without no_grad would
    assert len(graph_op._TAPES) == 6  # two layers, three calls
    outputs[0].sum().backward()
    assert len(graph_op._TAPES) == 4  # taken by the gradient
    del outputs
    gc.collect()
    assert not graph_op._TAPES  # dropped with the outputs


@pytest.mark.parametrize("cell", CELLS)
def test_a_traced_reference_layer_trains_as_the_eager_one(cell):
    torch.manual_seed(0)
    model = rnnkit.Recurrent(cell, I, H, bidirectional=True, kernel="reference")
    _compare(model, "aot_eager", None, training=True, graphs=1, fullgraph=True)


def test_a_traced_reference_layer_with_lengths_infers_as_the_eager_one():
    # the reference loop stops at the longest length, a value: lengths break its graph, as packing does torch.nn's
    torch.manual_seed(0)
    _compare(rnnkit.Recurrent("lstm", I, H, num_layers=2, kernel="reference"), "aot_eager", LENGTHS, training=False)


@pytest.mark.parametrize("kernel", ["auto", "reference"])
def test_the_drop_in_lstm_compiles_with_inductor(kernel):
    torch.manual_seed(0)
    _compare(rnnkit.LSTM(I, H, num_layers=2, kernel=kernel), "inductor", None, training=True, graphs=1, fullgraph=True)


def test_a_pruned_drop_in_compiles_to_one_graph_computing_with_the_pruned_weight():
    torch.manual_seed(0)
    model = rnnkit.GRU(I, H, num_layers=2)
    prune.l1_unstructured(model, "weight_hh_l0", amount=0.5)
    _compare(model, "aot_eager", None, training=True, graphs=1, fullgraph=True)


def test_explain_says_what_a_compiled_model_ran():
    x = torch.randn(T, B, I)
    (line,) = rnnkit.explain(torch.compile(rnnkit.Recurrent("lstm", I, H), backend="aot_eager"), x)
    assert line.kernel == "native"  # one node of the graph, run eagerly
    torch._dynamo.reset()
    (line,) = rnnkit.explain(torch.compile(rnnkit.Recurrent("lstm", I, H, kernel="reference"), backend="aot_eager"), x)
    assert line.kernel == "reference"


def _export(model, with_lengths: bool):
    """Exported with T and B symbolic (and lengths, of size B)."""
    x = torch.randn(T, B, I)
    dims = {"input": {0: Dim("T", min=2, max=512), 1: Dim("B", min=2, max=512)}}
    if not with_lengths:
        return torch.export.export(model, (x,), dynamic_shapes=dims)
    dims["lengths"] = {0: dims["input"][1]}
    return torch.export.export(model, (x,), {"lengths": torch.tensor(LENGTHS)}, dynamic_shapes=dims)


@pytest.mark.parametrize("cell,bidirectional,with_lengths", [
    ("rnn", False, False), ("lstm", True, True), ("gru", False, False), ("janet", False, True), ("indrnn", False, False),
])
def test_an_exported_layer_runs_lengths_and_batch_sizes_it_never_saw(cell, bidirectional, with_lengths):
    torch.manual_seed(0)
    model = rnnkit.Recurrent(cell, I, H, bidirectional=bidirectional).eval()
    exported = _export(model, with_lengths)
    for max_time, lengths in ((9, [9, 1, 3, 7]), (2, [2, 1])):
        x = torch.randn(max_time, len(lengths), I)
        kwargs = {"lengths": torch.tensor(lengths)} if with_lengths else {}
        got_output, got_state = exported.module()(x, **kwargs)
        want_output, want_state = model(x, **kwargs)
        for value, want in zip([got_output, *got_state], [want_output, *want_state]):
            torch.testing.assert_close(value, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell,bidirectional,with_lengths", [("lstm", False, False), ("janet", True, True)])
def test_onnx_runtime_runs_an_exported_layer_at_lengths_never_seen(cell, bidirectional, with_lengths, tmp_path):
    onnx = pytest.importorskip("onnx", reason="the 'export' extra (onnx, onnxruntime, onnxscript) is not installed")
    onnxruntime = pytest.importorskip("onnxruntime", reason="the 'export' extra is not installed")
    torch.manual_seed(0)
    model = rnnkit.Recurrent(cell, I, H, bidirectional=bidirectional).eval()
    dims = {"input": {0: Dim("T", min=2, max=512), 1: Dim("B", min=2, max=512)}}
    kwargs = {}
    if with_lengths:
        dims["lengths"] = {0: dims["input"][1]}
        kwargs["lengths"] = torch.tensor(LENGTHS)
    program = torch.onnx.export(model, (torch.randn(T, B, I),), kwargs=kwargs, dynamo=True, dynamic_shapes=dims)
    program.save(str(tmp_path / "layer.onnx"))
    onnx.checker.check_model(str(tmp_path / "layer.onnx"))
    session = onnxruntime.InferenceSession(str(tmp_path / "layer.onnx"))
    x, lengths = torch.randn(11, 4, I), torch.tensor([11, 2, 7, 1])
    feeds = [x, lengths] if with_lengths else [x]
    got = session.run(None, {argument.name: value.numpy() for argument, value in zip(session.get_inputs(), feeds)})
    output, state = model(x, lengths=lengths if with_lengths else None)
    for value, want in zip(got, [output, *state], strict=True):
        torch.testing.assert_close(torch.from_numpy(value), want.detach(), atol=1e-5, rtol=1e-5)


def test_exporting_a_packed_sequence_says_what_to_do_instead():
    class Packs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = rnnkit.LSTM(I, H)

        def forward(self, x, lengths):
            return self.lstm(torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False))[0].data

    with pytest.raises(ValueError, match="LSTM: a PackedSequence input cannot be exported .* lengths= instead"):
        torch.export.export(Packs(), (torch.randn(T, B, I), torch.tensor(LENGTHS)))
