"""The trainer against the session contract alone: a monitored metric of either direction, any nest of
carried state through checkpoints, callbacks, and checkpoints written before the architecture issue."""

from __future__ import annotations

import json

import pytest
import torch

from cli_helpers import make_text, rnnkit_here, weights
from rnnkit.data.batch import Batch
from rnnkit.train.callbacks import Callback
from rnnkit.train.config import TrainConfig
from rnnkit.train.distributed import SINGLE_PROCESS
from rnnkit.train.nest import flatten_nest, unflatten_nest
from rnnkit.train.run_folder import RunFolder, load_trained_checkpoint
from rnnkit.train.session import Monitor, Session
from rnnkit.train.trainer import Trainer


class CountingBatches:
    def __init__(self) -> None:
        self.position = 0

    def next_batch(self) -> Batch:
        self.position += 1
        return Batch(torch.full((1, 2, 1), float(self.position)), torch.zeros(2))

    def epoch_progress(self) -> float:
        return self.position / 100

    def state_dict(self) -> dict:
        return {"position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.position = state["position"]


class ScriptedSession(Session):
    """Validation accuracy follows a script; the carried state is a nest that counts the steps."""

    monitor = Monitor("accuracy", "max")

    def __init__(self, accuracies: list[float]) -> None:
        self.model = torch.nn.Linear(1, 1)
        self.batches = CountingBatches()
        self.accuracies = iter(accuracies)
        self.states_seen = []

    def task_state(self) -> dict:
        return {}

    def training_step(self, network, batch, state):
        self.states_seen.append(state)
        loss = network(batch.inputs[0]).pow(2).mean()
        steps = 1 if state is None else int(state["count"][0]) + 1
        carried = {"count": (torch.tensor([steps]), [torch.zeros(2, 3)]), "last": torch.tensor([float(batch.inputs[0, 0])])}
        return loss, carried, batch.size

    def evaluate(self, model) -> dict[str, float]:
        return {"loss": 1.0, "accuracy": next(self.accuracies)}  # a loss that never improves


def _trainer(tmp_path, session, callbacks=(), **options) -> Trainer:
    config = TrainConfig(max_minutes=0, eval_every=1, lr=0.1, schedule="constant", **options)
    run = RunFolder(tmp_path / "run")
    run.create({"task": "scripted"})
    return Trainer(session, config, run, SINGLE_PROCESS, {"config": {"task": "scripted"}, "task_state": {}}, callbacks)


def test_early_stopping_and_the_best_value_follow_the_monitored_metric_in_its_direction(tmp_path):
    session = ScriptedSession([0.5, 0.7, 0.6, 0.65, 0.9])
    summary = _trainer(tmp_path, session, max_steps=10, patience=2).fit()
    # 0.7 at step 2, then two evaluations below it: stop at step 4, though the loss never improved at all
    assert summary["steps"] == 4 and summary["stop_reason"].startswith("early stopping")
    assert summary["best_validation_accuracy"] == 0.7


def test_keep_best_ends_with_the_best_evaluations_model_and_keeps_it_for_the_commands(tmp_path):
    class RecordingSession(ScriptedSession):
        def evaluate(self, model):
            self.weights.append(model.weight.detach().clone())
            return super().evaluate(model)

    session = RecordingSession([0.5, 0.8, 0.6, 0.7])
    session.weights = []
    summary = _trainer(tmp_path, session, max_steps=4, keep_best=True).fit()
    assert summary["best_step"] == 2 and summary["best_validation_accuracy"] == 0.8
    assert summary["validation"]["accuracy"] == 0.8  # the metrics of the model it ends with
    assert not torch.equal(session.weights[1], session.weights[3])  # training moved the weights on after step 2
    assert torch.equal(session.model.weight, session.weights[1])  # and the best ones came back at the end
    assert torch.equal(load_trained_checkpoint(tmp_path / "run").model["weight"], session.weights[1])
    assert RunFolder(tmp_path / "run").latest_checkpoint().step == 4  # --resume still continues from the last


def test_a_nest_of_carried_state_is_carried_and_survives_a_checkpoint(tmp_path):
    session = ScriptedSession([0.1 * step for step in range(10)])
    trainer = _trainer(tmp_path, session, max_steps=3)
    trainer.fit()
    assert int(session.states_seen[-1]["count"][0]) == 2  # the step-2 state reached step 3
    resumed = _trainer(tmp_path / "again", ScriptedSession([]), max_steps=3)
    resumed.restore(trainer.run.latest_checkpoint())
    carried = resumed.carried
    assert isinstance(carried["count"], tuple) and isinstance(carried["count"][1], list)
    assert int(carried["count"][0]) == 3 and torch.equal(carried["last"], torch.tensor([3.0]))
    assert resumed.session.batches.position == 3


def test_callbacks_see_the_loss_and_every_update(tmp_path):
    class Recorder(Callback):
        def __init__(self):
            self.losses, self.updates = [], 0

        def on_loss(self, trainer, step, loss):
            self.losses.append(step)
            return loss * float("nan") if step == 2 else loss

        def on_update(self, trainer):
            self.updates += 1

    recorder = Recorder()
    summary = _trainer(tmp_path, ScriptedSession([0.0] * 5), (recorder,), max_steps=4).fit()
    assert recorder.losses == [1, 2, 3, 4] and recorder.updates == 3  # step 2 was made non-finite and skipped
    assert summary["nonfinite_steps"] == 1


def test_nests_flatten_and_come_back_as_they_were():
    nest = {"encoder": (torch.ones(2), torch.zeros(1)), "decoder": [torch.arange(3)], "h": torch.tensor(5)}
    spec, tensors = flatten_nest(nest)
    assert json.loads(json.dumps(spec)) == spec and len(tensors) == 4
    rebuilt = unflatten_nest(spec, tensors)
    assert rebuilt.keys() == nest.keys() and isinstance(rebuilt["encoder"], tuple) and isinstance(rebuilt["decoder"], list)
    assert all(torch.equal(a, b) for a, b in zip(flatten_nest(rebuilt)[1], tensors))
    with pytest.raises(TypeError, match="state: expected tensors in tuples, lists and dicts, got str"):
        flatten_nest(("h", torch.ones(1)))


def test_a_checkpoint_from_before_the_architecture_issue_resumes(tmp_path):
    """Until the architecture issue checkpoints kept counters.best_loss, the schedule's own best, and a bare
    True for a carried flat tuple. A run checkpointed that way resumes as one never interrupted."""
    text = make_text(tmp_path / "text.txt")
    common = ["--data", text, "--hidden-size", "16", "--embedding-size", "8", "--batch-size", "4", "--bptt", "16",
              "--max-minutes", "0", "--eval-every", "3", "--schedule", "constant", "--precision", "fp32"]
    trained = rnnkit_here("train", *common, "--max-steps", "6", "--out", tmp_path / "straight")
    assert trained.returncode == 0, trained.stderr
    trained = rnnkit_here("train", *common, "--max-steps", "3", "--out", tmp_path / "split")
    assert trained.returncode == 0, trained.stderr
    pointer = json.loads((tmp_path / "split" / "checkpoint.json").read_text())
    state_file = tmp_path / "split" / pointer["directory"] / "state.json"
    state = json.loads(state_file.read_text())
    training = state["training"]
    assert training["carried"] == {"tuple": ["tensor", "tensor"]}  # the LSTM's (h, c)
    training["carried"] = True
    training["counters"]["best_loss"] = training["counters"].pop("best")
    training["schedule"]["best"] = training["counters"]["best_loss"]
    state_file.write_text(json.dumps(state))
    result = rnnkit_here("train", *common, "--max-steps", "6", "--resume", "--out", tmp_path / "split")
    assert result.returncode == 0, result.stderr
    straight, split = weights(tmp_path / "straight"), weights(tmp_path / "split")
    assert all(torch.equal(straight[name], split[name]) for name in straight)
