"""Every task of the registry on the same contracts: each one's tiny configuration trains, is killed (SIGKILL) and
resumes to the bit where it would have been; two processes train what one process with the same global batch
trains; every command's session methods are declared and present; every flag a command's --help lists is
accepted; and ``rnnkit inspect`` and Python's ``load_run(...).predict`` work on every task that has them.

The data are the small samples the task tests write (CoNLL-2003 and the other data sets are never read here)."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import sys
from pathlib import Path

import pytest
import torch
import tyro

from cli_helpers import make_text, rnnkit_here, run_process, start_rnnkit, weights
from test_caption import write_shapes
from test_chat import write_reversals
from test_forecast import hours, write_csv
from test_music import arpeggios, write_mat
from test_ner import write_data as write_conll
from test_recommend import write_successor_sequences
from test_speech import write_tone_manifest
from test_sst import write_sst
from test_translate import corpus_options, write_corpus as write_parallel
from test_wordlm import write_corpus as write_ptb

from rnnkit.tasks import TASKS, Task, load_run
from rnnkit.tasks.base import Command, CheckpointOptions, check_commands
from rnnkit.train.callbacks import KILL_SWITCH

RUN = ["--max-minutes", "0", "--epochs", "0", "--max-steps", "6", "--eval-every", "2", "--log-every", "1",
       "--precision", "fp32"]


def task_data(task: str, folder: Path) -> list[str]:
    """Where a task's sample is (written into ``folder``), and a model small enough to train in a second."""
    folder.mkdir(parents=True, exist_ok=True)
    if task == "charlm":
        return ["--data", make_text(folder / "text.txt", 4000), "--hidden-size", "16", "--embedding-size", "8",
                "--bptt", "16"]
    if task == "wordlm":
        return ["--data-dir", write_ptb(folder / "ptb"), "--hidden-size", "16", "--embedding-size", "16", "--bptt", "8"]
    if task in ("adding", "copy"):
        return ["--seq-len", "10" if task == "adding" else "5", "--hidden-size", "8", "--validation-size", "16",
                "--test-size", "16"]
    if task == "digits":
        return ["--hidden-size", "8"]
    if task == "sst":
        return ["--data-dir", write_sst(folder / "sst"), "--hidden-size", "8", "--embedding-size", "8"]
    if task == "ner":
        return ["--data-dir", write_conll(folder / "conll"), "--hidden-size", "8", "--embedding-size", "8",
                "--char-hidden-size", "4", "--char-embedding-size", "4", "--case-embedding-size", "2"]
    if task == "translate":
        return [*corpus_options(write_parallel(folder / "pairs", "reverse")), "--hidden-size", "8", "--embedding-size",
                "8", "--min-count", "1", "--beam-size", "2"]
    if task == "forecast":
        return ["--data", noisy_csv(folder / "noisy.csv"), "--input-len", "12", "--horizon", "4", "--hidden-size", "8"]
    if task == "music":
        write_mat(folder / "JSB_Chorales.mat", {"traindata": arpeggios(40, 1), "validdata": arpeggios(8, 2),
                                                "testdata": arpeggios(8, 3)})
        return ["--data-dir", folder, "--hidden-size", "8"]
    if task == "speech":
        manifest = write_tone_manifest(folder / "tones", ["ab", "ba", "abc", "cab", "bb", "ca", "acb", "cc"] * 2, seed=0)
        return ["--manifest", manifest, "--dev-manifest", manifest, "--test-manifest", manifest, "--hidden-size", "8",
                "--num-layers", "1"]
    if task == "recommend":
        return ["--interactions", write_successor_sequences(folder / "walks.txt"), "--hidden-size", "8",
                "--embedding-size", "8", "--sampled-negatives", "5"]
    if task == "chat":
        files = [write_reversals(folder / f"{name}.txt", 12, seed) for seed, name in enumerate(("train", "valid", "test"))]
        return ["--dialogues", files[0], "--valid-dialogues", files[1], "--test-dialogues", files[2], "--hidden-size",
                "8", "--embedding-size", "8", "--beam-size", "2"]
    if task == "caption":
        shapes = write_shapes(folder / "shapes", per_combination=1)
        return ["--images", shapes / "images", "--captions", shapes / "train.token.txt", "--test-captions",
                shapes / "test.token.txt", "--image-size", "16", "--encoder-widths", "8", "8", "--hidden-size", "8",
                "--embedding-size", "8", "--beam-size", "2"]
    raise AssertionError(f"task {task!r} has no sample here: add one, so that it is held to the contracts")


