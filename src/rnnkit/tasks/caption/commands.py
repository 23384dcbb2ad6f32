"""The commands of captioning runs: ``predict`` with the search's options and the attention figures, and ``evaluate``.

    rnnkit predict --checkpoint RUN image.png ... [--beam-size K] [--n-best N] [--show-attention out.png]
    rnnkit evaluate --checkpoint RUN [--captions FILE --images DIR] [--beam-size K]

A ``predict`` input is the path of an image (one per argument or per line of ``--file``); its
record is ``{"image", "caption", "score"}`` (and ``hypotheses`` with ``--n-best``). An image
that cannot be read is answered in its place; the others are still captioned.
``--show-attention PATH`` draws, for each image, where every word of its caption looked (to
PATH, or PATH's stem plus ``-1``, ``-2``, ... for several images).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from rnnkit.figures import image_attention_png
from rnnkit.tasks.base import CheckpointOptions, Command
from rnnkit.tasks.predict import (PredictOptions, Predictor, draw_attention, predict_inputs, print_results,
                                  timed_predictions)


@dataclass
class CaptionOptions(PredictOptions):
    beam_size: int = 0
    """Hypotheses kept per image (1: greedy; 0: the run's --beam-size)."""
    n_best: int = 1
    """Print this many best captions per image (at most the beam size)."""
    show_attention: str | None = None
    """Draw where each word of each caption looked to this PNG file (attention decoder); from Python
    (load_run(...).predict), each result holds the weights instead."""
    attention: bool = False
    """Keep each input's attention weights in its record (--format jsonl; attention models)."""

    machine_only = (*PredictOptions.machine_only, "show_attention")

    @property
    def wants_attention(self) -> bool:
        return bool(self.attention or self.show_attention)


@dataclass
class CaptionEvaluateOptions(CheckpointOptions):
    captions: str | None = None
    """A captions file to evaluate on (Flickr8k token, Karpathy or COCO form; default: the run's test split)."""
    images: str | None = None
    """The folder of the images --captions names."""
    beam_size: int = 0
    """Hypotheses kept per image (1: greedy; 0: the run's --beam-size)."""


class CaptionEvaluator(Protocol):
    """What ``rnnkit evaluate`` needs from a captioning session."""

    def decoding_with(self, beam_size: int): ...

    def labelled_images(self, captions: str | None, images: str | None): ...

    def final_metrics(self, examples, decoding) -> dict: ...

    def report(self, metrics: dict, label: str) -> str: ...


def run_evaluate(session: CaptionEvaluator, options: CaptionEvaluateOptions) -> None:
    """BLEU-1..4, CIDEr-D and exact match on a captions file, or on the run's test split."""
    examples = session.labelled_images(options.captions, options.images)
    print(session.report(session.final_metrics(examples, session.decoding_with(options.beam_size)), label="evaluation"))


def run_caption(session: Predictor, options: CaptionOptions) -> None:
    """``rnnkit predict``, and the attention figures of --show-attention."""
    results, seconds = timed_predictions(session, options)
    draw_attention(results, options.show_attention, options.attention, lambda attention: image_attention_png(
        torch.tensor(attention["pixels"], dtype=torch.uint8), attention["words"], torch.tensor(attention["weights"])))
    print_results(session, results, options, seconds)


CAPTION_EVALUATE = Command("BLEU-1..4, CIDEr-D and exact match on a captions file or on the run's test split",
                           CaptionEvaluateOptions, run_evaluate, CaptionEvaluator)
CAPTION_PREDICT = Command("captions of images named as arguments or in a file (beam search)", CaptionOptions,
                          run_caption, Predictor, records=predict_inputs, inputs="file")
