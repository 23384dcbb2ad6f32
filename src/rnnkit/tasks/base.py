"""What a task is: a typed configuration, a way to set up data and model, and a table of commands.

``rnnkit train TASK`` looks the task up in ``rnnkit.tasks.TASKS``, builds a ``Session`` (the
training contract, ``rnnkit.train.session``) and hands it to the trainer. What a trained model
can be used for is the task's table of ``commands`` (generate, predict, evaluate), each with
its own typed options: ``rnnkit COMMAND --checkpoint RUN`` finds the table through the
checkpoint's task. Nothing in the trainer or the command line branches on a task's name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any, Callable, ClassVar

import torch

from rnnkit.train.distributed import Distributed
from rnnkit.train.session import Session


@dataclass
class RunConfig:
    """Options of every training run besides the model, training and data groups each task adds."""

    out: str | None = None
    """Run folder (default: runs/TASK-YYYYmmdd-HHMMSS)."""
    resume: bool = False
    """Continue the run in --out from its latest checkpoint."""
    overwrite: bool = False
    """Replace an existing run folder."""
    config: str | None = None
    """YAML file of options (a run folder's config.yaml works); command-line options override it."""
    print_config: bool = False
    """Print the resolved configuration as YAML and exit."""

    # Subclasses define: model (a RecurrentConfig), train (TrainConfig), dataset (task options).
    GROUPS: ClassVar[tuple[str, ...]] = ("model", "train", "dataset")

    def validate(self) -> None:
        for group in self.GROUPS:
            validate = getattr(getattr(self, group), "validate", None)
            if validate is not None:
                validate()

    def resolved(self, task: str) -> dict:
        """The configuration that defines the run (what config.yaml and checkpoints hold)."""
        return {"task": task, **{group: asdict(getattr(self, group)) for group in self.GROUPS}}


@dataclass
class CheckpointOptions:
    """The options every command on a trained model takes; a command's own options extend these."""

    checkpoint: str
    """Run folder (or checkpoint directory) written by 'rnnkit train'."""
    device: str = "auto"
    """auto, cpu or cuda."""


@dataclass(frozen=True)
class Command:
    """A command a task's trained models support: ``rnnkit NAME --checkpoint RUN [options]``."""

    summary: str  # one line for 'rnnkit NAME --help'
    options: type[CheckpointOptions]  # a dataclass; tyro turns its fields into flags
    run: Callable[[Session, Any], None]  # (the restored session, the parsed options); prints what it finds


class Task(ABC):
    name: ClassVar[str]
    summary: ClassVar[str]  # one line for 'rnnkit tasks'
    config_class: ClassVar[type[RunConfig]]
    unit: ClassVar[str] = "tok"  # what the progress bar counts per second
    commands: ClassVar[dict[str, Command]] = {}  # what its trained models can be used for, by command name

    def default_config(self) -> RunConfig:
        return self.config_class()

    @abstractmethod
    def start(self, config: RunConfig, context: Distributed, device: torch.device) -> Session:
        """Read the data and build a fresh model."""

    @abstractmethod
    def restore(self, config: RunConfig, task_state: dict, device: torch.device) -> Session:
        """Rebuild a session (without training data) from a checkpoint's configuration and task state."""
