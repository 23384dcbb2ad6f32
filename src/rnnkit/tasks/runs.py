"""Trained runs read back from disk: what the task commands (generate, predict, evaluate), ``rnnkit inspect`` and
the Python API (``load_run``) work on."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from rnnkit.errors import UserError
from rnnkit.tasks.base import RunConfig, Task
from rnnkit.tasks.predict import predict_inputs
from rnnkit.tasks.registry import TASKS, get_task
from rnnkit.train import distributed
from rnnkit.train.checkpoint import Checkpoint
from rnnkit.train.run_folder import load_trained_checkpoint
from rnnkit.train.session import Session

COMMAND_LINE_ONLY = ("checkpoint", "inputs", "file", "format")  # predict options that only the command line sets


@dataclass
class TrainedRun:
    """A checkpoint read from disk, with the task and configuration it names; no model built yet."""

    path: str
    task: Task
    config: RunConfig
    checkpoint: Checkpoint

    def session(self, device_choice: str = "cpu") -> Session:
        """A session holding the trained model, on the chosen device."""
        device = distributed.select_device(device_choice, distributed.SINGLE_PROCESS)
        session = self.task.restore(self.config, self.checkpoint.task_state, device)
        try:
            session.model.load_state_dict(self.checkpoint.model)
        except RuntimeError as error:
            first = str(error).splitlines()[1].strip() if len(str(error).splitlines()) > 1 else str(error)
            raise UserError(f"checkpoint {self.path}: its weights do not match its configuration ({first})") from None
        return session


def read_trained_run(checkpoint_path: str) -> TrainedRun:
    """The checkpoint of a run folder (its best model where it kept one, --keep-best; else its latest), or of
    a checkpoint directory, and the task it was trained on."""
    checkpoint = load_trained_checkpoint(checkpoint_path)
    saved = checkpoint.config
    if not isinstance(saved, dict) or saved.get("task") not in TASKS:
        raise UserError(f"checkpoint {checkpoint_path} names no known task ({saved.get('task') if isinstance(saved, dict) else saved!r})")
    task = get_task(saved["task"])
    config = task.default_config().with_values(saved, f"checkpoint {checkpoint_path}")
    return TrainedRun(checkpoint_path, task, config, checkpoint)


def restore_session(checkpoint_path: str, device_choice: str = "cpu") -> tuple[Task, Session]:
    """The task and a session holding the trained model of a run folder or checkpoint directory."""
    run = read_trained_run(checkpoint_path)
    return run.task, run.session(device_choice)


class TrainedModel:
    """A trained run for use from Python: what ``rnnkit predict`` does, without the command line.

        from rnnkit.tasks import load_run
        model = load_run("runs/sst-20261203-120000")
        model.predict(["A gripping, beautifully acted film.", "Dull."])
        # [{"text": ..., "label": "positive", "probabilities": {...}}, ...]
        load_run("runs/translate-...").predict(["Ein Mann fährt Fahrrad."], beam_size=5, n_best=3)
    """

    def __init__(self, path: str, task: Task, session: Session) -> None:
        self.path, self.task, self.session = path, task, session

    def predict(self, inputs: list, **options) -> list[dict]:
        """One record per input, in order, as ``rnnkit predict`` prints them in JSON lines; an input that cannot be
        read gets {"error": ...} in its place. ``options`` are the command's, by their Python names (``batch_size``,
        ``beam_size``, ``horizon``, ...)."""
        if "predict" not in self.task.commands:
            raise UserError(f"the {self.task.name} task has no predict; its trained models support "
                            f"{', '.join(self.task.commands) or 'no command'}")
        options_class = self.task.commands["predict"].options
        accepted = [field.name for field in dataclasses.fields(options_class) if field.name not in COMMAND_LINE_ONLY]
        unknown = next((name for name in options if name not in accepted), None)
        if unknown is not None:
            raise UserError(f"{unknown}: not an option of predict on a {self.task.name} model; it takes "
                            f"{', '.join(accepted)}")
        chosen = options_class(checkpoint=self.path, **options)
        chosen.validate()
        return predict_inputs(self.session, list(inputs), chosen)


def load_run(checkpoint_path: str, device: str = "cpu") -> TrainedModel:
    """The trained model of a run folder (its best model where it kept one) or of a checkpoint directory."""
    task, session = restore_session(checkpoint_path, device)
    return TrainedModel(checkpoint_path, task, session)
