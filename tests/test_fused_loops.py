"""The loop kernel's fused loops (steps compiled by torch.compile, the GPU path of the cells cuDNN lacks),
checked on CPU: against the readable reference, and for how they choose, fall back and say so."""

from __future__ import annotations

import os
import shutil

import pytest
import torch

import rnnkit
from rnnkit.kernels import compiled as compiled_module
from rnnkit.kernels.loop import fused
from rnnkit.kernels.loop import choose_loops

# Importing Dynamo touches torch.jit's deprecated script_method: torch's warning, not rnnkit's.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")


@pytest.fixture
def fused_on(monkeypatch):
    """The fused loops on, on CPU, with a fresh Dynamo cache and no failure remembered. The backend is
    "aot_eager": Dynamo's tracing and the chunked loops without Inductor's code generation (about 20 s
    from a cold cache), which ``test_fused_loops_compile_with_inductor`` covers once."""
    monkeypatch.setenv(fused.SWITCH, "1")
    monkeypatch.setattr(fused, "BACKEND", "aot_eager")
    monkeypatch.setattr(fused, "_failure", [])
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _run(model, kernel, x, lengths, seed=1):
    """Outputs, final state and the gradients of a loss that weighs every output differently."""
    model.kernel = kernel
    torch.manual_seed(seed)  # the same dropout masks for both kernels
    y, final = model(x, lengths=lengths)
    weights = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).reshape(y.shape)
    loss = (y * weights).sum() + sum((part * part).sum() for part in final)
    return [y, *final, *torch.autograd.grad(loss, [x, *model.parameters()])]


# (cell, options, bidirectional, training, lengths); 11 steps: a chunk of 8 and one padded with 5 dead steps.
# Few cases, because Dynamo takes seconds to trace each: the loop itself is checked on every cell in
# test_loop_kernel.py, and these check what compiling it adds (chunks, padding, masks, inner tensors).
CASES = {
    "janet": ("janet", {}, True, True, [11, 4, 9]),
    "indrnn-both-noises": ("indrnn", {"recurrent_dropout": 0.2, "weight_dropout": 0.2}, False, True, [11, 4, 9]),
    "lstm-layer-norm-zoneout-eval": ("lstm", {"layer_norm": True, "zoneout": 0.2}, False, False, None),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.filterwarnings("error::RuntimeWarning")  # a compile failure would fall back and still agree
def test_fused_loops_equal_reference_float64(case, fused_on):
    cell, options, bidirectional, training, lengths = CASES[case]
    torch.manual_seed(0)
    model = rnnkit.Recurrent(cell, 4, 5, bidirectional=bidirectional, dtype=torch.float64, **options).train(training)
    x = torch.randn(11, 3, 4, dtype=torch.float64, requires_grad=True)
    assert choose_loops(x, model.cells[0].zoneout, training).kind == "fused"
    lengths = None if lengths is None else torch.tensor(lengths)
    ours, reference = _run(model, "loop", x, lengths), _run(model, "reference", x, lengths)
    for a, b in zip(ours, reference):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)
    assert not fused._failure


def test_fused_loops_compile_with_inductor(monkeypatch):
    """The backend that runs on GPU, here writing C++: one float32 case, forward and backward."""
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        pytest.skip(f"no {compiler}: Inductor cannot compile on this CPU")
    monkeypatch.setenv(fused.SWITCH, "1")
    monkeypatch.setattr(fused, "_failure", [])
    torch._dynamo.reset()
    model = rnnkit.Recurrent("indrnn", 4, 6)
    x = torch.randn(11, 3, 4, requires_grad=True)
    lengths = torch.tensor([11, 5, 8])
    ours, reference = _run(model, "loop", x, lengths), _run(model, "reference", x, lengths)
    assert not fused._failure, fused._failure
    for a, b in zip(ours, reference):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    torch._dynamo.reset()


def test_a_failed_compile_warns_once_and_runs_the_pytorch_loops(fused_on, monkeypatch):
    def broken_backend(graph, example_inputs):
        raise RuntimeError("no C++ compiler found")

    monkeypatch.setattr(fused, "BACKEND", broken_backend)
    model = rnnkit.Recurrent("janet", 3, 4)
    x = torch.randn(10, 2, 3, requires_grad=True)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler found") as caught:
        ours = _run(model, "loop", x, None)
        _run(model, "loop", x, None)
    assert len([w for w in caught if "fused loops" in str(w.message)]) == 1
    for a, b in zip(ours, _run(model, "reference", x, None)):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
    assert "failed to compile (no C++ compiler found)" in fused.fused_runner_for(x, 0.0, True)[1]


def test_where_the_fused_loops_run(monkeypatch):
    x = torch.randn(5, 2, 3)
    monkeypatch.setattr(fused, "_failure", [])
    monkeypatch.delenv(fused.SWITCH, raising=False)  # auto: CUDA only; on CPU the C++ or PyTorch loops
    assert "run on CUDA" in fused.fused_runner_for(x, 0.0, True)[1]
    monkeypatch.setenv(compiled_module.SWITCH, "0")
    assert choose_loops(x, 0.0, True).kind == "python"
    monkeypatch.setenv(fused.SWITCH, "1")
    assert choose_loops(x, 0.0, True).kind == "fused"
    assert choose_loops(x, 0.2, False).kind == "fused"  # zoneout in eval is its expectation: no random draws
    assert "zoneout in training" in fused.fused_runner_for(x, 0.2, True)[1]
    monkeypatch.setenv(fused.SWITCH, "0")
    assert fused.fused_runner_for(x, 0.0, True)[1] == "RNNKIT_FUSED=0"
    report = str(rnnkit.explain(rnnkit.Recurrent("janet", 3, 4), x))
    assert "PyTorch loops (RNNKIT_COMPILED=0; RNNKIT_FUSED=0)" in report


def test_inside_torch_compile_the_pytorch_loops_are_traced(monkeypatch):
    monkeypatch.setenv(fused.SWITCH, "1")
    monkeypatch.setattr(fused.torch.compiler, "is_compiling", lambda: True)
    assert "already inside torch.compile" in fused.fused_runner_for(torch.randn(5, 2, 3), 0.0, True)[1]
