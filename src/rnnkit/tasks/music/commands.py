"""What a trained music model is used for: ``rnnkit generate`` (a piece sampled from it, as MIDI and/or a piano-roll
image) and ``rnnkit evaluate`` (NLL per frame and frame accuracy on the test split or a folder of MIDI files)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol

import torch

from rnnkit.data.piano_rolls import LOWEST_PITCH, midi_bytes
from rnnkit.errors import UserError
from rnnkit.figures import piano_roll_png
from rnnkit.tasks.base import CheckpointOptions, Command
from rnnkit.tasks.predict import answered_in_place
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

    machine_only = (*CheckpointOptions.machine_only, "out", "prime")  # over HTTP, a prime is an uploaded input

    def validate(self) -> None:
        if self.steps <= 0:
            raise UserError(f"--steps: expected a positive number of time steps, got {self.steps}")
        if self.temperature < 0:
            raise UserError(f"--temperature: expected a value >= 0, got {self.temperature}")


class PieceGenerator(Protocol):
    """What ``rnnkit generate`` needs from a music session."""

    def generate(self, prime: str | None, steps: int, temperature: float, seed: int) -> tuple[torch.Tensor, int]: ...

    def sampled_frames(self, prime: str | None, steps: int, temperature: float, seed: int): ...


def keys_down(frame: torch.Tensor) -> list[int]:
    """The MIDI pitches sounding in a piano-roll frame (K,)."""
    return [LOWEST_PITCH + int(key) for key in frame.nonzero().flatten()]


def piece_events(session: PieceGenerator, prime: str | None, options: GenerateOptions) -> Iterator[dict]:
    """{"frame": PITCHES} for each frame as it is sampled (after the prime's frames, sent first), then
    {"output": RECORD}: the piece's frames as pitches, its MIDI file in base64, and how many frames are the prime's."""
    options.validate()
    primed, frames = session.sampled_frames(prime or None, options.steps, options.temperature, options.seed)
    piece = list(primed)
    for frame in piece:
        yield {"frame": keys_down(frame)}
    for frame in frames:
        piece.append(frame)
        yield {"frame": keys_down(frame)}
    frame_seconds = session.config.dataset.frame_seconds
    midi = midi_bytes(torch.stack(piece), frame_seconds)
    yield {"output": {"prime": prime or "", "primed_steps": primed.shape[0], "frame_seconds": frame_seconds,
                      "frames": [keys_down(frame) for frame in piece], "midi": base64.b64encode(midi).decode("ascii")}}


def piece_records(session: PieceGenerator, primes: list[str | None], options: GenerateOptions,
                  where: list[str] | None = None) -> list[dict]:
    """The record of a piece sampled after each prime (a MIDI file's path; "" or None: a silent start);
    {"error": "WHERE: why"} in place of a prime that cannot be read."""
    return answered_in_place(primes, where, lambda prime: list(piece_events(session, prime, options))[-1]["output"])


def generate(session: PieceGenerator, options: GenerateOptions) -> None:
    options.validate()
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
                                GenerateOptions, generate, PieceGenerator, records=piece_records, stream=piece_events,
                                inputs="file", generated_length="steps"),
            "evaluate": Command("NLL per frame and frame accuracy on the test split or a folder of MIDI files",
                                EvaluateOptions, evaluate, PieceEvaluator)}
