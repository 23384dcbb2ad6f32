"""The command line, end to end through its real entry point: train, generate, evaluate, tasks,
kill-and-resume, the non-finite guard, and every bad input. Several processes (torchrun) are tested for every task
at once in tests/test_every_task.py."""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path

import pytest
import torch
import yaml

from cli_helpers import TINY, assert_one_line_error, make_text, rnnkit, rnnkit_here, start_rnnkit, tree_digest, weights

from rnnkit.train.callbacks import INJECT_SWITCH


@pytest.fixture(scope="module")
def text(tmp_path_factory) -> Path:
    return make_text(tmp_path_factory.mktemp("data") / "sonnet.txt")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, text) -> Path:
    run = tmp_path_factory.mktemp("runs") / "trained"
    result = rnnkit_here("train", "--data", text, *TINY, "--max-steps", "12", "--eval-every", "4", "--out", run)
    assert result.returncode == 0, result.stderr
    return run


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


# ----------------------------------------------------------------------------- the main path
def test_training_writes_a_complete_run_folder(trained):
    assert {p.name for p in trained.iterdir()} >= {"config.yaml", "metrics.jsonl", "checkpoint.json", "checkpoints", "summary.json"}
    config = yaml.safe_load((trained / "config.yaml").read_text())
    assert config["task"] == "charlm" and config["model"]["hidden_size"] == 16
    records = metrics(trained)
    assert [r["step"] for r in records if r["event"] == "eval"] == [4, 8, 12]
    train = [r for r in records if r["event"] == "train"]
    assert len(train) == 12 and all(math.isfinite(r["grad_norm"]) and r["grad_norm"] > 0 for r in train)
    summary = json.loads((trained / "summary.json").read_text())
    assert summary["steps"] == 12 and summary["task"] == "charlm" and summary["nonfinite_steps"] == 0
    assert summary["validation"]["bpc"] == pytest.approx(summary["validation"]["loss"] / math.log(2))
    assert train[-1]["loss"] < train[0]["loss"]  # it learns
    checkpoint = json.loads((trained / "checkpoint.json").read_text())
    assert checkpoint["step"] == 12 and list((trained / "checkpoints").iterdir()) == [trained / checkpoint["directory"]]


