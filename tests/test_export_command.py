"""``rnnkit export``: a trained language model's generation step, and every other task's model whole, as ONNX
and torch.export files that run without rnnkit, at lengths and batch sizes the export never saw; bad input gets
one line and writes nothing."""

from __future__ import annotations

import pytest
import torch

from cli_helpers import TINY, assert_one_line_error, make_text, rnnkit_here, tree_digest
from rnnkit.export import GenerationStep, WholeSequences
from rnnkit.tasks import load_run
from test_every_task import batch_options, task_data

ONE_STEP = ["--max-minutes", "0", "--epochs", "0", "--max-steps", "1", "--eval-every", "1", "--precision", "fp32"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    text = make_text(folder / "text.txt")
    result = rnnkit_here("train", "--data", text, *TINY, "--num-layers", "2", "--max-steps", "3", "--out", folder / "run")
    assert result.returncode == 0, result.stderr
    return folder / "run"


def _prime_then_step(run_step, model, prompt: torch.Tensor):
    """Logits of a prompt (T=6, B=2) in one call, then of one more token: what generate does."""
    step = GenerationStep(model).eval()
    state = step.example(steps=1, batch=2)[1:]
    logits, *state = run_step(prompt, *state)
    following = torch.argmax(torch.as_tensor(logits[-1]), dim=-1).reshape(1, 2)
    next_logits, *_ = run_step(following, *state)
    return torch.as_tensor(logits), torch.as_tensor(next_logits)


def test_the_onnx_file_runs_in_onnx_runtime_as_the_model_runs_in_pytorch(run, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime", reason="the 'export' extra (onnx, onnxruntime) is not installed")
    out = tmp_path / "charlm.onnx"
    result = rnnkit_here("export", "--checkpoint", run, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "max |difference| from PyTorch" in result.stdout and result.stderr.strip() == ""
    model = load_run(str(run)).session.model.eval()
    session = onnxruntime.InferenceSession(str(out))
    names = [argument.name for argument in session.get_inputs()]

    def onnx_step(tokens, *state):
        return session.run(None, dict(zip(names, [tokens.numpy(), *(torch.as_tensor(s).numpy() for s in state)])))

    prompt = torch.randint(0, model.head.out_features, (6, 2))
    with torch.no_grad():
        want = _prime_then_step(GenerationStep(model), model, prompt)
    got = _prime_then_step(onnx_step, model, prompt)
    for value, expected in zip(got, want):
        torch.testing.assert_close(value, expected, atol=1e-5, rtol=1e-5)


def test_the_pt2_file_loads_with_torch_export_alone(run, tmp_path):
    out = tmp_path / "charlm.pt2"
    result = rnnkit_here("export", "--checkpoint", run, "--out", out, "--format", "pt2")
    assert result.returncode == 0, result.stderr
    loaded = torch.export.load(str(out)).module()
    model = load_run(str(run)).session.model.eval()
    prompt = torch.randint(0, model.head.out_features, (9, 2))
    with torch.no_grad():
        want = _prime_then_step(GenerationStep(model), model, prompt)
        got = _prime_then_step(loaded, model, prompt)
    for value, expected in zip(got, want):
        torch.testing.assert_close(value, expected, atol=1e-5, rtol=1e-5)


# Models whose inputs differ in kind: a task-fixed T (copy), extras (translate's targets, caption's images), a
# convolutional front (speech), several series (forecast); NER's characters are in the ONNX test below. Tracing
# costs 3 to 19 s a model here, so the other tasks' exports were run by hand (docs/command-line.md, "Export").
WHOLE = ["copy", "translate", "speech", "caption", "forecast"]


@pytest.mark.parametrize("task", WHOLE)
def test_a_task_s_model_exports_whole_and_runs_on_batches_it_never_saw(task, tmp_path):
    """The model's forward over a batch (inputs, lengths, extras), as ``rnnkit export`` traces it, run on two other
    batch sizes. The command's file writing and checking are tested above and below."""
    trained = rnnkit_here("train", task, *task_data(task, tmp_path / "data"), *ONE_STEP, *batch_options(task, 1),
                          "--out", tmp_path / "run")
    assert trained.returncode == 0, trained.stderr
    session = load_run(str(tmp_path / "run")).session
    whole = WholeSequences(session.model, session.inspection_batch(4), session.inspection_batch(4))
    program = torch.export.export(whole, whole.traced_inputs(), dynamic_shapes=whole.dynamic_shapes()).module()
    for size in (3, 2):
        other = WholeSequences(session.model, session.inspection_batch(size), session.inspection_batch(size))
        with torch.no_grad():
            want = torch.utils._pytree.tree_leaves(other(*other.traced_inputs()))
            got = torch.utils._pytree.tree_leaves(program(*other.traced_inputs()))
        for value, expected in zip(got, want, strict=True):
            torch.testing.assert_close(value, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("task", ["copy", "ner"])
def test_a_whole_model_runs_in_onnx_runtime_on_batches_it_never_saw(task, tmp_path):
    """ONNX through the command for two models of unlike inputs: a task-fixed T whose batch is a view of another
    tensor (copy), and lengths with a third dimension that varies, the longest word in characters (ner)."""
    onnxruntime = pytest.importorskip("onnxruntime", reason="the 'export' extra (onnx, onnxruntime) is not installed")
    trained = rnnkit_here("train", task, *task_data(task, tmp_path / "data"), *ONE_STEP, *batch_options(task, 1),
                          "--out", tmp_path / "run")
    assert trained.returncode == 0, trained.stderr
    result = rnnkit_here("export", "--checkpoint", tmp_path / "run", "--out", tmp_path / "model.onnx")
    assert result.returncode == 0, result.stderr
    session = load_run(str(tmp_path / "run")).session
    batch = session.inspection_batch(2)  # a third batch size
    whole = WholeSequences(session.model, batch, batch)
    with torch.no_grad():
        want = whole(*whole.traced_inputs())
    onnx = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"))
    feeds = {argument.name: value.numpy() for argument, value in zip(onnx.get_inputs(), whole.traced_inputs())}
    got = onnx.run(None, feeds)
    torch.testing.assert_close(torch.from_numpy(got[0]), want, atol=1e-5, rtol=1e-5)


def test_bad_input_gets_one_line_and_writes_nothing(run, tmp_path):
    before = tree_digest(tmp_path)
    assert_one_line_error(rnnkit_here("export", "--checkpoint", tmp_path / "none", "--out", tmp_path / "m.onnx"),
                          "does not exist")
    assert_one_line_error(rnnkit_here("export", "--checkpoint", run, "--out", tmp_path / "missing" / "m.onnx"),
                          "--out", "does not exist")
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "checkpoint.json").write_text("{not json")
    assert_one_line_error(rnnkit_here("export", "--checkpoint", tmp_path / "corrupt", "--out", tmp_path / "m.onnx"))
    assert tree_digest(tmp_path) != before  # the corrupt run folder itself
    assert not (tmp_path / "m.onnx").exists()
