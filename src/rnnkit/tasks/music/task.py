"""``music``: polyphonic music as piano rolls, next-frame prediction (one-to-many).

Data: the Boulanger-Lewandowski et al. (2012) piano rolls in ``--data-dir`` (``--dataset
jsb|nottingham|musedata|piano``; the splits are the files'), or a folder of your own MIDI
files (``--midi``), read at ``--frame-seconds`` per step and split by file (a fixed shuffle,
``--val-fraction``/``--test-fraction``). Each piece x_1..x_T trains the model to predict
x_2..x_T from the frames before them, the convention of the TCN repository the .mat files
come from.

Metric: the negative log-likelihood per time step (``nll``, nats: the sum over the 88 keys
of the binary cross-entropy, averaged over every predicted frame of the split), as
Boulanger-Lewandowski et al. and Chung et al. (2014) report it, and the frame-level accuracy
of Bay et al. (2009), TP / (TP + FP + FN) over all frames with keys predicted on at
probability > 1/2. The baseline is the training set's frequency of each key, ignoring time.
``rnnkit generate`` and ``rnnkit evaluate`` are in ``commands.py``.
"""

from __future__ import annotations

import random
from typing import Iterator
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rnnkit.data.batch import Batch
from rnnkit.data.piano_rolls import KEYS, NextFrames, read_mat_splits, read_midi, read_midi_folder
from rnnkit.data.sentence_batches import SentenceBatches, batches_by_length, collate
from rnnkit.data.splits import SPLITS
from rnnkit.errors import UserError
from rnnkit.layers import Recurrent
from rnnkit.metrics import frame_accuracy, frame_agreement, frequency_baseline_nll
from rnnkit.models.next_frame import NextFrameConfig, NextFrameModel, frame_nll
from rnnkit.tasks.base import RunConfig, Task
from rnnkit.tasks.music.commands import COMMANDS
from rnnkit.train.config import TrainConfig
from rnnkit.train.distributed import Distributed
from rnnkit.train.session import Monitor, Session

MUSIC_FOLDER = "../shared/data/polyphonic-music"
DATASETS = {"jsb": "JSB_Chorales.mat", "nottingham": "Nottingham.mat", "musedata": "MuseData.mat",
            "piano": "Piano_midi.mat"}
EVALUATION_BATCH = 64


@dataclass
class MusicData:
    dataset: str = "jsb"
    """jsb (JSB Chorales), nottingham, musedata or piano (Piano-midi.de): the .mat file in --data-dir."""
    data_dir: str = MUSIC_FOLDER
    """Folder with JSB_Chorales.mat, Nottingham.mat, MuseData.mat and Piano_midi.mat."""
    midi: str | None = None
    """A folder of your own MIDI files to train on instead of --dataset (split by file)."""
    frame_seconds: float = 0.25
    """Seconds per time step: reading MIDI files (--midi, generate --prime) and writing generated ones."""
    val_fraction: float = 0.1
    """--midi: the fraction of the files held out for validation."""
    test_fraction: float = 0.1
    """--midi: the fraction of the files held out for testing."""

    def validate(self) -> None:
        if self.dataset not in DATASETS:
            raise UserError(f"--dataset: expected one of {', '.join(DATASETS)}, got {self.dataset!r}")
        if not self.frame_seconds > 0:
            raise UserError(f"--frame-seconds: expected a positive duration, got {self.frame_seconds}")
        if not (0 < self.val_fraction < 1 and 0 <= self.test_fraction < 1 and self.val_fraction + self.test_fraction < 1):
            raise UserError("--val-fraction and --test-fraction: expected fractions in (0, 1) and [0, 1) summing to "
                            f"less than 1, got {self.val_fraction} and {self.test_fraction}")