def noisy_csv(path: Path, rows: int = 200) -> Path:
    """A daily cycle with noise: a series the linear highway cannot fit exactly, so training has gradients to
    follow (on a noiseless sine the highway's least-squares start leaves only rounding to descend)."""
    generator = torch.Generator().manual_seed(0)
    values = torch.sin(torch.arange(rows) * 2 * torch.pi / 24) + 0.3 * torch.randn(rows, generator=generator)
    return write_csv(path, [[time, f"{value:.6f}"] for time, value in zip(hours(rows), values.tolist())])


NOISE = {"sst": ["--word-dropout", "0"], "ner": ["--word-dropout", "0"],
         "speech": ["--frequency-masks", "0", "--time-masks", "0"],
         "recommend": ["--loss", "full_softmax"]}  # besides --dropout: each task's own random noise (sampled negatives)


def batch_options(task: str, processes: int) -> list[str]:
    """Batch options for a global batch of 4 sequences (8 pairs for translation) shared by ``processes``."""
    if task in ("translate", "chat"):
        return ["--batch-size", str(8 // processes), "--max-tokens", str(120 // processes)]
    return ["--batch-size", str(4 // processes)]


def training_log(run: Path) -> list:
    return [(r["event"], r["step"], r.get("loss")) for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())]


def test_every_task_has_a_sample_here(tmp_path):
    for name in TASKS:  # a task added to the registry without one fails here, and so do the tests below
        task_data(name, tmp_path / name)


# ----------------------------------------------------------------------------- killed and resumed
@pytest.mark.parametrize("task", list(TASKS))
def test_a_killed_run_resumes_bit_for_bit(task, tmp_path):
    """Killed with SIGKILL after step 5 (its last checkpoint: step 4), then resumed: the same weights, the same losses
    logged and the same test metrics as the run nobody interrupted."""
    arguments = ["train", task, *task_data(task, tmp_path / "data"), *RUN, *batch_options(task, 1)]
    whole = rnnkit_here(*arguments, "--out", tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    killed = start_rnnkit(*arguments, "--out", tmp_path / "killed", env={KILL_SWITCH: "5"}, log=tmp_path / "killed.log")
    killed.join(timeout=120)
    if killed.is_alive():
        killed.kill()
    assert killed.exitcode == -9, (tmp_path / "killed.log").read_text()  # SIGKILL: nothing ran after the kill
    assert not (tmp_path / "killed" / "summary.json").exists()
    resumed = rnnkit_here(*arguments, "--out", tmp_path / "killed", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    expected, got = weights(tmp_path / "whole"), weights(tmp_path / "killed")
    assert expected.keys() == got.keys()
    assert [name for name in expected if not torch.equal(expected[name], got[name])] == []
    assert training_log(tmp_path / "killed") == training_log(tmp_path / "whole")
    summaries = [json.loads((tmp_path / run / "summary.json").read_text()) for run in ("whole", "killed")]
    assert summaries[0].get("test") == summaries[1].get("test")


# ----------------------------------------------------------------------------- two processes
@pytest.mark.slow
def test_two_processes_train_what_one_process_trains_with_the_same_global_batch(tmp_path):
    """Every task, in one torchrun of two processes (tests/train_each.py), against one process each. Gradients are
    summed in another order, so the weights agree to float32 rounding, not bit for bit."""
    runs = {task: task_data(task, tmp_path / "data" / task) for task in TASKS}
    # No dropout: no noise of each process's own. SGD: its steps are the gradients (Adam's first steps keep only
    # their signs, which hides a batch weighted otherwise, such as a mean of the processes' means).
    quiet = ["--dropout", "0", "--optimizer", "sgd", "--lr", "0.5", "--momentum", "0"]
    plan = [["train", task, *options, *RUN, *quiet, *batch_options(task, 2),
             *NOISE.get(task, []), "--out", str(tmp_path / "two" / task)]
            for task, options in runs.items()]
    (tmp_path / "plan.json").write_text(json.dumps([list(map(str, arguments)) for arguments in plan]))
    torchrun = run_process([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                            Path(__file__).with_name("train_each.py"), tmp_path / "plan.json"], timeout=480)
    assert torchrun.returncode == 0, torchrun.stderr[-3000:]
    for task, options in runs.items():
        one = tmp_path / "one" / task
        result = rnnkit_here("train", task, *options, *RUN, *quiet, *batch_options(task, 1),
                             *NOISE.get(task, []), "--out", one)
        assert result.returncode == 0, result.stderr
        two = tmp_path / "two" / task
        expected, got = weights(one), weights(two)
        for name in expected:
            torch.testing.assert_close(got[name], expected[name], atol=1e-5, rtol=1e-4, msg=f"{task}: {name}")
        for kind in ("train", "eval"):  # the evaluation too (the language models' is shared out and summed)
            losses = [[loss for event, _, loss in training_log(run) if event == kind] for run in (one, two)]
            assert losses[0] and losses[1] == pytest.approx(losses[0], rel=1e-4, abs=1e-6), (task, kind)
        state = json.loads((two / "checkpoint.json").read_text())["directory"]
        assert json.loads((two / state / "state.json").read_text())["training"]["world_size"] == 2


# ----------------------------------------------------------------------------- commands
@pytest.mark.parametrize("task", list(TASKS))
def test_every_command_finds_the_session_methods_it_declares(task):
    check_commands(TASKS[task])  # what the registry did when it was built
    for command in TASKS[task].commands.values():
        assert command.needs.__name__ and dataclasses.is_dataclass(command.options)


def test_a_command_whose_session_lacks_a_method_is_refused_when_the_task_registers():
    from typing import Protocol

    class Describes(Protocol):
        def describe(self, result: dict) -> str: ...

    class Lacking(Task):
        name, summary, config_class = "lacking", "", None
        session_class = type(TASKS["adding"].start(TASKS["adding"].default_config(), *_single()))
        commands = {"show": Command("", CheckpointOptions, lambda session, options: None, Describes)}

        def start(self, config, context, device): ...

        def restore(self, config, task_state, device): ...

    with pytest.raises(TypeError, match=r"'rnnkit show' needs Describes, and AddingSession lacks describe\(\)"):
        check_commands(Lacking())


def _single():
    from rnnkit.train.distributed import SINGLE_PROCESS

    return SINGLE_PROCESS, torch.device("cpu")


def _flags(help_text: str) -> set[str]:
    """The flags --help defines: those that open a line of its box (``--x STR``, ``--x, --no-x``), not those that
    its descriptions mention."""
    defined = set()
    for line in help_text.splitlines():
        match = re.match(r"[│|]? {0,2}((?:--[a-z][a-z0-9-]*)(?:, --[a-z][a-z0-9-]*)*)", line)  # not a continuation line
        if match:
            defined |= set(match.group(1).split(", "))
    return defined - {"--help"}


def _value(field: dataclasses.Field) -> list[str]:
    """A value tyro accepts for ``field``'s flag (none for a switch)."""
    kind = str(field.type)
    if kind == "bool":
        return []
    return ["1"] if "int" in kind or "float" in kind else ["x"]


@pytest.mark.parametrize("task", list(TASKS))
def test_every_flag_a_commands_help_lists_is_accepted(task, capsys):
    """As 'rnnkit COMMAND --checkpoint RUN' parses them (cli.parse_command_options): tyro's own --no-FLAG included."""
    from rnnkit.cli import parse_command_options

    for name, command in TASKS[task].commands.items():
        with pytest.raises(SystemExit):
            tyro.cli(command.options, args=["--help"], prog=f"rnnkit {name}")
        flags = _flags(capsys.readouterr().out)
        fields = {field.name.replace("_", "-"): field for field in dataclasses.fields(command.options)
                  if field.name != "inputs"}  # predict's positional INPUT ... has no flag
        assert {flag.removeprefix("--no-") if flag.startswith("--no-") else flag[2:] for flag in flags} == fields.keys()
        for flag in flags:
            field = fields[flag.removeprefix("--no-") if flag.startswith("--no-") else flag[2:]]
            value = [] if flag.startswith("--no-") else _value(field)
            extra = [] if field.name == "checkpoint" else ["--checkpoint", "run"]
            parse_command_options(TASKS[task], name, [*extra, flag, *value])  # no UserError, no SystemExit


def test_an_unknown_flag_is_one_line_naming_what_the_command_takes():
    from rnnkit.cli import parse_command_options
    from rnnkit.errors import UserError

    with pytest.raises(UserError, match=r"--bogus: 'rnnkit predict' on a forecast model .* has no such option; it "
                                        r"takes .*--backtest"):
        parse_command_options(TASKS["forecast"], "predict", ["--checkpoint", "run", "--bogus", "1"])
    options = parse_command_options(TASKS["forecast"], "predict", ["--checkpoint", "run", "--backtest", "--no-backtest"])
    assert options.backtest is False


# ----------------------------------------------------------------------------- every trained model, every command
@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """Every task trained for 6 steps, once, for the tests below."""
    folder = tmp_path_factory.mktemp("every")
    runs = {}
    for task in TASKS:
        run = folder / task
        result = rnnkit_here("train", task, *task_data(task, folder / "data" / task), *RUN, *batch_options(task, 1),
                             "--out", run)
        assert result.returncode == 0, result.stderr
        runs[task] = run
    return runs


@pytest.mark.parametrize("task", list(TASKS))
def test_inspect_draws_the_gates_and_the_gradient_flow_of_every_tasks_model(task, trained, tmp_path):
    run = trained[task]
    gates = rnnkit_here("inspect", "gates", "--checkpoint", run, "--batch-size", "2", "--length", "20",
                        "--out", tmp_path / "gates")
    assert gates.returncode == 0, gates.stderr
    assert (tmp_path / "gates" / "gates.png").exists() and "gate: mean" in gates.stdout
    flow = rnnkit_here("inspect", "grad-flow", "--checkpoint", run, "--batch-size", "2", "--out", tmp_path / "flow")
    assert flow.returncode == 0, flow.stderr
    norms = json.loads((tmp_path / "flow" / "grad_flow.json").read_text())["models"][0]["norms"]
    assert len(norms) > 1 and any(value > 0 for value in norms)


EXAMPLE_INPUTS = {"digits": "0,0,5,13,9,1,0,0,0,0,13,15,10,15,5,0,0,3,15,2,0,11,8,0,0,4,12,0,0,8,8,0,0,5,8,0,0,9,8,0,0,4,"
                            "11,0,1,12,7,0,0,2,14,5,10,12,0,0,0,0,6,13,10,0,0,0",
                  "sst": "a good film", "ner": "Bob flew to Paris .", "translate": "a b c", "recommend": "item3 item4",
                  "chat": "w1 w2 __eou__ w2 w1 __eou__ w3 w4"}
FILE_INPUTS = {"forecast": "noisy.csv", "speech": "tones/0.wav", "caption": "shapes/images/0000.png"}  # inputs that are files of the task's sample


@pytest.mark.parametrize("task", [name for name, task in TASKS.items() if "predict" in task.commands])
def test_predict_from_python_equals_the_commands_json_lines(task, trained):
    run = trained[task]
    example = str(run.parent / "data" / task / FILE_INPUTS[task]) if task in FILE_INPUTS else EXAMPLE_INPUTS[task]
    command = rnnkit_here("predict", "--checkpoint", run, example, "--format", "jsonl", "--out", run.parent / "f") \
        if task == "forecast" else rnnkit_here("predict", "--checkpoint", run, example, "--format", "jsonl")
    assert command.returncode == 0, command.stderr
    assert [json.loads(line) for line in command.stdout.splitlines()] == load_run(str(run)).predict([example])


SERVED = [(name, command) for name, task in TASKS.items() for command, entry in task.commands.items()
          if entry.records is not None]


def test_every_command_that_reads_or_writes_no_files_of_the_machine_is_served():
    assert {task for task, _ in SERVED} == set(TASKS) - {"adding", "copy"}  # those two have only evaluate
    assert all(command in ("predict", "generate") for _, command in SERVED)


@pytest.mark.parametrize("task, command", SERVED)
def test_serve_answers_what_the_command_prints_in_json_lines(task, command, trained, tmp_path):
    """The same records over HTTP as from the command line, files sent as uploads (the records name the upload)."""
    from fastapi.testclient import TestClient

    from rnnkit.serve.app import build_app
    from rnnkit.serve.endpoints import Limits, ServedModel

    run = trained[task]
    restored = load_run(str(run))
    app = build_app([ServedModel(task, restored.task, restored.session, Limits())], Limits())
    if command == "generate" and task == "music":  # no JSON lines there: its MIDI file, byte for byte
        printed = rnnkit_here("generate", "--checkpoint", run, "--steps", "12", "--seed", "4", "--out", tmp_path / "a.mid")
        assert printed.returncode == 0, printed.stderr
        with TestClient(app) as client:
            record = client.post(f"/v1/models/{task}/generate", json={"inputs": [""], "options": {"steps": 12, "seed": 4}}
                                 ).json()["outputs"][0]
        assert base64.b64decode(record["midi"]) == (tmp_path / "a.mid").read_bytes() and len(record["frames"]) == 12
        return
    if command == "generate":
        arguments, body = ["--prime", "the", "--length", "12", "--seed", "2"], {"length": 12, "seed": 2}
        sent, expected = "the", rnnkit_here("generate", "--checkpoint", run, *arguments, "--format", "jsonl")
    elif task in FILE_INPUTS:
        path = run.parent / "data" / task / FILE_INPUTS[task]
        sent, body = {"name": path.name, "data": base64.b64encode(path.read_bytes()).decode()}, {}
        extra = ["--out", tmp_path / "f"] if task == "forecast" else []
        expected = rnnkit_here("predict", "--checkpoint", run, path, "--format", "jsonl", *extra)
    else:
        sent, body = EXAMPLE_INPUTS[task], {}
        expected = rnnkit_here("predict", "--checkpoint", run, sent, "--format", "jsonl")
    assert expected.returncode == 0, expected.stderr
    printed = expected.stdout.splitlines()[0]
    if task in FILE_INPUTS:
        printed = printed.replace(json.dumps(str(path))[1:-1], path.name)
    with TestClient(app) as client:
        answer = client.post(f"/v1/models/{task}/{command}", json={"inputs": [sent], "options": body})
    assert answer.status_code == 200 and answer.json() == {"outputs": [json.loads(printed)]}


def test_a_task_summary_never_replaces_the_trainers_entries(trained):
    for task, run in trained.items():
        summary = json.loads((run / "summary.json").read_text())
        log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        last_evaluation = {k: v for k, v in [r for r in log if r["event"] == "eval"][-1].items()
                           if k not in ("event", "step", "elapsed")}
        kept = summary["validation"]  # the monitored evaluation of the kept model (the best with --keep-best)
        best_step = summary["best_step"]
        best = {k: v for k, v in [r for r in log if r["event"] == "eval" and r["step"] == best_step][0].items()
                if k not in ("event", "step", "elapsed")}
        assert kept == (best if TASKS[task].default_config().train.keep_best else last_evaluation), task


def test_a_session_that_returns_a_trainer_key_is_refused(tmp_path, monkeypatch):
    from rnnkit.tasks.fixed_sets import SequenceSession

    monkeypatch.setattr(SequenceSession, "test_summary", lambda self: {"validation": {"loss": 0.0}})
    result = rnnkit_here("train", "adding", *task_data("adding", tmp_path), *RUN, "--out", tmp_path / "run")
    assert result.returncode == 1 and "returns validation, which the trainer's summary holds already" in result.stderr
