"""``rnnkit predict``: a trained model's predictions for inputs given as arguments or read from a file.

    rnnkit predict --checkpoint RUN [INPUT ...] [--file FILE] [--format text|jsonl]

One input per argument or per line of FILE ('-' for standard input). The inputs are read,
predicted in batches (``--batch-size`` at a time; sorted by length where inputs differ in
length) and printed in input order: ``text`` is one line per input for people, ``jsonl`` one
JSON object per input for programs. The speed (inputs per second) goes to standard error
when every input could be read.
An input that cannot be read is answered in its place (``error: ...``, or ``{"error": ...}``)
and the others are still predicted; the command then exits with status 2, naming the first.

A task supports the command by giving its session the three methods of ``Predictor`` and
``PREDICT`` a place in its table of commands. ``predict_texts`` is the same without the
command line (``rnnkit.tasks.load_run(RUN).predict([...])``).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from typing import Annotated, Callable, Protocol

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

    # Optional: ``input_length(parsed) -> int``, the size of a parsed input; inputs are then batched by length.


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


def predict_texts(session: Predictor, texts: list[str], batch_size: int = 256,
                  where: list[str] | None = None) -> list[dict]:
    """The result of each text, in order; a text that cannot be read gets ``{"error": "WHERE: why"}`` in its place.

    Readable inputs are predicted ``batch_size`` at a time; where the session says how long an
    input is (``input_length``), in order of length, so that a batch pads little.
    """
    where = where or [f"input {number}" for number in range(1, len(texts) + 1)]
    parsed, results = {}, {}
    for index, text in enumerate(texts):
        try:
            parsed[index] = session.parse_input(text)
        except ValueError as error:
            results[index] = {"error": f"{where[index]}: {error}"}
    length = getattr(session, "input_length", None)
    readable = sorted(parsed, key=lambda index: length(parsed[index])) if length else sorted(parsed)
    for start in range(0, len(readable), batch_size):
        indices = readable[start : start + batch_size]
        results.update(zip(indices, session.predict([parsed[index] for index in indices])))
    return [results[index] for index in range(len(texts))]


def run_predict(session: Predictor, options: PredictOptions,
                finish: Callable[[list[dict]], None] | None = None) -> None:
    """Predict, then print; ``finish`` sees the results first (a task's command draws figures from them, and may
    remove what is not to be printed)."""
    if options.format not in FORMATS:
        raise UserError(f"--format: expected one of {', '.join(FORMATS)}, got {options.format!r}")
    if options.batch_size <= 0:
        raise UserError(f"--batch-size: expected a positive integer, got {options.batch_size}")
    inputs = _read_inputs(options)
    started = time.perf_counter()
    results = predict_texts(session, [text for _, text in inputs], options.batch_size, [where for where, _ in inputs])
    seconds = time.perf_counter() - started
    if finish is not None:
        finish(results)
    for result in results:
        if "error" in result:
            print(json.dumps(result) if options.format == "jsonl" else f"error: {result['error']}")
        else:
            print(json.dumps(result) if options.format == "jsonl" else session.describe(result))
    errors = [result["error"] for result in results if "error" in result]
    if errors:  # the one line of a failed command
        raise UserError(f"{len(errors)} of {len(inputs)} inputs could not be read, answered in their place (first: {errors[0]})")
    print(f"predicted {len(inputs)} inputs in {seconds:.2f} s ({len(inputs) / seconds:,.1f} inputs/s)", file=sys.stderr)


PREDICT = Command("predictions of the trained model for inputs given as arguments or in a file", PredictOptions,
                  run_predict)
