"""The memory tasks end to end through ``rnnkit train``: summaries with test metric and baseline,
resumption, evaluation, and one-line errors."""

from __future__ import annotations

import json

import pytest
import torch

from cli_helpers import assert_one_line_error, rnnkit, rnnkit_here, weights

TINY = ["--hidden-size", "8", "--batch-size", "8", "--max-minutes", "0", "--eval-every", "3",
        "--validation-size", "16", "--test-size", "16"]


@pytest.mark.parametrize("task, options, metric", [
    ("adding", ["--seq-len", "12"], "solved_fraction"),
    ("copy", ["--seq-len", "5"], "symbol_accuracy"),
])
def test_a_synthetic_task_writes_its_test_metric_and_baseline(tmp_path, task, options, metric):
    result = rnnkit("train", task, *TINY, *options, "--max-steps", "4", "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["task"] == task and summary["steps"] == 4
    assert set(summary["test"]) >= {"loss", metric} and summary["baseline"]["loss"] > 0
    assert "test" in result.stdout.splitlines()[-1]


def test_digits_trains_with_a_permutation_and_reports_accuracy(tmp_path):
    result = rnnkit("train", "digits", "--permute", "--hidden-size", "8", "--max-minutes", "0", "--max-steps", "3",
                    "--eval-every", "3", "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert 0 <= summary["test"]["accuracy"] <= 1 and 0.09 < summary["baseline"]["accuracy"] < 0.12


def test_a_resumed_run_draws_the_same_batches(tmp_path):
    common = ["adding", *TINY, "--seq-len", "10", "--schedule", "constant"]
    assert rnnkit("train", *common, "--max-steps", "6", "--out", tmp_path / "straight").returncode == 0
    assert rnnkit("train", *common, "--max-steps", "3", "--out", tmp_path / "split").returncode == 0
    result = rnnkit("train", *common, "--max-steps", "6", "--resume", "--out", tmp_path / "split")
    assert result.returncode == 0, result.stderr
    straight, split = weights(tmp_path / "straight"), weights(tmp_path / "split")
    assert all(torch.equal(straight[name], split[name]) for name in straight)


def test_evaluate_scores_the_fixed_test_set(tmp_path):
    run = tmp_path / "run"
    assert rnnkit("train", "adding", *TINY, "--seq-len", "10", "--max-steps", "2", "--out", run).returncode == 0
    result = rnnkit("evaluate", "--checkpoint", run)
    assert result.returncode == 0, result.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert f"{summary['test']['loss']:.5f}" in result.stdout
    assert_one_line_error(rnnkit("evaluate", "--checkpoint", run, "--data", "x.txt"), "--data", "own test set")
    assert_one_line_error(rnnkit("generate", "--checkpoint", run), "does not generate")


@pytest.mark.parametrize("arguments, fragments", [
    (["adding", "--seq-len", "1"], ("--seq-len", "at least 2")),
    (["copy", "--seq-len", "0"], ("--seq-len", "at least 1")),
    (["adding", "--cell", "transformer"], ("--cell", "transformer")),
    (["adding", "--cell", "lstm", "--activation", "relu"], ("--activation",)),
    (["copy", "--test-size", "0"], ("--test-size",)),
    (["digits", "--batch-size", "5000"], ("--batch-size", "1257")),
])
def test_bad_task_options_are_one_line_errors(tmp_path, arguments, fragments):
    out = tmp_path / "run"
    assert_one_line_error(rnnkit_here("train", *arguments, "--max-steps", "1", "--out", out), *fragments)
    assert not out.exists()
