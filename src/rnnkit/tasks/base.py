"""What a task is: a typed configuration, a way to set up data and model, a loss and an evaluation.

``rnnkit train TASK`` looks the task up in ``rnnkit.tasks.TASKS`` and drives it through
this interface; nothing in the trainer or the command line branches on a task's name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import ClassVar

import torch

from rnnkit.errors import UserError
from rnnkit.train.distributed import Distributed


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


class Session(ABC):
    """One task set up for training, evaluation or generation: data, model, and what to do with them."""

    model: torch.nn.Module
    batches: object  # training windows (see rnnkit.train.trainer.TrainingTask)

    @abstractmethod
    def task_state(self) -> dict:
        """JSON-able data that, with the configuration, rebuilds this session from a checkpoint."""

    @abstractmethod
    def loss(self, network, window, state) -> tuple[torch.Tensor, object, int]:
        """Mean training loss of one batch, the state to carry on, and the number of tokens."""

    @abstractmethod
    def evaluate(self, model) -> dict[str, float]:
        """Validation metrics; "loss" is what early stopping and checkpoints compare."""

    def report(self, metrics: dict[str, float], label: str = "validation") -> str:
        """One line of metrics on the data set named by ``label`` (validation, test, evaluation)."""
        return f"{label} loss {metrics['loss']:.4f}"

    def generate(self, prime: str, length: int, temperature: float = 1.0, top_k: int = 0, seed: int = 0,
                 beam_size: int = 0) -> str:
        raise UserError("this checkpoint's task does not generate text")

    def inspection_batch(self, size: int, length: int | None = None):
        """A window of ``size`` held-out sequences (``length`` steps where the task decides) for 'rnnkit inspect'."""
        raise UserError("this checkpoint's task cannot be inspected")

    def step_labels(self, window) -> list[str] | None:
        """What the first sequence of ``window`` reads at each step, as text (a char LM's characters), or None."""
        return None

    def finish(self) -> str:
        """Text to print when training ends (a sample, for generative tasks)."""
        return ""

    def test_summary(self) -> dict:
        """Entries for summary.json once training ends: {"test": metrics, "baseline": ...} where a task has them."""
        return {}


class Task(ABC):
    name: ClassVar[str]
    summary: ClassVar[str]  # one line for 'rnnkit tasks'
    config_class: ClassVar[type[RunConfig]]
    unit: ClassVar[str] = "tok"  # what the progress bar counts per second

    def default_config(self) -> RunConfig:
        return self.config_class()

    @abstractmethod
    def start(self, config: RunConfig, context: Distributed, device: torch.device) -> Session:
        """Read the data and build a fresh model."""

    @abstractmethod
    def restore(self, config: RunConfig, task_state: dict, device: torch.device) -> Session:
        """Rebuild a session (without training data) from a checkpoint's configuration and task state."""

    def evaluate_text(self, session: Session, path: str | None) -> dict[str, float]:
        """Metrics on a data file, or on the validation part of the training data (``rnnkit evaluate``)."""
        raise UserError(f"task {self.name!r} cannot be evaluated with 'rnnkit evaluate' yet")
