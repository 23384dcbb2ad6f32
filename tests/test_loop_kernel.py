"""The loop kernel (PyTorch loops and compiled C++ loops) against the readable reference loop."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

import rnnkit
from rnnkit.kernels import KERNELS, plan_layers
from rnnkit.kernels import compiled as compiled_module
from rnnkit.kernels.loop import fused

CASES = {
    "rnn-tanh": ("rnn", {}),
    "rnn-relu": ("rnn", {"activation": "relu"}),
    "lstm": ("lstm", {}),
    "gru": ("gru", {}),
    "gru-reset-before": ("gru", {"reset_after": False}),
    "janet": ("janet", {}),
    "indrnn-relu": ("indrnn", {}),
    "indrnn-tanh": ("indrnn", {"activation": "tanh"}),
    "janet-no-bias": ("janet", {"bias": False}),
    "gru-no-bias": ("gru", {"bias": False}),
    "lstm-recurrent-dropout": ("lstm", {"recurrent_dropout": 0.3}),
    "gru-dropconnect": ("gru", {"weight_dropout": 0.3}),
    "indrnn-both-noises": ("indrnn", {"recurrent_dropout": 0.2, "weight_dropout": 0.2}),
    "lstm-zoneout": ("lstm", {"zoneout": 0.3}),
    "gru-reset-before-zoneout": ("gru", {"reset_after": False, "zoneout": 0.3, "recurrent_dropout": 0.2}),
    "janet-zoneout": ("janet", {"zoneout": 0.2}),
    "indrnn-layer-norm": ("indrnn", {"layer_norm": True}),
    "lstm-layer-norm": ("lstm", {"layer_norm": True}),
    "gru-layer-norm": ("gru", {"layer_norm": True}),
    "gru-reset-before-layer-norm": ("gru", {"layer_norm": True, "reset_after": False}),
    "gru-layer-norm-no-bias": ("gru", {"layer_norm": True, "bias": False}),
    "lstm-layer-norm-regularised": ("lstm", {"layer_norm": True, "zoneout": 0.2, "weight_dropout": 0.2}),
}
LOOPS = ["python", "compiled"]


@pytest.fixture(params=LOOPS)
def loops(request, monkeypatch):
    """Run each test on the PyTorch loops and on the compiled loops (built once per machine)."""
    monkeypatch.setenv(compiled_module.SWITCH, "0" if request.param == "python" else "1")
    monkeypatch.setenv(fused.SWITCH, "0")  # the fused loops have their own tests (test_fused_loops.py)
    if request.param == "compiled" and compiled_module.load_compiled_loops() is None:
        pytest.skip("the compiled loops cannot be built here")
    return request.param


def _perturb_layer_norm(module: torch.nn.Module) -> None:
    """Gains and shifts away from their initial 1 and 0, so that a step that ignores one fails."""
    torch.manual_seed(3)
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if name.split(".")[-1].startswith("ln_"):
                parameter.uniform_(0.5, 1.5) if name.endswith("weight") else parameter.uniform_(-0.5, 0.5)


def _forced(model: rnnkit.Recurrent, kernel: str) -> rnnkit.Recurrent:
    model.kernel = kernel
    return model


def _run(model, kernel, x, state, lengths, seed):
    """Outputs, final state and the gradients of a loss that weighs every output differently."""
    _forced(model, kernel)
    torch.manual_seed(seed)  # same random draws (dropout masks, zoneout) for both kernels
    y, final = model(x, state, lengths=lengths)
    weights = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).reshape(y.shape)
    loss = (y * weights).sum() + sum((part * part).sum() for part in final)
    grads = torch.autograd.grad(loss, [x, *state, *model.parameters()])
    return [y, *final, *grads]


def _assert_close(ours, reference, tolerance):
    for a, b in zip(ours, reference):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, atol=tolerance, rtol=tolerance)


@pytest.mark.parametrize("case", list(CASES))
# Two of the four combinations, to keep the grid's time down: the float32 and inference tests below run
# bidirectional layers with lengths, the third.
@pytest.mark.parametrize("bidirectional, lengths", [(False, [6, 2, 4]), (True, None)])
def test_loop_equals_reference_float64(case, bidirectional, lengths, loops):
    cell, options = CASES[case]
    for training in (True, False):
        torch.manual_seed(0)
        model = rnnkit.Recurrent(cell, 4, 5, num_layers=2, bidirectional=bidirectional, dtype=torch.float64, **options)
        _perturb_layer_norm(model)
        model.train(training)
        x = torch.randn(6, 3, 4, dtype=torch.float64, requires_grad=True)
        rows = 2 * model.num_directions
        state = tuple(torch.randn(rows, 3, size, dtype=torch.float64, requires_grad=True) for size in model.cells[0].state_sizes())
        lens = None if lengths is None else torch.tensor(lengths)
        reference = _run(model, "reference", x, state, lens, seed=1)
        _assert_close(_run(model, "loop", x, state, lens, seed=1), reference, 1e-10)


@pytest.mark.parametrize(
    "case", ["rnn-tanh", "lstm", "gru", "gru-reset-before", "janet", "indrnn-relu", "lstm-zoneout", "lstm-layer-norm",
             "gru-reset-before-layer-norm"]
)
def test_loop_equals_reference_float32(case, loops):
    cell, options = CASES[case]
    torch.manual_seed(0)
    model = rnnkit.Recurrent(cell, 16, 32, num_layers=2, bidirectional=True, **options)
    _perturb_layer_norm(model)
    x = torch.randn(20, 4, 16, requires_grad=True)
    # A random initial state: from h = 0, layer norm divides W_hh h = 0 by √ε and float32 rounding
    # in the gradients is amplified 300-fold, in the reference as much as here.
    state = tuple(torch.randn(4, 4, size).requires_grad_() for size in model.cells[0].state_sizes())
    lens = torch.tensor([20, 7, 13, 1])
    ours, reference = _run(model, "loop", x, state, lens, 2), _run(model, "reference", x, state, lens, 2)
    if options.get("layer_norm"):
        # Layer norm's gradients reach 100s here, and float32 rounding in them (the reference's own error
        # against float64 is about 1e-6 of that) is spread over small entries: compare relative to each
        # tensor's largest entry. Exactness is checked in float64 above.
        for a, b in zip(ours, reference):
            torch.testing.assert_close(a, b, atol=1e-5 * max(1.0, float(b.detach().abs().max())), rtol=1e-5)
    else:
        _assert_close(ours, reference, 1e-5)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_loop_inference_equals_reference(case, dtype, loops):
    """Without gradients the compiled loops keep only the last step: outputs and final state still agree."""
    cell, options = CASES[case]
    torch.manual_seed(0)
    model = rnnkit.Recurrent(cell, 4, 5, num_layers=2, bidirectional=True, dtype=dtype, **options).eval()
    _perturb_layer_norm(model)
    x = torch.randn(7, 3, 4, dtype=dtype)
    lengths = torch.tensor([7, 2, 5])
    with torch.no_grad():
        expected = _forced(model, "reference")(x, lengths=lengths)
        got = _forced(model, "loop")(x, lengths=lengths)
    tolerance = 1e-5 if dtype == torch.float32 else 1e-10
    _assert_close([got[0], *got[1]], [expected[0], *expected[1]], tolerance)


@pytest.mark.parametrize(
    "case", ["rnn-relu", "lstm", "gru", "gru-reset-before", "janet", "indrnn-tanh", "janet-zoneout", "lstm-layer-norm",
             "gru-layer-norm", "gru-reset-before-layer-norm"]
)
def test_loop_gradcheck(case, loops):
    cell_type, options = CASES[case]
    torch.manual_seed(0)
    cell = rnnkit.get_cell_class(cell_type)(3, 4, dtype=torch.float64, **options)
    _perturb_layer_norm(cell)
    cell.eval()  # deterministic: zoneout uses its expectation
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    state = tuple(torch.randn(2, size, dtype=torch.float64, requires_grad=True) for size in cell.state_sizes())
    lengths = torch.tensor([5, 3])
    names = [name for name, _ in cell.named_parameters()]

    class LoopLayer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = cell

        def forward(self, x, *state):
            output, _, finals = KERNELS["loop"].run_directions([self.cell], x, [state], lengths)
            return (output, *finals[0])

    layer = LoopLayer()

    def loop(x, *state_and_weights):
        weights = dict(zip(("cell." + name for name in names), state_and_weights[len(state):]))
        return torch.func.functional_call(layer, weights, (x, *state_and_weights[: len(state)]))

    weights = [parameter.detach().clone().requires_grad_() for parameter in cell.parameters()]
    assert torch.autograd.gradcheck(loop, (x, *state, *weights))


def test_kernel_choice_per_cell():
    def kernel(cell, **options):
        return plan_layers(rnnkit.Recurrent(cell, 3, 4, **options).layers, None)[0].kernel

    assert kernel("lstm") == kernel("gru") == kernel("rnn") == "native"
    assert kernel("janet") == kernel("indrnn") == kernel("gru", reset_after=False) == "loop"
    assert kernel("lstm", recurrent_dropout=0.1) == kernel("gru", zoneout=0.1) == "loop"
    assert kernel("indrnn", layer_norm=True) == kernel("lstm", layer_norm=True) == kernel("gru", layer_norm=True) == "loop"
    assert kernel("lstm", activation="relu") == kernel("lstm", proj_size=2, layer_norm=True) == "reference"


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_rnn_and_gru_run_on_the_compiled_loops_on_cpu(cell, monkeypatch):
    model = rnnkit.Recurrent(cell, 3, 4)
    x = torch.randn(5, 2, 3)
    monkeypatch.setenv(compiled_module.SWITCH, "1")
    if compiled_module.load_compiled_loops() is None:
        pytest.skip("the compiled loops cannot be built here")
    assert plan_layers(model.layers, None)[0].kernel == "native"  # what the cells alone decide; the input decides the rest
    assert model.kernel_plan(x)[0].kernel == "loop"
    assert "faster than torch.nn" in model.kernel_plan(x)[0].reason
    with torch.no_grad():
        assert model.kernel_plan(x)[0].kernel == "loop"
    monkeypatch.setenv(compiled_module.SWITCH, "0")  # the PyTorch loops are not faster than torch.nn
    assert model.kernel_plan(x)[0].kernel == "native"


def test_the_lstm_stays_on_the_fused_kernel_but_for_single_steps():
    model = rnnkit.Recurrent("lstm", 3, 4, num_layers=2, fast_path="required")
    assert model.kernel_plan(torch.randn(5, 2, 3, requires_grad=True))[0].kernel == "native"
    assert model.kernel_plan(torch.randn(5, 2, 3))[0].kernel == "native"
    step = torch.randn(1, 2, 3)
    plan = model.kernel_plan(step)  # one step of generation: the cell's own step, which "required" accepts
    assert [choice.kernel for choice in plan] == ["reference", "reference"]
    assert "oneDNN" in plan[0].reason
    state = (torch.randn(2, 2, 4), torch.randn(2, 2, 4))
    native = rnnkit.Recurrent("lstm", 3, 4, num_layers=2)
    native.load_state_dict(model.state_dict())
    _forced(native, "native")  # the same step on torch's kernel
    for got, want in zip([model(step, state)[0], *model(step, state)[1]], [native(step, state)[0], *native(step, state)[1]]):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_rnn_and_gru_on_torch_kernel_equal_reference(cell, monkeypatch):
    monkeypatch.setenv(compiled_module.SWITCH, "0")  # keeps torch's kernel, as on a GPU
    reference = rnnkit.Recurrent(cell, 3, 4, fast_path="off", bidirectional=True)
    fast = rnnkit.Recurrent(cell, 3, 4, bidirectional=True)
    fast.load_state_dict(reference.state_dict())
    x = torch.randn(6, 2, 3, requires_grad=True)
    assert fast.kernel_plan(x)[0].kernel == "native"
    expected = torch.autograd.grad(reference(x, lengths=[6, 3])[0].square().sum(), [x, *reference.parameters()])
    got = torch.autograd.grad(fast(x, lengths=[6, 3])[0].square().sum(), [x, *fast.parameters()])
    for value, want in zip(got, expected):
        torch.testing.assert_close(value, want, atol=1e-5, rtol=1e-5)


def test_explain_reports_what_the_input_decides(monkeypatch):
    model = rnnkit.Recurrent("gru", 3, 4)
    monkeypatch.setenv(compiled_module.SWITCH, "0")
    assert rnnkit.explain(model, torch.randn(5, 2, 3))[0].kernel == "native"
    monkeypatch.setenv(compiled_module.SWITCH, "1")
    if compiled_module.load_compiled_loops() is not None:
        assert rnnkit.explain(model.eval(), torch.randn(5, 2, 3))[0].kernel == "loop"


def test_required_fast_path_accepts_the_loop_kernel_and_names_what_is_missing():
    rnnkit.Recurrent("janet", 3, 4, fast_path="required")
    rnnkit.Recurrent("gru", 3, 4, layer_norm=True, fast_path="required")
    with pytest.raises(ValueError, match="no loop step"):
        rnnkit.Recurrent("gru", 3, 4, activation="relu", fast_path="required")


def test_explain_reports_each_layer(monkeypatch):
    monkeypatch.setenv(compiled_module.SWITCH, "0")
    model = rnnkit.Recurrent("janet", 3, 4, num_layers=2)
    report = rnnkit.explain(model, torch.randn(5, 2, 3))
    assert [(line.layer, line.kernel) for line in report] == [(0, "loop"), (1, "loop")]
    assert "PyTorch loops (RNNKIT_COMPILED=0;" in str(report)
    lines = str(rnnkit.explain(rnnkit.Recurrent("lstm", 3, 4, activation="relu"), torch.randn(5, 2, 3))).splitlines()
    assert len(lines) == 1 and "reference" in lines[0] and "no loop step" in lines[0]


def test_explain_finds_layers_inside_a_model():
    model = torch.nn.Sequential(rnnkit.Recurrent("lstm", 3, 4))
    report = rnnkit.explain(model, torch.randn(5, 2, 3))
    assert report[0].module == "0" and report[0].kernel == "native"


def test_the_compiled_loops_build_wherever_a_compiler_and_ninja_are_present(monkeypatch):
    """The compiled-loop tests skip where the loops cannot be built; this keeps a broken source from
    passing as a skip on a machine that can build them (as CI's can)."""
    from torch.utils import cpp_extension

    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None or not cpp_extension.is_ninja_available():
        pytest.skip(f"no {compiler} or no ninja: the PyTorch loops run instead")
    monkeypatch.setenv(compiled_module.SWITCH, "1")
    assert compiled_module.load_compiled_loops() is not None, "loops.cpp failed to build (see the warning)"


def test_failed_build_warns_once_and_falls_back(monkeypatch):
    from torch.utils import cpp_extension

    def broken(*args, **kwargs):
        raise RuntimeError("Error building extension: no compiler")

    monkeypatch.setenv(compiled_module.SWITCH, "1")
    monkeypatch.setattr(cpp_extension, "load", broken)
    compiled_module._build.cache_clear()
    try:
        model = rnnkit.Recurrent("indrnn", 3, 4)
        with pytest.warns(RuntimeWarning, match="no compiler"):
            expected = _forced(model, "reference")(torch.ones(4, 1, 3))[0]
            got = _forced(model, "loop")(torch.ones(4, 1, 3))[0]
        torch.testing.assert_close(got, expected)
    finally:
        compiled_module._build.cache_clear()


def test_a_build_killed_holding_torch_s_lock_holds_up_no_later_build(monkeypatch, tmp_path):
    """torch's build lock is a file whose existence is the lock, taken by every load; a process killed while it holds
    it (kill -9, a timeout) leaves it behind. The next load must go ahead, not wait for it for ever."""
    from torch.utils import cpp_extension
    from torch.utils.file_baton import FileBaton

    folders = []

    def load(name, build_directory, **options):  # torch's protocol: build under the lock, or wait for whoever has it
        baton = FileBaton(os.path.join(build_directory, "lock"))
        assert baton.try_acquire(), "waits for ever for a lock that nobody holds"
        baton.release()
        folders.append(Path(build_directory))

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    monkeypatch.setenv(compiled_module.SWITCH, "1")
    monkeypatch.setattr(cpp_extension, "load", load)
    try:
        for _ in range(2):
            compiled_module._build.cache_clear()
            assert compiled_module.load_compiled_loops() is not None
            (folders[-1] / "lock").touch()  # what a load killed half-way leaves
        assert len(folders) == 2 and folders[0] == folders[1] and folders[0].parent == tmp_path
    finally:
        compiled_module._build.cache_clear()
