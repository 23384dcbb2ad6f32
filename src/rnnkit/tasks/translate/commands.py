"""The commands of translation runs: ``predict`` with the search's options and what to show of it, and ``evaluate``.

    rnnkit predict --checkpoint RUN "ein mann fährt fahrrad ." [--beam-size K] [--n-best N]
                   [--show-attention out.png]
    rnnkit evaluate --checkpoint RUN [--source FILE --target FILE] [--beam-size K]

``--n-best N`` adds each sentence's N best hypotheses (``hypotheses`` in jsonl);
``--show-attention PATH`` draws each input's attention matrix (source words across, target
words down) to PATH, or to PATH's stem plus ``-1``, ``-2``, ... for several inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from rnnkit.figures import attention_png
from rnnkit.errors import UserError
from rnnkit.tasks.base import CheckpointOptions, Command
from rnnkit.tasks.predict import (PredictOptions, Predictor, draw_attention, predict_inputs, print_results,
                                  timed_predictions)


@dataclass
class TranslateOptions(PredictOptions):
    beam_size: int = 0
    """Hypotheses kept per sentence (1: greedy; 0: the run's --beam-size)."""
    n_best: int = 1
    """Print this many best hypotheses per sentence (at most the beam size)."""
    show_attention: str | None = None
    """Draw each input's attention matrix to this PNG file (attention models); from Python (load_run(...).predict),
    each result holds the weights instead."""
    attention: bool = False
    """Keep each input's attention weights in its record (--format jsonl; attention models)."""

    machine_only = (*PredictOptions.machine_only, "show_attention")

    @property
    def wants_attention(self) -> bool:
        return bool(self.attention or self.show_attention)


@dataclass
class TranslateEvaluateOptions(CheckpointOptions):
    source: str | None = None
    """Sentences to translate, one per line (default: the run's test split)."""
    target: str | None = None
    """Their reference translations, line by line."""
    beam_size: int = 0
    """Hypotheses kept per sentence (1: greedy; 0: the run's --beam-size)."""


class TranslationEvaluator(Protocol):
    """What ``rnnkit evaluate`` needs from a translation session."""

    def decoding_with(self, beam_size: int): ...

    def labelled_pairs(self, source: str | None, target: str | None): ...

    def final_metrics(self, examples, decoding) -> dict: ...

    def report(self, metrics: dict, label: str) -> str: ...


def run_evaluate(session: TranslationEvaluator, options: TranslateEvaluateOptions) -> None:
    """BLEU, chrF and perplexity on a source file and its references, or on the run's test split."""
    decoding = session.decoding_with(options.beam_size)
    examples = session.labelled_pairs(options.source, options.target)
    if examples is None:
        raise UserError("the run was trained without a test split: pass --source FILE --target FILE")
    print(session.report(session.final_metrics(examples, decoding), label="evaluation"))


def run_translate(session: Predictor, options: TranslateOptions) -> None:
    """``rnnkit predict``, and the attention figures of --show-attention."""
    results, seconds = timed_predictions(session, options)
    draw_attention(results, options.show_attention, options.attention, lambda attention: attention_png(
        torch.tensor(attention["weights"]), attention["source"], attention["target"]))
    print_results(session, results, options, seconds)


TRANSLATE_EVALUATE = Command("BLEU, chrF and perplexity on --source/--target files or on the run's test split",
                             TranslateEvaluateOptions, run_evaluate, TranslationEvaluator)
TRANSLATE_PREDICT = Command("translations of sentences given as arguments or in a file (beam search)", TranslateOptions,
                            run_translate, Predictor, records=predict_inputs)
