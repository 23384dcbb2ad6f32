"""``adding``: the adding problem, the classic test of memory over T steps (many-to-one regression).

Two of T random values are marked; the model must output their sum after the last step
(format in ``rnnkit.data.memory_tasks``). Answering 1 whatever the input scores MSE 1/6,
so a model below that remembers something; "solved" means test MSE below 0.01.
Fresh sequences at every step; validation and test sets are fixed by their own seeds,
the same for every run, whatever --seed says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch

from rnnkit.data.memory_tasks import ADDING_BASELINE_MSE, ADDING_MIN_LENGTH, adding_problem
from rnnkit.metrics import solved_fraction
from rnnkit.models import RecurrentConfig, SequenceModel
from rnnkit.tasks.base import RunConfig
from rnnkit.tasks.fixed_sets import SequenceSession, SequenceTask
from rnnkit.tasks.synthetic_data import SyntheticData, synthetic_train_config
from rnnkit.train.config import TrainConfig

SOLVED_MSE = 0.01


@dataclass
class AddingData(SyntheticData):
    minimum_length: ClassVar[int] = ADDING_MIN_LENGTH
    task_description: ClassVar[str] = "the adding problem (one marker in each half)"


@dataclass
class AddingConfig(RunConfig):
    model: RecurrentConfig = field(default_factory=lambda: RecurrentConfig(cell="lstm", hidden_size=128))
    train: TrainConfig = field(default_factory=synthetic_train_config)
    dataset: AddingData = field(default_factory=AddingData)


class AddingSession(SequenceSession):
    def metrics(self, outputs, targets):
        return {"solved_fraction": solved_fraction(outputs.float().squeeze(-1), targets, SOLVED_MSE)}  # (B,) each

    def baseline(self) -> dict[str, float]:
        return {"loss": ADDING_BASELINE_MSE, "what": "always answer 1, the expected sum"}

    def report(self, metrics: dict[str, float], label: str = "validation") -> str:
        verdict = ("solved" if metrics["loss"] < SOLVED_MSE
                   else "below the baseline" if metrics["loss"] < ADDING_BASELINE_MSE else "not below the baseline")
        return (f"{label} MSE {metrics['loss']:.5f} ({verdict}; always-1 baseline 1/6 = {ADDING_BASELINE_MSE:.4f}, "
                f"solved < {SOLVED_MSE})")


class AddingTask(SequenceTask):
    name = "adding"
    summary = "adding problem (many-to-one regression over T steps, --seq-len); MSE against the 1/6 baseline"
    config_class = AddingConfig
    session_class = AddingSession

    def start(self, config: AddingConfig, context, device, with_training_data: bool = True) -> AddingSession:
        data = config.dataset

        def sample(count: int, generator: torch.Generator):
            return adding_problem(count, data.seq_len, generator)

        model = SequenceModel(2, 1, config.model, sequence_length=data.seq_len, loss="mse")
        validation, test = data.fixed_sets(sample)
        batches = data.training_batches(sample, config.train, context) if with_training_data else None
        return AddingSession(config, model, device, validation, test, batches)
