"""What the tasks trained on labelled text files share (sst, ner): where the files are, how their splits are laid
out for training, and ``rnnkit evaluate`` on such a file.

``--data-dir DIR`` names a folder holding the task's train, validation and test files under
their usual names; ``--train FILE --dev FILE [--test FILE]`` name your own instead. A task's
dataset options extend ``SplitFiles`` with ``data_dir`` and their own options. Its session turns
read sentences into what the model reads (``examples(sentences, split)``), scores such examples
(``evaluate(model, examples)``) and reads a labelled file the way training read its own
(``labelled_file(path)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from rnnkit.data.sentence_batches import SentenceBatches
from rnnkit.data.splits import SPLITS
from rnnkit.errors import UserError
from rnnkit.tasks.base import CheckpointOptions, Command
from rnnkit.train.config import TrainConfig
from rnnkit.train.distributed import Distributed

OWN_FILES = {"train": "--train", "validation": "--dev", "test": "--test"}  # split -> the option naming your own file


@dataclass
class SplitFiles:
    train: str | None = None
    """Your own training file instead of --data-dir."""
    dev: str | None = None
    """Your own validation file (with --train)."""
    test: str | None = None
    """Your own test file (with --train; optional)."""

    def validate(self) -> None:
        if (self.dev or self.test) and not self.train:
            raise UserError("--dev/--test: give --train too (your own data), or none of them to use --data-dir")
        if self.train and not self.dev:
            raise UserError("--train: give a validation file with --dev as well (it chooses the best model)")

    def split_paths(self, data_dir: str, names: dict[str, str]) -> dict[str, tuple[Path, str]]:
        """(path, option that named it) of each split: your own files, or ``names[split]`` in ``data_dir``."""
        if self.train:
            own = {"train": self.train, "validation": self.dev, "test": self.test}
            return {split: (Path(path), OWN_FILES[split]) for split, path in own.items() if path}
        folder = Path(data_dir)
        listed = ", ".join(names[split] for split in SPLITS)
        if not folder.is_dir():
            raise UserError(f"--data-dir: {folder} is not a folder; pass the folder holding {listed}, or your own "
                            "files with --train FILE --dev FILE [--test FILE]")
        for split in SPLITS:
            if not (folder / names[split]).is_file():
                raise UserError(f"--data-dir: {folder} has no {names[split]}; it needs {listed} (or pass your own "
                                "files with --train/--dev/--test)")
        return {split: (folder / names[split], "--data-dir") for split in SPLITS}


def lay_out_splits(session, splits: dict[str, list], train: TrainConfig, context: Distributed) -> None:
    """Turn the read splits into examples with ``session.examples(sentences, split)``: validation and test (where
    given) as ``session.splits``, train as this process's shuffled ``session.batches``."""
    session.splits = {split: session.examples(splits[split], split) for split in ("validation", "test") if split in splits}
    examples = session.examples(splits["train"], "train")
    if len(examples.sentences) < train.batch_size * context.world_size:
        raise UserError(f"--batch-size: {len(examples.sentences)} training sentences cannot fill a batch of "
                        f"{train.batch_size} x {context.world_size} processes; lower --batch-size")
    session.batches = SentenceBatches(examples.sentences, examples.targets, train.batch_size, train.seed, context.rank,
                                      context.world_size)


@dataclass
class EvaluateOptions(CheckpointOptions):
    data: str | None = None
    """A labelled file in the format of the run's own files (default: the run's test split)."""


class FileEvaluator(Protocol):
    """What ``rnnkit evaluate`` on a labelled file needs from a session."""

    def labelled_file(self, path: str | None) -> object | None:
        """The examples of a labelled file, or of the run's test split (None if it had none)."""

    def evaluate(self, model, examples: object) -> dict: ...

    def report(self, metrics: dict, label: str) -> str: ...


def evaluate_file(session: FileEvaluator, options: EvaluateOptions) -> None:
    """``rnnkit evaluate``: the task's metrics on a labelled file, or on the run's own test split."""
    examples = session.labelled_file(options.data)
    if examples is None:
        raise UserError("the run was trained without --test: pass a labelled file with --data")
    session.model.eval()
    with torch.no_grad():
        print(session.report(session.evaluate(session.model, examples), label="evaluation"))


EVALUATE_FILE = Command("the metrics on a labelled file (--data) or on the run's test split", EvaluateOptions,
                        evaluate_file, FileEvaluator)
