"""What a trained music model is used for: ``rnnkit generate`` (a piece sampled from it, as MIDI and/or a piano-roll
image) and ``rnnkit evaluate`` (NLL per frame and frame accuracy on the test split or a folder of MIDI files)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from rnnkit.data.piano_rolls import LOWEST_PITCH, midi_bytes
from rnnkit.errors import UserError
from rnnkit.figures import piano_roll_png
from rnnkit.tasks.base import CheckpointOptions, Command
from rnnkit.train.files import atomic_write_bytes

OUTPUTS = {".mid": "MIDI", ".midi": "MIDI", ".png": "piano-roll image"}


@dataclass
class GenerateOptions(CheckpointOptions):
    steps: int = 128
    """Time steps to generate (after the prime)."""
    out: tuple[str, ...] = ("song.mid",)
    """Files to write: .mid/.midi (a MIDI file) and/or .png (the piano roll drawn)."""
    prime: str | None = None
    """A MIDI file to continue (read at the run's --frame-seconds); default: start from a silent frame."""
    temperature: float = 1.0
    """Sampling temperature of every key's Bernoulli: lower is more conservative; 0 keeps the keys over 1/2."""
    seed: int = 0
    """Random seed of the sampling."""


class PieceGenerator(Protocol):
    """What ``rnnkit generate`` needs from a music session."""

    def generate(self, prime: str | None, steps: int, temperature: float, seed: int) -> tuple[torch.Tensor, int]: ...


def generate(session: PieceGenerator, options: GenerateOptions) -> None:
    if options.steps <= 0:
        raise UserError(f"--steps: expected a positive number of time steps, got {options.steps}")
    if options.temperature < 0:
        raise UserError(f"--temperature: expected a value >= 0, got {options.temperature}")
    outputs = [Path(path) for path in options.out]
    for path in outputs:
        if path.suffix.lower() not in OUTPUTS:
            raise UserError(f"--out: {path} has an unknown suffix; expected {', '.join(OUTPUTS)}")
        if not path.parent.is_dir():
            raise UserError(f"--out: the folder {path.parent} does not exist")
    piece, primed_steps = session.generate(options.prime, options.steps, options.temperature, options.seed)
    frame_seconds = session.config.dataset.frame_seconds
    for path in outputs:
        if OUTPUTS[path.suffix.lower()] == "MIDI":
            data = midi_bytes(piece, frame_seconds)
        else:
            title = f"{options.steps} steps sampled at temperature {options.temperature}" + (
                f" after {options.prime}" if options.prime else "")
            data = piano_roll_png(piece, LOWEST_PITCH, title, primed_steps)
        atomic_write_bytes(path, data)
        print(f"wrote {path} ({OUTPUTS[path.suffix.lower()]}, {piece.shape[0]} steps of {frame_seconds} s)")


@dataclass
class EvaluateOptions(CheckpointOptions):
    midi: str | None = None
    """A folder of MIDI files to evaluate on, read at the run's --frame-seconds (default: the run's test split)."""


class PieceEvaluator(Protocol):
    """What ``rnnkit evaluate`` needs from a music session."""

    def labelled_pieces(self, midi: str | None): ...

    def evaluate(self, model, examples) -> dict: ...

    def report(self, metrics: dict, label: str) -> str: ...


def evaluate(session: PieceEvaluator, options: EvaluateOptions) -> None:
    examples = session.labelled_pieces(options.midi)
    session.model.eval()
    with torch.no_grad():
        print(session.report(session.evaluate(session.model, examples), label="evaluation"))


COMMANDS = {"generate": Command("a piece sampled from the trained model, as MIDI and/or a piano-roll image",
                                GenerateOptions, generate, PieceGenerator),
            "evaluate": Command("NLL per frame and frame accuracy on the test split or a folder of MIDI files",
                                EvaluateOptions, evaluate, PieceEvaluator)}
