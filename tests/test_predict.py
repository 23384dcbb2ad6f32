"""``rnnkit predict`` on a trained digits model: both formats, input order under batching, and bad inputs
answered in their place."""

from __future__ import annotations

import json

import pytest
import torch
from sklearn.datasets import load_digits

from cli_helpers import assert_one_line_error, make_text, rnnkit_here
from rnnkit.data.digits import DIGIT_PIXELS, digit_sequences
from rnnkit.tasks import restore_session


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("digits") / "run"
    result = rnnkit_here("train", "digits", "--hidden-size", "8", "--max-minutes", "0", "--max-steps", "2",
                    "--eval-every", "2", "--out", folder)
    assert result.returncode == 0, result.stderr
    return folder


def _row(image: int) -> str:
    return ",".join(f"{value:g}" for value in load_digits().data[image])


def _expected_probabilities(run, images: list[int]) -> torch.Tensor:
    """The trained model's class probabilities, computed here from the pixels without the predict command."""
    _, session = restore_session(str(run))
    pixels = torch.tensor(load_digits().data[images], dtype=torch.float32)
    with torch.no_grad():
        logits, _, _ = session.model.eval()(digit_sequences(pixels, permute=False))
    return torch.softmax(logits, dim=-1)


def test_text_prints_each_label_and_its_probability(run):
    result = rnnkit_here("predict", "--checkpoint", run, _row(0), _row(5))
    assert result.returncode == 0, result.stderr
    probabilities = _expected_probabilities(run, [0, 5])
    expected = [f"{int(row.argmax())} ({float(row.max()):.3f})" for row in probabilities]
    assert result.stdout.splitlines() == expected


def test_jsonl_in_input_order_whatever_the_batch_size(run, tmp_path):
    images = list(range(23))
    rows = tmp_path / "rows.csv"
    rows.write_text("".join(_row(image) + "\n" for image in images))
    outputs = [rnnkit_here("predict", "--checkpoint", run, "--file", rows, "--format", "jsonl", "--batch-size", size)
               for size in ("5", "100")]
    assert outputs[0].returncode == 0, outputs[0].stderr
    assert outputs[0].stdout == outputs[1].stdout
    objects = [json.loads(line) for line in outputs[0].stdout.splitlines()]
    probabilities = _expected_probabilities(run, images)
    assert [obj["label"] for obj in objects] == [str(int(row.argmax())) for row in probabilities]
    for obj, row in zip(objects, probabilities, strict=True):
        assert obj["probabilities"] == pytest.approx({str(digit): float(p) for digit, p in enumerate(row)}, abs=1e-6)


def test_a_bad_line_is_answered_in_its_place_and_the_command_fails(run, tmp_path):
    rows = tmp_path / "rows.csv"
    short = ",".join(["0"] * (DIGIT_PIXELS - 1))
    rows.write_text(f"{_row(0)}\n{short}\n{_row(1)}\n{_row(2).replace('0', 'x', 1)}\n")
    result = rnnkit_here("predict", "--checkpoint", run, "--file", rows, "--format", "jsonl")
    lines = result.stdout.splitlines()
    assert len(lines) == 4 and "label" in json.loads(lines[0]) and "label" in json.loads(lines[2])
    assert json.loads(lines[1]) == {"error": f"{rows} line 2: expected 64 comma-separated pixel values "
                                             "(an 8x8 image, row by row), got 63"}
    assert "not a number" in json.loads(lines[3])["error"]
    assert_one_line_error(result, "2 of 4 inputs could not be read", f"{rows} line 2")


@pytest.mark.parametrize("arguments, fragments", [
    ([], ("no inputs", "--file")),
    (["--format", "xml", "1"], ("--format", "text, jsonl")),
    (["--file", "missing.csv"], ("missing.csv", "does not exist", "--file")),
    (["--beam-size", "3", "1"], ("--beam-size", "has no such option", "--format")),
])
def test_bad_options_are_one_line_errors(run, arguments, fragments):
    assert_one_line_error(rnnkit_here("predict", "--checkpoint", run, *arguments), *fragments)


def test_predict_needs_a_task_that_predicts(tmp_path):
    charlm = tmp_path / "charlm"
    text = make_text(tmp_path / "text.txt")
    result = rnnkit_here("train", "--data", text, "--hidden-size", "8", "--embedding-size", "4", "--batch-size", "4",
                    "--bptt", "8", "--max-minutes", "0", "--max-steps", "1", "--eval-every", "1", "--out", charlm)
    assert result.returncode == 0, result.stderr
    assert_one_line_error(rnnkit_here("predict", "--checkpoint", charlm, "x"), "task 'charlm'", "no 'predict' command",
                          "generate, evaluate")
    assert_one_line_error(rnnkit_here("predict", "x"), "--checkpoint", "digits")
