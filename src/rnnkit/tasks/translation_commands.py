"""The commands of translation runs: ``predict`` with the search's options and what to show of it, and ``evaluate``.

    rnnkit predict --checkpoint RUN "ein mann fährt fahrrad ." [--beam-size K] [--n-best N]
                   [--show-attention out.png]
    rnnkit evaluate --checkpoint RUN [--source FILE --target FILE] [--beam-size K]

``--n-best N`` adds each sentence's N best hypotheses (``hypotheses`` in jsonl);
``--show-attention PATH`` draws each input's attention matrix (source words across, target
words down) to PATH, or to PATH's stem plus ``-1``, ``-2``, ... for several inputs.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

from rnnkit.errors import UserError
from rnnkit.tasks.base import CheckpointOptions, Command
from rnnkit.tasks.predict import PredictOptions, run_predict


@dataclass
class TranslateOptions(PredictOptions):
    beam_size: int = 0
    """Hypotheses kept per sentence (1: greedy; 0: the run's --beam-size)."""
    n_best: int = 1
    """Print this many best hypotheses per sentence (at most the beam size)."""
    show_attention: str | None = None
    """Draw each input's attention matrix to this PNG file (attention models)."""


@dataclass
class TranslateEvaluateOptions(CheckpointOptions):
    source: str | None = None
    """Sentences to translate, one per line (default: the run's test split)."""
    target: str | None = None
    """Their reference translations, line by line."""
    beam_size: int = 0
    """Hypotheses kept per sentence (1: greedy; 0: the run's --beam-size)."""


def _beam_size(session, requested: int) -> int:
    if requested < 0:
        raise UserError(f"--beam-size: expected a positive number of hypotheses (0: the run's), got {requested}")
    return requested or session.decoding.beam_size


def run_evaluate(session, options: TranslateEvaluateOptions) -> None:
    """BLEU, chrF and perplexity on a source file and its references, or on the run's test split."""
    decoding = replace(session.decoding, beam_size=_beam_size(session, options.beam_size))
    data = session.labelled_pairs(options.source, options.target)
    if data is None:
        raise UserError("the run was trained without a test split: pass --source FILE --target FILE")
    print(session.report(session.final_metrics(data, decoding), label="evaluation"))


def run_translate(session, options: TranslateOptions) -> None:
    if options.n_best <= 0:
        raise UserError(f"--n-best: expected a positive number of hypotheses, got {options.n_best}")
    beam_size = _beam_size(session, options.beam_size)
    if options.n_best > beam_size:
        raise UserError(f"--n-best: at most the beam size ({beam_size}) hypotheses are kept; raise --beam-size")
    if options.show_attention and session.config.model.architecture != "attention":
        raise UserError(f"--show-attention: this run's model ({session.config.model.architecture}) has no attention")
    session.decoding = replace(session.decoding, beam_size=beam_size)
    session.n_best, session.keep_attention = options.n_best, bool(options.show_attention)
    drawn: list[Path] = []
    run_predict(session, options, finish=lambda results: drawn.extend(_draw_attention(results, options.show_attention)))
    for path in drawn:
        print(f"attention: {path}", file=sys.stderr)


def _draw_attention(results: list[dict], path: str | None) -> list[Path]:
    """Draw (and remove from the results) each result's attention; the files written."""
    matrices = [result.pop("attention", None) for result in results]
    if path is None:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    target = Path(path)
    written = []
    for number, attention in enumerate(matrices, start=1):
        if attention is None:
            continue
        out = target if len(matrices) == 1 else target.with_name(f"{target.stem}-{number}{target.suffix}")
        weights = attention["weights"].numpy()
        figure, axes = plt.subplots(figsize=(1 + 0.4 * weights.shape[1], 1 + 0.4 * weights.shape[0]))
        axes.imshow(weights, cmap="Greys", vmin=0.0, vmax=1.0)
        axes.set_xticks(range(len(attention["source"])), attention["source"], rotation=90)
        axes.set_yticks(range(len(attention["target"])), attention["target"])
        axes.set_xlabel("source")
        axes.set_ylabel("translation")
        figure.tight_layout()
        figure.savefig(out, dpi=100)
        plt.close(figure)
        written.append(out)
    return written


TRANSLATE_EVALUATE = Command("BLEU, chrF and perplexity on --source/--target files or on the run's test split",
                             TranslateEvaluateOptions, run_evaluate)
TRANSLATE_PREDICT = Command("translations of sentences given as arguments or in a file (beam search)", TranslateOptions,
                            run_translate)
