"""``rnnkit predict``: a trained model's predictions for inputs given as arguments or read from a file.

    rnnkit predict --checkpoint RUN [INPUT ...] [--file FILE] [--format text|jsonl] [the task's options]

Predict means one thing for every task: each input gets one JSON-able record, in input order.
The command prints them (``text``: one line per input for people, ``describe``; ``jsonl``: one
JSON object per input for programs) and writes what the task's file options ask for (a
translation's attention figures, a forecast's CSV and PNG). From Python,
``rnnkit.tasks.load_run(RUN).predict(inputs, **options)`` returns the same records.

One input per argument or per line of FILE ('-' for standard input). Inputs are predicted in
batches (``--batch-size`` at a time, shortest first, ``input_length``). An input that cannot be
read is answered in its place (``error: ...``, or ``{"error": ...}``) and the others are still
predicted; the command then exits with status 2, naming the first. The speed (inputs per
second) goes to standard error when every input could be read.

A task supports predict by giving its session the methods of ``Predictor`` and ``PREDICT`` (or
a command of its own built from these functions) a place in its table of commands.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Callable, Protocol

import tyro

from rnnkit.data.text import read_text_file
from rnnkit.errors import UserError
from rnnkit.tasks.base import CheckpointOptions, Command
from rnnkit.train.files import atomic_write_bytes

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

    machine_only = (*CheckpointOptions.machine_only, "inputs", "file", "format", "batch_size")

    def validate(self) -> None:
        if self.format not in FORMATS:
            raise UserError(f"--format: expected one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.batch_size <= 0:
            raise UserError(f"--batch-size: expected a positive integer, got {self.batch_size}")


class Predictor(Protocol):
    """What ``rnnkit predict`` needs from a task's session."""

    def parse_input(self, text: str) -> object:
        """One input as the model reads it; ValueError (or UserError) saying what is wrong and how to fix it."""

    def input_length(self, parsed: object) -> int:
        """The size of a parsed input: inputs of similar sizes are batched together."""

    def predict(self, inputs: list, options: PredictOptions) -> list[dict]:
        """JSON-able records, one per parsed input, in order; ``options`` are the command's (a task's own extend
        ``PredictOptions``)."""

    def describe(self, result: dict) -> str:
        """One record as text for people."""


def read_inputs(options: PredictOptions) -> list[tuple[str, str]]:
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


def predict_inputs(session: Predictor, texts: list[str], options: PredictOptions,
                   where: list[str] | None = None) -> list[dict]:
    """The record of each text, in order; a text that cannot be read gets ``{"error": "WHERE: why"}`` in its place.

    Readable inputs are predicted ``options.batch_size`` at a time, in order of ``input_length``, so that a
    batch pads little."""
    where = where or [f"input {number}" for number in range(1, len(texts) + 1)]
    parsed, results = {}, {}
    for index, text in enumerate(texts):
        try:
            parsed[index] = session.parse_input(text)
        except (ValueError, UserError) as error:
            results[index] = {"error": f"{where[index]}: {error}"}
    readable = sorted(parsed, key=lambda index: session.input_length(parsed[index]))
    for start in range(0, len(readable), options.batch_size):
        indices = readable[start : start + options.batch_size]
        results.update(zip(indices, session.predict([parsed[index] for index in indices], options)))
    return [results[index] for index in range(len(texts))]


def answered_in_place(inputs: list, where: list[str] | None, record: Callable[[object], dict]) -> list[dict]:
    """``record(input)`` for each input, one at a time; ``{"error": "WHERE: why"}`` in place of one it cannot read."""
    where = where or [f"input {number}" for number in range(1, len(inputs) + 1)]
    results = []
    for one, place in zip(inputs, where):
        try:
            results.append(record(one))
        except (ValueError, UserError) as error:
            results.append({"error": f"{place}: {error}"})
    return results


def print_results(session: Predictor, results: list[dict], options: PredictOptions, seconds: float) -> None:
    """Print every record as ``--format`` says; a UserError naming the first that could not be read, if any."""
    for result in results:
        if "error" in result:
            print(json.dumps(result) if options.format == "jsonl" else f"error: {result['error']}")
        else:
            print(json.dumps(result) if options.format == "jsonl" else session.describe(result))
    errors = [result["error"] for result in results if "error" in result]
    if errors:  # the one line of a failed command
        raise UserError(f"{len(errors)} of {len(results)} inputs could not be read, answered in their place "
                        f"(first: {errors[0]})")
    print(f"predicted {len(results)} inputs in {seconds:.2f} s ({len(results) / seconds:,.1f} inputs/s)", file=sys.stderr)


def timed_predictions(session: Predictor, options: PredictOptions) -> tuple[list[dict], float]:
    """The records of every input ``options`` names (arguments, then --file), and the seconds they took."""
    options.validate()
    inputs = read_inputs(options)
    started = time.perf_counter()
    results = predict_inputs(session, [text for _, text in inputs], options, [where for where, _ in inputs])
    return results, time.perf_counter() - started


def draw_attention(results: list[dict], path: str | None, keep: bool, draw: Callable[[dict], bytes]) -> None:
    """With a ``path`` (--show-attention), write ``draw(attention)`` of each record's "attention" to it, or to its stem
    plus -1, -2, ... for several inputs; the records keep their attention only if ``keep`` (--attention)."""
    drawn = [result.get("attention") if keep else result.pop("attention", None) for result in results]
    if not path:
        return
    target = Path(path)
    for number, attention in enumerate(drawn, start=1):
        if attention is not None:
            out = target if len(drawn) == 1 else target.with_name(f"{target.stem}-{number}{target.suffix}")
            atomic_write_bytes(out, draw(attention))
            print(f"attention: {out}", file=sys.stderr)


def run_predict(session: Predictor, options: PredictOptions) -> None:
    results, seconds = timed_predictions(session, options)
    print_results(session, results, options, seconds)


PREDICT = Command("predictions of the trained model for inputs given as arguments or in a file", PredictOptions,
                  run_predict, Predictor, records=predict_inputs)