def test_training_prints_validation_in_nats_and_bits_and_a_sample(tmp_path, text):
    result = rnnkit("train", "--data", text, *TINY, "--max-steps", "3", "--eval-every", "3", "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    assert "nats/char" in result.stdout and "bits/char" in result.stdout
    assert "--- sample" in result.stdout
    assert "step 3 loss" in result.stderr  # the live progress bar


def test_default_task_trains_on_the_bundled_corpus(tmp_path):
    result = rnnkit("train", *TINY, "--max-steps", "2", "--eval-every", "2", "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert config["dataset"]["data"] is None
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["validation"]["loss"] < math.log(65) + 0.5  # 65 characters: near uniform after 2 steps


def test_generate_samples_reproducibly_and_beam_search(trained):
    first = rnnkit_here("generate", "--checkpoint", trained, "--prime", "Shall", "--length", "30", "--seed", "3")
    again = rnnkit_here("generate", "--checkpoint", trained, "--prime", "Shall", "--length", "30", "--seed", "3")
    assert first.returncode == 0, first.stderr
    assert first.stdout == again.stdout
    assert first.stdout.startswith("Shall") and len(first.stdout.rstrip("\n")) >= len("Shall") + 30 - 5
    # The options reach the decoders (tests/test_generation.py checks the decoders themselves):
    greedy = rnnkit_here("generate", "--checkpoint", trained, "--length", "20", "--temperature", "0")
    beam = rnnkit_here("generate", "--checkpoint", trained, "--length", "20", "--beam-size", "1")
    top_k = rnnkit_here("generate", "--checkpoint", trained, "--length", "20", "--top-k", "1", "--seed", "4")
    assert greedy.returncode == 0, greedy.stderr
    assert beam.stdout == top_k.stdout == greedy.stdout


def test_evaluate_on_validation_split_and_on_a_file(trained, text):
    own = rnnkit_here("evaluate", "--checkpoint", trained)
    assert own.returncode == 0, own.stderr
    loss = float(re.search(r"loss ([0-9.]+) nats/char", own.stdout).group(1))
    summary = json.loads((trained / "summary.json").read_text())
    assert loss == pytest.approx(summary["validation"]["loss"], abs=1e-4)  # printed with 4 decimals
    other = rnnkit_here("evaluate", "--checkpoint", trained, "--data", text)
    assert other.returncode == 0 and "nats/char" in other.stdout


def test_tasks_lists_charlm():
    result = rnnkit_here("tasks")
    assert result.returncode == 0 and result.stdout.startswith("charlm ")


def test_print_config_and_config_files_set_the_same_fields(tmp_path):
    printed = rnnkit_here("train", "--hidden-size", "77", "--lr", "0.01", "--print-config")
    assert printed.returncode == 0, printed.stderr
    file = tmp_path / "config.yaml"
    file.write_text(printed.stdout)
    again = rnnkit_here("train", "--config", file, "--print-config")
    assert yaml.safe_load(again.stdout) == yaml.safe_load(printed.stdout)
    override = yaml.safe_load(rnnkit_here("train", "--config", file, "--hidden-size", "9", "--print-config").stdout)
    assert override["model"]["hidden_size"] == 9 and override["train"]["lr"] == 0.01


def test_same_seed_same_weights(tmp_path, text):
    for name in ("a", "b"):
        result = rnnkit_here("train", "--data", text, *TINY, "--dropout", "0.2", "--max-steps", "6", "--eval-every", "3",
                        "--out", tmp_path / name)
        assert result.returncode == 0, result.stderr
    first, second = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert all(torch.equal(first[name], second[name]) for name in first)


# ----------------------------------------------------------------------------- resume
RESUMABLE = [*TINY, "--dropout", "0.2", "--max-steps", "150", "--eval-every", "10"]


def _losses(run: Path) -> list:
    return [(r["event"], r["step"], r.get("loss")) for r in metrics(run)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, text) -> Path:
    run = tmp_path_factory.mktemp("runs") / "uninterrupted"
    result = rnnkit_here("train", "--data", text, *RESUMABLE, "--out", run)
    assert result.returncode == 0, result.stderr
    return run


@pytest.mark.parametrize("kill_after_step", [0, 35, 95])
def test_sigkill_and_resume_gives_bit_identical_weights_and_metrics(tmp_path, text, uninterrupted, kill_after_step):
    run = tmp_path / "killed"
    process = start_rnnkit("train", "--data", text, *RESUMABLE, "--out", run)
    deadline = time.time() + 120
    while time.time() < deadline and process.is_alive():
        logged = (run / "metrics.jsonl").read_text().splitlines() if (run / "metrics.jsonl").exists() else []
        steps = [json.loads(line)["step"] for line in logged[:-1]]  # the last line may be half written
        if (kill_after_step == 0 and (run / "config.yaml").exists()) or (steps and max(steps) >= kill_after_step > 0):
            break
        time.sleep(0.01)
    process.kill()
    process.join()
    assert not (run / "summary.json").exists(), "killed too late: the run had finished"

    resumed = rnnkit_here("train", "--data", text, *RESUMABLE, "--out", run, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    expected, got = weights(uninterrupted), weights(run)
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[name], got[name]) for name in expected)
    assert _losses(run) == _losses(uninterrupted)


def test_resume_needs_the_same_model(trained, text):
    before = tree_digest(trained)
    result = rnnkit_here("train", "--data", text, *TINY, "--hidden-size", "32", "--max-steps", "20", "--out", trained, "--resume")
    assert_one_line_error(result, "--resume", "model.hidden_size=16", "32")
    assert tree_digest(trained) == before


# ----------------------------------------------------------------------------- non-finite guard
def test_a_nonfinite_step_is_skipped_counted_and_logged(tmp_path, text, monkeypatch):
    run = tmp_path / "run"
    monkeypatch.setenv(INJECT_SWITCH, "3")
    result = rnnkit_here("train", "--data", text, *TINY, "--max-steps", "8", "--eval-every", "4", "--out", run)
    assert result.returncode == 0, result.stderr
    assert json.loads((run / "summary.json").read_text())["nonfinite_steps"] == 1
    assert [r["step"] for r in metrics(run) if r["event"] == "nonfinite"] == [3]
    assert all(torch.isfinite(value).all() for value in weights(run).values())


def test_repeated_nonfinite_steps_stop_the_run_and_keep_the_last_good_checkpoint(tmp_path, text, monkeypatch):
    run = tmp_path / "run"
    monkeypatch.setenv(INJECT_SWITCH, "6,7,8,9,10")
    result = rnnkit_here("train", "--data", text, *TINY, "--max-steps", "30", "--eval-every", "4", "--out", run)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "training stopped at step 10: 5 consecutive steps had a non-finite loss" in last
    # Skipped steps leave the weights as they were, so the checkpoint of step 8 still holds good weights.
    assert json.loads((run / "checkpoint.json").read_text())["step"] == 8
    assert all(torch.isfinite(value).all() for value in weights(run).values())
    assert not (run / "summary.json").exists()
    generated = rnnkit_here("generate", "--checkpoint", run, "--prime", "Shall", "--length", "5")
    assert generated.returncode == 0, generated.stderr  # the kept checkpoint writes a sample of the corpus's characters
    assert re.fullmatch(r"Shall.{5}\n", generated.stdout, re.S) and set(generated.stdout[5:10]) <= set(text.read_text())


# ----------------------------------------------------------------------------- bad input
def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    binary = tmp_path / "binary.bin"
    binary.write_bytes(bytes(range(256)) * 10)
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("caf\u00e9 cr\u00e8me ".encode("latin-1") * 100)
    short = tmp_path / "short.txt"
    short.write_text("To be, or", encoding="utf-8")  # fewer than --bptt 16 + 1 characters
    return {
        "missing": (tmp_path / "nope.txt", "does not exist"),
        "empty": (empty, "is empty"),
        "binary": (binary, "looks binary"),
        "non-utf8": (latin, "is not valid UTF-8"),
        "too short": (short, "fewer than one training sequence"),
    }


@pytest.mark.parametrize("case", ["missing", "empty", "binary", "non-utf8", "too short"])
def test_bad_data_files(tmp_path, case):
    path, message = _bad_files(tmp_path)[case]
    assert_one_line_error(rnnkit_here("train", "--data", path, *TINY, "--max-steps", "2", "--out", tmp_path / "run"), message, str(path))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "options,message",
    [
        (["--hidden-size", "0"], "--hidden-size: expected a positive integer, got 0"),
        (["--num-layers", "-2"], "--num-layers: expected a positive integer, got -2"),
        (["--lr", "-0.1"], "--lr: expected a positive learning rate, got -0.1"),
        (["--batch-size", "0"], "--batch-size: expected a positive integer, got 0"),
        (["--cell", "transformer"], "--cell: expected one of rnn, lstm, gru, janet, indrnn, got 'transformer'"),
        (["--optimizer", "lbfgs"], "--optimizer: expected one of sgd, adam, adamw, rmsprop, got 'lbfgs'"),
        (["--schedule", "linear"], "--schedule: expected one of constant, step, plateau, cosine, got 'linear'"),
        (["--dropout", "1.5"], "--dropout: expected a probability in [0, 1), got 1.5"),
        (["--bidirectional"], "--bidirectional: a language model"),
        (["--merge-mode", "avg"], "--merge-mode: expected one of"),
        (["--max-minutes", "0", "--max-steps", "0"], "no training budget"),
        (["--layer-norm", "--cell", "rnn"], "--layer-norm: the rnn cell has no layer-normalised variant"),
    ],
)
def test_bad_hyperparameters(tmp_path, text, options, message):
    result = rnnkit_here("train", "--data", text, *TINY, "--max-steps", "2", *options, "--out", tmp_path / "run")
    assert_one_line_error(result, message)
    assert not (tmp_path / "run").exists()


