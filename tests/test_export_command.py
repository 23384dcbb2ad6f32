"""``rnnkit export``: a trained language model's generation step as ONNX and torch.export files that run
without rnnkit, at lengths and batch sizes the export never saw; bad input gets one line and writes nothing."""

from __future__ import annotations

import pytest
import torch

from cli_helpers import TINY, assert_one_line_error, make_text, rnnkit, rnnkit_here, tree_digest
from rnnkit.export import GenerationStep, WholeSequences
from rnnkit.tasks import load_run
from test_every_task import RUN, batch_options, task_data


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    text = make_text(folder / "text.txt")
    result = rnnkit("train", "--data", text, *TINY, "--num-layers", "2", "--max-steps", "3", "--out", folder / "run")
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
    result = rnnkit("export", "--checkpoint", run, "--out", out)
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


def test_a_classifier_is_exported_whole_and_runs_on_batches_it_never_saw(tmp_path):
    """Any task's model other than a language model: its forward over a batch (inputs, lengths, extras)."""
    onnxruntime = pytest.importorskip("onnxruntime", reason="the 'export' extra (onnx, onnxruntime) is not installed")
    trained = rnnkit_here("train", "sst", *task_data("sst", tmp_path / "data"), *RUN, *batch_options("sst", 1),
                          "--out", tmp_path / "sst")
    assert trained.returncode == 0, trained.stderr
    result = rnnkit_here("export", "--checkpoint", tmp_path / "sst", "--out", tmp_path / "sst.onnx")
    assert result.returncode == 0, result.stderr
    session = load_run(str(tmp_path / "sst")).session
    batch = session.inspection_batch(2)  # a third batch size
    whole = WholeSequences(session.model, batch, batch)
    with torch.no_grad():
        want = whole(*whole.traced_inputs())
    onnx = onnxruntime.InferenceSession(str(tmp_path / "sst.onnx"))
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
