"""The commands of speech runs: ``predict`` (transcribe recordings) and ``evaluate`` (error rates on labelled utterances).

    rnnkit predict --checkpoint RUN a.wav b.flac [c.mfc] [--file LIST] [--format jsonl] [--beam-size K]
                   [--lm transcripts|none|FILE.arpa] [--lm-weight A] [--word-bonus B] [--n-best N]
    rnnkit evaluate --checkpoint RUN [--manifest FILE | --split test|validation] [--utterances errors.jsonl]
                    [the same decoding options]

Each input is a recording's path (WAV, FLAC, ...; .mfc for runs on AN4's features); each
record is ``{"audio", "duration", "transcript", "score"}`` (and ``"n_best"``, a list of
``{"transcript", "score"}``, with ``--n-best``). The decoding options default to the run's
own. ``predict`` prints the real-time factor (computing time / seconds of audio) to standard
error.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import torch

from rnnkit.errors import UserError
from rnnkit.metrics import utterance_errors
from rnnkit.tasks.base import CheckpointOptions, Command
from rnnkit.tasks.predict import PredictOptions, Predictor, predict_inputs, print_results, timed_predictions
from rnnkit.train.files import atomic_write_text


@dataclass
class DecodingOptions:
    """Decoding options of a command; unset ones are the run's (its --beam-size, --lm, ...)."""

    beam_size: int = 0
    """1: greedy; more: prefix beam search (0: the run's)."""
    lm: str | None = None
    """none, transcripts or an ARPA file (default: the run's)."""
    lm_weight: float | None = None
    """alpha, the language model's weight (default: the run's)."""
    word_bonus: float | None = None
    """beta, added per word (default: the run's)."""
    unknown_offset: float | None = None
    """gamma, added per word the language model does not know (default: the run's)."""
    n_best: int = 1
    """predict: this many best transcripts per input (with a beam)."""

    def over(self, decoding):
        """The run's decoding options (``decoding``, a CTCDecoding) with these set over them, checked."""
        changes = {name: value for name, value in (("lm", self.lm), ("lm_weight", self.lm_weight),
                                                   ("word_bonus", self.word_bonus),
                                                   ("unknown_offset", self.unknown_offset)) if value is not None}
        if self.beam_size:
            changes["beam_size"] = self.beam_size
        if changes.get("beam_size", decoding.beam_size) == 1 and "lm" not in changes:
            changes["lm"] = "none"  # greedy: the run's language model has nothing to weigh
            changes.setdefault("unknown_offset", 0.0)  # nor has its unknown-word offset
        chosen = replace(decoding, **changes, n_best=self.n_best)
        chosen.validate()
        return chosen


@dataclass
class SpeechPredictOptions(DecodingOptions, PredictOptions):
    machine_only = (*PredictOptions.machine_only, "lm")  # an ARPA file, or the run's own (named when it was trained)


@dataclass
class SpeechEvaluateOptions(DecodingOptions, CheckpointOptions):
    manifest: str | None = None
    """Labelled utterances (NeMo JSON lines, or CSV/TSV with path and transcript) instead of the run's own."""
    split: str = "test"
    """Without --manifest: the run's test or validation split (choose --lm-weight and --word-bonus on validation)."""
    utterances: str | None = None
    """Write every utterance's reference, transcript and errors to this JSON-lines file."""


def run_transcribe(session: Predictor, options: SpeechPredictOptions) -> None:
    """``rnnkit predict``: transcripts, and the real-time factor on standard error."""
    results, seconds = timed_predictions(session, options)
    mixed = sum(bool(result.get("mixed_down", False)) for result in results)
    if mixed:
        print(f"speech: {mixed} recording(s) had several channels, mixed down to one", file=sys.stderr)
    audio = sum(result.get("duration", 0.0) for result in results)
    print_results(session, results, options, seconds)
    if audio:
        print(f"real-time factor {seconds / audio:.4f} ({audio:.1f} s of audio in {seconds:.2f} s)", file=sys.stderr)


class SpeechEvaluator(Protocol):
    """What ``rnnkit evaluate`` needs from a speech session."""

    def labelled_utterances(self, manifest: str | None, split: str): ...

    def scores(self, model, examples, decoding) -> tuple[dict, list[str]]: ...

    def report(self, metrics: dict, label: str) -> str: ...


def run_evaluate(session, options: SpeechEvaluateOptions) -> None:
    """WER and CER on a manifest or on the run's test split, decoded as the options say."""
    if options.split not in ("test", "validation"):
        raise UserError(f"--split: expected test or validation, got {options.split!r}")
    decoding = options.over(session.config.decoding)
    examples = session.labelled_utterances(options.manifest, options.split)
    if examples is None:
        raise UserError("the run has no test split: pass labelled utterances with --manifest FILE")
    session.model.eval()
    started = time.perf_counter()
    with torch.no_grad():
        metrics, written = session.scores(session.model, examples, decoding)
    seconds = time.perf_counter() - started
    search = "greedy" if decoding.beam_size == 1 else (f"beam {decoding.beam_size}, lm {decoding.lm}" + (
        f" (weight {decoding.lm_weight:g}, word bonus {decoding.word_bonus:g}, unknown-word offset "
        f"{decoding.unknown_offset:g})" if decoding.lm != "none" else ""))
    print(f"{session.report(metrics, label='evaluation')}; {search}; {seconds:.1f} s")
    if options.utterances:
        write_utterance_errors(Path(options.utterances), utterance_errors(examples.texts, written, examples.names))
        print(f"wrote {options.utterances}", file=sys.stderr)


def write_utterance_errors(path: Path, errors: list[dict]) -> None:
    """One JSON object per utterance (``rnnkit.metrics.utterance_errors``), written atomically."""
    atomic_write_text(path, "".join(json.dumps(entry) + "\n" for entry in errors))


PREDICT = Command("transcripts of recordings given as arguments or listed in a file", SpeechPredictOptions,
                  run_transcribe, Predictor, records=predict_inputs, inputs="file")
EVALUATE = Command("word and character error rates on a manifest (--manifest) or on the run's test split",
                   SpeechEvaluateOptions, run_evaluate, SpeechEvaluator)