def test_an_existing_run_folder_is_never_overwritten_without_overwrite(trained, text, tmp_path):
    before = tree_digest(trained)
    result = rnnkit_here("train", "--data", text, *TINY, "--max-steps", "2", "--out", trained)
    assert_one_line_error(result, "already exists", "--resume", "--overwrite")
    # --overwrite with bad data fails before anything is deleted
    bad = rnnkit_here("train", "--data", tmp_path / "missing.txt", *TINY, "--max-steps", "2", "--out", trained, "--overwrite")
    assert_one_line_error(bad, "does not exist")
    assert tree_digest(trained) == before


def _copy(run: Path, tmp_path: Path) -> Path:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    return copy


def _model_file(run: Path) -> Path:
    return run / json.loads((run / "checkpoint.json").read_text())["directory"] / "model.safetensors"


def test_bad_checkpoints(trained, tmp_path):
    assert_one_line_error(rnnkit_here("generate", "--checkpoint", tmp_path / "none"), "does not exist")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(rnnkit_here("generate", "--checkpoint", tmp_path / "empty"), "no checkpoint in")

    truncated = _copy(trained, tmp_path / "t")
    model = _model_file(truncated)
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    assert_one_line_error(rnnkit("generate", "--checkpoint", truncated), "truncated or corrupted")  # the process: status 2, one line

    flipped = _copy(trained, tmp_path / "f")
    model = _model_file(flipped)
    data = bytearray(model.read_bytes())
    data[-5] ^= 0xFF
    model.write_bytes(bytes(data))
    assert_one_line_error(rnnkit_here("evaluate", "--checkpoint", flipped), "truncated or corrupted")

    broken_state = _copy(trained, tmp_path / "s")
    (_model_file(broken_state).parent / "state.json").write_text('{"format": 1, "config": ')
    assert_one_line_error(rnnkit_here("generate", "--checkpoint", broken_state), "not valid JSON")

    (broken_state / "checkpoint.json").write_text("[]")
    assert_one_line_error(rnnkit_here("generate", "--checkpoint", broken_state), "does not name a checkpoint directory")


