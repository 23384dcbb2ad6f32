"""What a task is: a typed configuration, a way to set up data and model, and a table of commands.

``rnnkit train TASK`` looks the task up in ``rnnkit.tasks.TASKS``, builds a ``Session`` (the
training contract, ``rnnkit.train.session``) and hands it to the trainer. What a trained model
can be used for is the task's table of ``commands`` (generate, predict, evaluate), each with
its own typed options and the session methods it needs (a Protocol, checked when the task is
registered): ``rnnkit COMMAND --checkpoint RUN`` finds the table through the checkpoint's task.
Nothing in the trainer or the command line branches on a task's name.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any, Callable, ClassVar, Iterator

import torch

from rnnkit.config_files import apply_yaml
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

    # Subclasses define: model (a RecurrentConfig), train (TrainConfig), dataset (task options), and may add groups.
    GROUPS: ClassVar[tuple[str, ...]] = ("model", "train", "dataset")

    def validate(self) -> None:
        for group in self.GROUPS:
            validate = getattr(getattr(self, group), "validate", None)
            if validate is not None:
                validate()

    def resolved(self, task: str) -> dict:
        """The configuration that defines the run (what config.yaml and checkpoints hold)."""
        return {"task": task, **{group: asdict(getattr(self, group)) for group in self.GROUPS}}

    def with_values(self, values: dict, where: str) -> RunConfig:
        """This configuration updated with a YAML file's (or a checkpoint's) groups, written in today's layout
        or an older one (``upgrade``)."""
        return apply_yaml(self, self.upgrade(values), where)

    @classmethod
    def upgrade(cls, values: dict) -> dict:
        """A saved configuration in today's layout: where an option has moved since, its old place is read too."""
        return values


@dataclass
class CheckpointOptions:
    """The options every command on a trained model takes; a command's own options extend these.

    ``machine_only`` names the options that only the machine running the command may set: files there (read or
    written) and its devices. ``rnnkit serve`` never takes them from a request; a subclass extends the tuple."""

    machine_only: ClassVar[tuple[str, ...]] = ("checkpoint", "device")

    checkpoint: str
    """Run folder (or checkpoint directory) written by 'rnnkit train'."""
    device: str = "auto"
    """auto, cpu or cuda."""


@dataclass(frozen=True)
class Command:
    """A command a task's trained models support: ``rnnkit NAME --checkpoint RUN [options]``."""

    summary: str  # one line for 'rnnkit NAME --help'
    options: type[CheckpointOptions]  # a dataclass; tyro turns its fields into flags
    run: Callable[[Any, Any], None]  # (the restored session, the parsed options); prints what it finds
    needs: type  # a Protocol: the session methods ``run`` calls, checked against every task that lists the command
    # What 'rnnkit serve' answers, and 'predict --format jsonl' prints: (session, inputs, options, where) -> one JSON
    # record per input, in order, {"error": "WHERE: why"} in place of one that cannot be read (``where``: how to name
    # each input; None: "input 1", ...). None: not served (it reads or writes files of the machine it runs on).
    records: Callable[[Any, list, Any, list[str] | None], list[dict]] | None = None
    # (session, one input, options) -> events as they are produced ({"token": ...}, {"frame": ...}), the last one
    # {"output": RECORD}: served as server-sent events. None: the command answers only when done.
    stream: Callable[[Any, Any, Any], Iterator[dict]] | None = None
    inputs: str = "text"  # "text", or "file": each input names a file on the machine (over HTTP: uploaded)
    generated_length: str | None = None  # the option that says how much is generated (rnnkit serve caps it)


class Task(ABC):
    name: ClassVar[str]
    summary: ClassVar[str]  # one line for 'rnnkit tasks'
    config_class: ClassVar[type[RunConfig]]
    session_class: ClassVar[type[Session]]  # what start() and restore() build
    unit: ClassVar[str]  # what a training step counts (char, word, sentence, ...): throughput and reports per unit
    commands: ClassVar[dict[str, Command]] = {}  # what its trained models can be used for, by command name

    def default_config(self) -> RunConfig:
        return self.config_class()

    @abstractmethod
    def start(self, config: RunConfig, context: Distributed, device: torch.device) -> Session:
        """Read the data and build a fresh model."""

    @abstractmethod
    def restore(self, config: RunConfig, task_state: dict, device: torch.device) -> Session:
        """Rebuild a session (without training data) from a checkpoint's configuration and task state."""


def missing_methods(session_class: type, protocol: type) -> list[str]:
    """What ``session_class`` lacks of ``protocol``: each method it does not have, or whose parameters do not
    include the protocol's (by name), described in a few words."""
    wanted_methods = {}
    for klass in reversed(protocol.__mro__):  # a protocol's own methods and those of the protocols it extends
        if getattr(klass, "_is_protocol", False):
            wanted_methods.update({name: value for name, value in vars(klass).items()
                                   if not name.startswith("_") and callable(value)})
    missing = []
    for name, wanted in wanted_methods.items():
        own = getattr(session_class, name, None)
        if own is None or not callable(own):
            missing.append(f"{name}()")
            continue
        accepted = inspect.signature(own).parameters
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
            lacking = [p for p in inspect.signature(wanted).parameters if p not in accepted]
            if lacking:
                missing.append(f"{name}() taking {', '.join(lacking)}")
    return missing


def check_commands(task: Task) -> None:
    """Every command of ``task`` finds what it needs on the task's session class; a TypeError naming what is
    missing otherwise (a programming error, found when the registry is built)."""
    for command_name, command in task.commands.items():
        missing = missing_methods(task.session_class, command.needs)
        if missing:
            raise TypeError(f"task {task.name!r}: its 'rnnkit {command_name}' needs {command.needs.__name__}, and "
                            f"{task.session_class.__name__} lacks {'; '.join(missing)}")
