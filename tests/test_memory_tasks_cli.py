"""The memory tasks end to end through ``rnnkit train``: summaries with test metric and baseline,
resumption, evaluation, and one-line errors."""

from __future__ import annotations

import json

import pytest
import torch
from sklearn.datasets import load_digits

from cli_helpers import assert_one_line_error, rnnkit_here, weights
from rnnkit.data.digits import stratified_split

TINY = ["--hidden-size", "8", "--batch-size", "8", "--max-minutes", "0", "--eval-every", "3",
        "--validation-size", "16", "--test-size", "16"]


@pytest.mark.parametrize("task, options, metric", [
    ("adding", ["--seq-len", "12"], "solved_fraction"),
    ("copy", ["--seq-len", "5"], "symbol_accuracy"),
])
def test_a_synthetic_task_writes_its_test_metric_and_baseline(tmp_path, task, options, metric):
    result = rnnkit_here("train", task, *TINY, *options, "--max-steps", "4", "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["task"] == task and summary["steps"] == 4
    assert set(summary["test"]) >= {"loss", metric} and summary["baseline"]["loss"] > 0
    assert "test" in result.stdout.splitlines()[-1]


def test_digits_trains_with_a_permutation_and_its_accuracy_counts_its_predictions(tmp_path):
    run = tmp_path / "run"
    result = rnnkit_here("train", "digits", "--permute", "--hidden-size", "32", "--lr", "0.01", "--max-minutes", "0",
                    "--max-steps", "150", "--eval-every", "150", "--out", run)
    assert result.returncode == 0, result.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert 0.09 < summary["baseline"]["accuracy"] < 0.12
    # Trained long enough to tell digits apart, so that a prediction that read the pixels in the wrong
    # order (or a wrong count) would not match by chance.
    assert summary["test"]["accuracy"] > 2 * summary["baseline"]["accuracy"]
    # The test images as a user has them (rows of load_digits().data, pixels in reading order), predicted by
    # 'rnnkit predict', which must apply the run's permutation: the correct ones give the reported accuracy.
    digits = load_digits()
    test_rows = stratified_split(torch.as_tensor(digits.target), seed=0)["test"]
    rows = tmp_path / "test.csv"
    rows.write_text("".join(",".join(f"{v:g}" for v in digits.data[row]) + "\n" for row in test_rows.tolist()))
    predicted = rnnkit_here("predict", "--checkpoint", run, "--file", rows, "--format", "jsonl", "--batch-size", "100")
    assert predicted.returncode == 0, predicted.stderr
    labels = [json.loads(line)["label"] for line in predicted.stdout.splitlines()]
    correct = sum(label == str(digits.target[row]) for label, row in zip(labels, test_rows.tolist(), strict=True))
    # The summary's accuracy is a float32 mean; one prediction more or less would move it by 1/360.
    assert correct / len(test_rows) == pytest.approx(summary["test"]["accuracy"], abs=1e-6)


def test_a_resumed_run_draws_the_same_batches(tmp_path):
    common = ["adding", *TINY, "--seq-len", "10", "--schedule", "constant"]
    trained = rnnkit_here("train", *common, "--max-steps", "6", "--out", tmp_path / "straight")
    assert trained.returncode == 0, trained.stderr
    trained = rnnkit_here("train", *common, "--max-steps", "3", "--out", tmp_path / "split")
    assert trained.returncode == 0, trained.stderr
    result = rnnkit_here("train", *common, "--max-steps", "6", "--resume", "--out", tmp_path / "split")
    assert result.returncode == 0, result.stderr
    straight, split = weights(tmp_path / "straight"), weights(tmp_path / "split")
    assert all(torch.equal(straight[name], split[name]) for name in straight)


def test_evaluate_scores_the_fixed_test_set(tmp_path):
    run = tmp_path / "run"
    trained = rnnkit_here("train", "adding", *TINY, "--seq-len", "10", "--max-steps", "2", "--out", run)
    assert trained.returncode == 0, trained.stderr
    result = rnnkit_here("evaluate", "--checkpoint", run)
    assert result.returncode == 0, result.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert f"{summary['test']['loss']:.5f}" in result.stdout
    assert_one_line_error(rnnkit_here("evaluate", "--checkpoint", run, "--data", "x.txt"), "--data", "fixed test set",
                          "has no such option")
    assert_one_line_error(rnnkit_here("generate", "--checkpoint", run), "task 'adding'", "has no 'generate' command",
                          "support: evaluate")


@pytest.mark.parametrize("arguments, fragments", [
    (["adding", "--seq-len", "1"], ("--seq-len", "at least 2")),
    (["copy", "--seq-len", "0"], ("--seq-len", "at least 1")),
    (["adding", "--cell", "transformer"], ("--cell", "transformer")),
    (["adding", "--cell", "janet", "--activation", "relu"], ("--activation", "janet cell takes no activation")),
    (["copy", "--test-size", "0"], ("--test-size",)),
    (["digits", "--batch-size", "5000"], ("--batch-size", "1257")),
])
def test_bad_task_options_are_one_line_errors(tmp_path, arguments, fragments):
    out = tmp_path / "run"
    assert_one_line_error(rnnkit_here("train", *arguments, "--max-steps", "1", "--out", out), *fragments)
    assert not out.exists()
