"""``digits``: classify 8x8 handwritten digits read one pixel per step (many-to-one), optionally permuted.

A small offline stand-in for sequential and permuted-sequential MNIST: 1,797 images from
scikit-learn, 64 steps each, stratified 70/10/20 train/validation/test split fixed by
--split-seed. With --permute the pixels come in a fixed random order, which puts
neighbouring pixels far apart in time. The baseline is the majority class's share of the
test set.

``rnnkit predict`` reads one image per input: 64 comma-separated pixel values from 0 to 16
(a row of ``load_digits().data``), in row-major order; the run's permutation is applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from rnnkit.data.whole_sequences import ShuffledBatches
from rnnkit.data.digits import DIGIT_CLASSES, digit_sequences, load_digit_sequences, parse_digit_image
from rnnkit.errors import UserError
from rnnkit.metrics import accuracy
from rnnkit.models import RecurrentConfig, SequenceModel
from rnnkit.tasks.base import RunConfig
from rnnkit.tasks.fixed_sets import LabelledSet, SequenceSession, SequenceTask
from rnnkit.tasks.predict import PREDICT, PredictOptions
from rnnkit.train.config import TrainConfig


@dataclass
class DigitsData:
    permute: bool = False
    """Read the pixels in a fixed random order (permuted sequential digits)."""
    permutation_seed: int = 0
    """Seed of that order."""
    split_seed: int = 0
    """Seed of the stratified train/validation/test split."""


@dataclass
class DigitsConfig(RunConfig):
    model: RecurrentConfig = field(default_factory=lambda: RecurrentConfig(cell="lstm", hidden_size=128))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(batch_size=32, lr=2e-3, max_minutes=2.0, eval_every=100))
    dataset: DigitsData = field(default_factory=DigitsData)


class DigitsSession(SequenceSession):
    def metrics(self, outputs, targets):
        return {"accuracy": accuracy(outputs.argmax(-1), targets)}  # outputs: (B, 10) logits

    # rnnkit predict (rnnkit.tasks.predict.Predictor)
    def parse_input(self, text: str) -> torch.Tensor:
        return parse_digit_image(text)

    def input_length(self, parsed: torch.Tensor) -> int:
        return parsed.numel()  # every image has 64 pixels

    def predict(self, inputs: list[torch.Tensor], options: PredictOptions) -> list[dict]:
        data = self.config.dataset
        sequences = digit_sequences(torch.stack(inputs), data.permute, data.permutation_seed)  # (64, N, 1)
        self.model.eval()
        with torch.no_grad():
            logits, _, _ = self.model(sequences.to(self.device))
        probabilities = torch.softmax(logits.float(), dim=-1).cpu()
        return [{"label": str(int(row.argmax())), "probabilities": {str(digit): float(p) for digit, p in enumerate(row)}}
                for row in probabilities]

    def describe(self, result: dict) -> str:
        return f"{result['label']} ({result['probabilities'][result['label']]:.3f})"

    def baseline(self) -> dict[str, float]:
        majority = int(torch.bincount(self.test.targets, minlength=DIGIT_CLASSES).max())
        return {"accuracy": majority / self.test.targets.numel(), "what": "always answer the most frequent class"}

    def report(self, metrics: dict[str, float], label: str = "validation") -> str:
        return f"{label} cross-entropy {metrics['loss']:.4f}, accuracy {metrics['accuracy']:.2%}"


class DigitsTask(SequenceTask):
    name = "digits"
    summary = "scikit-learn digits read pixel by pixel (many-to-one classification, 64 steps, --permute)"
    config_class = DigitsConfig
    session_class = DigitsSession
    commands = {**SequenceTask.commands, "predict": PREDICT}  # an input: 64 comma-separated pixel values 0..16

    def start(self, config: DigitsConfig, context, device, with_training_data: bool = True) -> DigitsSession:
        data = config.dataset
        splits = load_digit_sequences(data.permute, data.split_seed, data.permutation_seed)
        model = SequenceModel(1, DIGIT_CLASSES, config.model, sequence_length=splits["train"].inputs.shape[0])
        validation, test = (LabelledSet(splits[name].inputs, splits[name].labels) for name in ("validation", "test"))
        batches = None
        if with_training_data:
            train = splits["train"]
            world_size = context.world_size
            if train.labels.numel() < config.train.batch_size * world_size:
                raise UserError(f"--batch-size: {train.labels.numel()} training images cannot fill a batch of "
                                f"{config.train.batch_size} x {world_size} processes; lower --batch-size")
            batches = ShuffledBatches(train.inputs, train.labels, config.train.batch_size, config.train.seed,
                                      context.rank, world_size)
        return DigitsSession(config, model, device, validation, test, batches)