@dataclass
class MusicConfig(RunConfig):
    # Chosen on JSB's validation NLL within a few minutes on one CPU thread (docs/benchmarks.md): small
    # batches (JSB has 229 pieces: more updates), the chain output (5.9 nats against 8.5 independent).
    model: NextFrameConfig = field(default_factory=lambda: NextFrameConfig(
        cell="gru", hidden_size=128, dropout=0.2, output="chain"))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        batch_size=4, optimizer="adam", lr=1e-3, schedule="plateau", gamma=0.5, plateau_patience=2, epochs=200,
        max_minutes=10.0, eval_every=200, clip_grad_norm=5.0, keep_best=True, precision="fp32"))
    dataset: MusicData = field(default_factory=MusicData)

    def validate(self) -> None:
        super().validate()
        if self.model.bidirectional:
            raise UserError("--bidirectional: a next-frame model reads only the past; drop the option")


def read_splits(data: MusicData) -> dict[str, list[torch.Tensor]]:
    """The piano rolls of each split: the .mat file's own splits, or the --midi folder's files split by a fixed shuffle."""
    if data.midi is None:
        return read_mat_splits(Path(data.data_dir) / DATASETS[data.dataset])
    pieces = [roll for _, roll in read_midi_folder(Path(data.midi), data.frame_seconds)]
    random.Random(0).shuffle(pieces)  # one fixed split, whatever the files' names
    validation, test = (max(1, round(len(pieces) * fraction)) if fraction else 0
                        for fraction in (data.val_fraction, data.test_fraction))  # at least one file each, where asked
    if len(pieces) <= validation + test:
        raise UserError(f"--midi: {data.midi} has {len(pieces)} MIDI files; with --val-fraction and --test-fraction it "
                        f"needs at least {validation + test + 1} (one to train on)")
    splits = {"validation": pieces[:validation], "test": pieces[validation : validation + test],
              "train": pieces[validation + test :]}
    return {split: rolls for split, rolls in splits.items() if rolls}