def test_checkpoint_files_hold_no_pickles(trained):
    directory = _model_file(trained).parent
    assert sorted(p.name for p in directory.iterdir()) == ["model.safetensors", "state.json", "training.safetensors"]
    for file in directory.iterdir():
        assert not file.read_bytes().startswith(b"\x80")  # a pickle stream's PROTO opcode


@pytest.mark.parametrize(
    "arguments,message",
    [
        (["train", "translation"], "unknown task 'translation'"),
        (["fly"], "unknown command 'fly'"),
        (["tasks", "extra"], "tasks: takes no arguments"),
        (["train", "--resume", "--max-steps", "3"], "--resume: name the run folder"),
    ],
)
def test_bad_commands(arguments, message):
    assert_one_line_error(rnnkit_here(*arguments), message)


def test_a_bad_command_is_one_line_and_status_2_from_the_process_itself():
    assert_one_line_error(rnnkit("fly"), "unknown command 'fly'")


def test_evaluating_text_outside_the_vocabulary(trained, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text("Zebras quiz \u00fcber jovial kings. " * 20, encoding="utf-8")
    assert_one_line_error(rnnkit_here("evaluate", "--checkpoint", trained, "--data", other), "character(s) the model's vocabulary lacks")


def test_bad_config_files(tmp_path):
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("model:\n  hiden_size: 3\n")
    assert_one_line_error(rnnkit_here("train", "--config", unknown, "--print-config"), "unknown option 'hiden_size'")
    wrong_type = tmp_path / "type.yaml"
    wrong_type.write_text("train:\n  lr: fast\n")
    assert_one_line_error(rnnkit_here("train", "--config", wrong_type, "--print-config"), "train.lr: expected float, got 'fast'")
    assert_one_line_error(rnnkit_here("train", "--config", tmp_path / "none.yaml"), "does not exist")


def test_a_corpus_without_newlines_still_ends_with_a_sample(tmp_path):
    text = tmp_path / "line.txt"
    text.write_text("to be or not to be that is the question " * 40, encoding="utf-8")
    result = rnnkit_here("train", "--data", text, *TINY, "--max-steps", "2", "--eval-every", "2", "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    assert "--- sample" in result.stdout


def test_bf16_training_runs_and_learns(tmp_path, text):
    run = tmp_path / "run"
    result = rnnkit_here("train", "--data", text, *TINY, "--precision", "bf16", "--max-steps", "20", "--eval-every", "10", "--out", run)
    assert result.returncode == 0, result.stderr
    assert "(bf16)" in result.stderr
    train = [r for r in metrics(run) if r["event"] == "train"]
    assert train[-1]["loss"] < train[0]["loss"]
    assert all(value.dtype == torch.float32 for value in weights(run).values())  # autocast keeps fp32 weights


def test_early_stopping_after_patience_evaluations_without_improvement(tmp_path, text):
    # A learning rate of 1e-30 leaves every fp32 weight unchanged, so validation never improves.
    run = tmp_path / "run"
    result = rnnkit_here("train", "--data", text, *TINY, "--lr", "1e-30", "--max-steps", "100", "--eval-every", "2",
                    "--patience", "2", "--out", run)
    assert result.returncode == 0, result.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 6 and summary["stop_reason"].startswith("early stopping")


def test_generate_with_the_default_prime_on_a_corpus_without_newlines(tmp_path):
    text = tmp_path / "line.txt"
    text.write_text("to be or not to be that is the question " * 40, encoding="utf-8")
    run = tmp_path / "run"
    training = rnnkit_here("train", "--data", text, *TINY, "--max-steps", "2", "--eval-every", "2", "--out", run)
    assert training.returncode == 0, training.stderr
    result = rnnkit_here("generate", "--checkpoint", run, "--length", "10")
    assert result.returncode == 0, result.stderr
