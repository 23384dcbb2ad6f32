"""``rnnkit predict``: a trained model's predictions for inputs given as arguments or read from a file.

    rnnkit predict --checkpoint RUN [INPUT ...] [--file FILE] [--format text|jsonl]

One input per argument or per line of FILE ('-' for standard input). The inputs are read,
predicted in batches (``--batch-size`` at a time, in order) and printed in input order:
``text`` is one line per input for people, ``jsonl`` one JSON object per input for programs.
An input that cannot be read is answered in its place (``error: ...``, or ``{"error": ...}``)
and the others are still predicted; the command then exits with status 2, naming the first.

A task supports the command by giving its session the three methods of ``Predictor`` and
``PREDICT`` a place in its table of commands.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Annotated, Protocol

import tyro

from rnnkit.data.text import read_text_file
from rnnkit.errors import UserError
from rnnkit.tasks.base import CheckpointOptions, Command

FORMATS = ("text", "jsonl")


@dataclass
class PredictOptions(CheckpointOptions):
    inputs: Annotated[tuple[str, ...], tyro.conf.Positional, tyro.conf.arg(metavar="INPUT ...")] = ()
    """Inputs, one per argument (their format depends on the task)."""
    file: str | None = None
    """Read inputs from this UTF-8 file, one per line ('-': standard input)."""
    format: str = "text"
    """text (one line per input, for people) or jsonl (one JSON object per input, in input order)."""
    batch_size: int = 256
    """Inputs per forward pass."""


class Predictor(Protocol):
    """What a task's session provides for ``rnnkit predict``."""

    def parse_input(self, text: str) -> object:
        """One input as the model reads it; ValueError saying what is wrong and how to fix it."""

    def predict(self, inputs: list) -> list[dict]:
        """JSON-able results, one per input, in order."""

    def describe(self, result: dict) -> str:
        """One result as one line for people."""


def _read_inputs(options: PredictOptions) -> list[tuple[str, str]]:
    """(where, text) of every input: arguments first, then the lines of --file."""
    inputs = [(f"input {number}", text) for number, text in enumerate(options.inputs, start=1)]
    if options.file is not None:
        if options.file == "-":
            content, name = sys.stdin.read(), "standard input"
        else:
            content, name = read_text_file(options.file, option="--file"), options.file
        inputs += [(f"{name} line {number}", line) for number, line in enumerate(content.splitlines(), start=1)]
    if not inputs:
        raise UserError("no inputs: give them as arguments, or one per line with --file FILE ('-' for standard input)")
    return inputs


def run_predict(session: Predictor, options: PredictOptions) -> None:
    if options.format not in FORMATS:
        raise UserError(f"--format: expected one of {', '.join(FORMATS)}, got {options.format!r}")
    if options.batch_size <= 0:
        raise UserError(f"--batch-size: expected a positive integer, got {options.batch_size}")
    inputs = _read_inputs(options)
    parsed, errors = {}, {}
    for index, (where, text) in enumerate(inputs):
        try:
            parsed[index] = session.parse_input(text)
        except ValueError as error:
            errors[index] = f"{where}: {error}"
    readable = sorted(parsed)
    results = {}
    for start in range(0, len(readable), options.batch_size):
        indices = readable[start : start + options.batch_size]
        results.update(zip(indices, session.predict([parsed[index] for index in indices])))
    for index in range(len(inputs)):
        if index in errors:
            line = json.dumps({"error": errors[index]}) if options.format == "jsonl" else f"error: {errors[index]}"
        else:
            line = json.dumps(results[index]) if options.format == "jsonl" else session.describe(results[index])
        print(line)
    if errors:
        first = errors[min(errors)]
        raise UserError(f"{len(errors)} of {len(inputs)} inputs could not be read, answered in their place (first: {first})")


PREDICT = Command("predictions of the trained model for inputs given as arguments or in a file", PredictOptions,
                  run_predict)