class MusicSession(Session):
    monitor = Monitor("nll", "min")
    unit = "frame"

    def __init__(self, config: MusicConfig, device: torch.device) -> None:
        self.config, self.device = config, device
        self.model = NextFrameModel(KEYS, config.model).to(device)
        self.batches = None
        self.splits: dict[str, NextFrames] = {}  # validation, test (where there is one)
        self.key_frequencies: torch.Tensor | None = None  # (88,) in the training frames: the baseline

    def task_state(self) -> dict:
        return {}

    def units_in(self, batch: Batch) -> int:
        return int(batch.lengths.sum())

    def loss_terms(self, batch: Batch) -> int:
        return int(batch.lengths.sum())  # the NLL per frame

    def evaluate(self, model, examples: NextFrames | None = None) -> dict[str, float]:
        """NLL per frame and frame accuracy on ``examples`` (default: the validation pieces)."""
        examples = examples or self.splits["validation"]
        nll, hits, misses = 0.0, 0, 0  # misses: false positives + false negatives
        for _, batch in batches_by_length(examples.inputs, examples.targets, EVALUATION_BATCH):
            batch = batch.to(self.device)
            logits, _, _ = model(batch.inputs, lengths=batch.lengths)
            total, _ = frame_nll(model.conditioned(logits, batch.targets), batch.targets, batch.lengths)
            nll += float(total)
            predicted = model.draw(logits, temperature=0) > 0.5  # the most likely frame (key by key for the chain)
            hits_b, misses_b = frame_agreement(predicted, batch.targets > 0.5, batch.lengths)
            hits, misses = hits + hits_b, misses + misses_b
        mean = nll / examples.frames
        return {"loss": mean, "nll": mean, "accuracy": frame_accuracy(hits, misses)}

    def test_summary(self) -> dict:
        if "test" not in self.splits:
            return {}
        self.model.eval()
        with torch.no_grad():
            summary = {"test": self.evaluate(self.model, self.splits["test"])}
        if self.key_frequencies is not None:
            summary["baseline"] = {"nll": frequency_baseline_nll(self.key_frequencies, self.splits["test"].targets),
                                   "what": "each key on with its frequency in the training frames, ignoring time"}
        return summary

    def report(self, metrics: dict[str, float], label: str = "validation") -> str:
        return f"{label} NLL {metrics['nll']:.4f} nats/frame, frame accuracy {metrics['accuracy']:.2%}"

    # ----------------------------------------------------------------- the commands (commands.py)
    def labelled_pieces(self, midi: str | None) -> NextFrames:
        """``rnnkit evaluate``'s data: a folder of MIDI files read at the run's frame length, or the run's test split."""
        data = self.config.dataset
        if midi:
            pieces = [roll for _, roll in read_midi_folder(Path(midi), data.frame_seconds)]
        else:
            pieces = read_splits(data).get("test")
            if pieces is None:
                raise UserError("the run was trained without a test split: pass a folder of MIDI files with --midi")
        examples = NextFrames.of(pieces)
        if examples.frames == 0:
            raise UserError("every piece to evaluate on is a single frame; nothing to predict")
        return examples

    def generate(self, prime: str | None, steps: int, temperature: float, seed: int) -> tuple[torch.Tensor, int]:
        """A piece of ``steps`` sampled frames after the frames of the MIDI file ``prime`` (default: after a silent
        frame, which is not kept), and how many of its frames are the prime's."""
        kept, frames = self.sampled_frames(prime, steps, temperature, seed)
        sampled = torch.stack(list(frames)) if steps else torch.zeros(0, KEYS)
        return torch.cat([kept, sampled]), kept.shape[0]

    def sampled_frames(self, prime: str | None, steps: int, temperature: float,
                       seed: int) -> tuple[torch.Tensor, Iterator[torch.Tensor]]:
        """``generate``'s piece as it is produced: the prime's frames (P, K) (none without a prime), and the sampled
        frames (K,) one at a time."""
        primed = read_midi(Path(prime), self.config.dataset.frame_seconds) if prime else torch.zeros(1, KEYS)
        self.model.eval()
        generator = torch.Generator().manual_seed(seed)
        frames = (frame.cpu() for frame in self.model.sampled_frames(primed.to(self.device), steps, temperature,
                                                                     generator))
        return (primed if prime else primed[:0]), frames

    # ----------------------------------------------------------------- rnnkit inspect (rnnkit.inspect.source.Inspectable)
    def recurrent_layers(self) -> Recurrent:
        return self.model.rnn

    def inspection_batch(self, size: int, length: int | None = None) -> Batch:
        """The first ``size`` validation pieces (read from the run's data when restored), padded."""
        examples = self.splits.get("validation") or NextFrames.of(read_splits(self.config.dataset)["validation"])
        return collate(examples.inputs[:size], examples.targets[:size])

    def step_labels(self, batch: Batch) -> None:
        return None


class MusicTask(Task):
    name = "music"
    summary = "polyphonic music (one-to-many): next piano-roll frame on JSB/Nottingham/MuseData/Piano-midi or your MIDI files"
    config_class = MusicConfig
    session_class = MusicSession
    commands = COMMANDS

    def start(self, config: MusicConfig, context: Distributed, device: torch.device) -> MusicSession:
        pieces = read_splits(config.dataset)
        session = MusicSession(config, device)
        session.splits = {split: NextFrames.of(pieces[split]) for split in ("validation", "test") if split in pieces}
        train = NextFrames.of(pieces["train"])
        if len(train.inputs) < config.train.batch_size * context.world_size:
            raise UserError(f"--batch-size: {len(train.inputs)} training pieces cannot fill a batch of "
                            f"{config.train.batch_size} x {context.world_size} processes; lower --batch-size")
        session.key_frequencies = torch.cat(pieces["train"]).mean(0)
        session.batches = SentenceBatches(train.inputs, train.targets, config.train.batch_size, config.train.seed,
                                          context.rank, context.world_size)
        where = config.dataset.midi or Path(config.dataset.data_dir) / DATASETS[config.dataset.dataset]
        counts = ", ".join(f"{split} {len(pieces[split])}" for split in SPLITS if split in pieces)
        print(f"music: {where}: pieces {counts}; {train.frames:,} training frames", file=sys.stderr)
        return session

    def restore(self, config: MusicConfig, task_state: dict, device: torch.device) -> MusicSession:
        return MusicSession(config, device)
