"""Word n-gram language models for CTC beam search: one read from an ARPA file, or one counted from transcripts.

Both answer ``log_prob(history, word)``: the natural log of P(word | the words before it), with
``END`` for the end of a sentence and the start of a sentence implied (``<s>``). Words are
lower case, as the transcripts are (``rnnkit.data.speech_corpora.normalise_transcript``).

ARPA (Doug Paul's format, what SRILM, KenLM and CMU's tools write): log10 probabilities
and back-off weights,

    P(w | h) = P_n(h, w)                      if the n-gram (h, w) is listed
             = backoff(h) * P(w | h minus its first word)   otherwise

with an unlisted word read as ``<unk>`` (CMU writes ``<UNK>``) where the model has one.

Counted (``CountedNGram``): interpolated absolute discounting (Ney et al. 1994) with discount
D, down to a uniform distribution over the vocabulary, ``<unk>`` and ``END``:

    P(w | h) = max(c(h, w) - D, 0) / c(h) + D * N1+(h .) / c(h) * P(w | h minus its first word)

so that every context's probabilities sum to one (tested).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Protocol

from rnnkit.data.text import read_text_file
from rnnkit.errors import UserError

START, END, UNKNOWN = "<s>", "</s>", "<unk>"
LN10 = math.log(10.0)


class WordScorer(Protocol):
    order: int

    def log_prob(self, history: tuple[str, ...], word: str) -> float: ...

    def known_words(self) -> set[str]:
        """The model's vocabulary: every other word is scored as ``<unk>`` (or as never, without one)."""
        ...


class ArpaModel:
    def __init__(self, probabilities: dict[tuple[str, ...], float], backoffs: dict[tuple[str, ...], float]) -> None:
        self.probabilities, self.backoffs = probabilities, backoffs  # log10, keyed by lower-cased n-grams
        self.order = max(len(ngram) for ngram in probabilities)
        self.unknown = next((name for name in (UNKNOWN,) if (name,) in probabilities), None)

    @classmethod
    def read(cls, path: str | Path) -> ArpaModel:
        path = Path(path)
        text = read_text_file(path, option="--lm")
        probabilities, backoffs, order = {}, {}, 0
        in_data = False
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.strip()
            if line == "\\data\\":
                in_data = True
                continue
            if not in_data or not line or line.startswith("ngram "):
                continue
            if line == "\\end\\":
                break
            if line.startswith("\\") and line.endswith("-grams:"):
                order = int(line[1:].split("-")[0])
                continue
            fields = line.split()
            if order == 0 or len(fields) not in (order + 1, order + 2):
                raise UserError(f"{path} line {number}: expected a log10 probability, {order} word(s) and an optional "
                                f"back-off weight, got {line!r}")
            try:
                values = [float(fields[0])] + ([float(fields[-1])] if len(fields) == order + 2 else [])
            except ValueError:
                raise UserError(f"{path} line {number}: {fields[0]!r} is not a number (an ARPA line starts with "
                                "a log10 probability)") from None
            ngram = tuple(word.lower() for word in fields[1 : 1 + order])
            probabilities[ngram] = values[0]
            if len(values) == 2:
                backoffs[ngram] = values[1]
        if not probabilities:
            raise UserError(f"{path}: no n-grams found; expected an ARPA file (\\data\\, \\1-grams:, ...)")
        return cls(probabilities, backoffs)

    def known_words(self) -> set[str]:
        return {ngram[0] for ngram in self.probabilities if len(ngram) == 1} - {START, END, self.unknown}

    def log_prob(self, history: tuple[str, ...], word: str) -> float:
        if (word,) not in self.probabilities and word != END:
            if self.unknown is None:
                return -99.0 * LN10  # ARPA's "never": what the file says of impossible words
            word = self.unknown
        context = ((START,) + tuple(history))[-(self.order - 1):] if self.order > 1 else ()
        return self._log10(context, word) * LN10

    def _log10(self, context: tuple[str, ...], word: str) -> float:
        ngram = context + (word,)
        if ngram in self.probabilities:
            return self.probabilities[ngram]
        if not context:
            return -99.0
        return self.backoffs.get(context, 0.0) + self._log10(context[1:], word)


class CountedNGram:
    """An n-gram model counted from sentences (the module docstring's interpolated absolute discounting)."""

    def __init__(self, sentences: list[list[str]], order: int = 3, discount: float = 0.75) -> None:
        if order < 1:
            raise UserError(f"--lm-order: expected a positive integer, got {order}")
        self.order, self.discount = order, discount
        self.vocabulary = sorted({word for sentence in sentences for word in sentence} | {UNKNOWN, END})
        self.counts: dict[tuple[str, ...], Counter] = defaultdict(Counter)  # context -> following word counts
        for sentence in sentences:
            padded = [START] * (order - 1) + list(sentence) + [END]
            for position in range(order - 1, len(padded)):
                for n in range(order):  # contexts of 0 .. order-1 words
                    self.counts[tuple(padded[position - n : position])][padded[position]] += 1
        self.totals = {context: sum(counts.values()) for context, counts in self.counts.items()}

    def known_words(self) -> set[str]:
        return set(self.vocabulary) - {UNKNOWN, END}

    def log_prob(self, history: tuple[str, ...], word: str) -> float:
        if word not in self.vocabulary:
            word = UNKNOWN
        context = (tuple([START] * (self.order - 1)) + tuple(history))[-(self.order - 1):] if self.order > 1 else ()
        return math.log(self.probability(context, word))

    def probability(self, context: tuple[str, ...], word: str) -> float:
        lower = self.probability(context[1:], word) if context else 1.0 / len(self.vocabulary)
        counts = self.counts.get(context)
        if not counts:
            return lower
        total = self.totals[context]
        return max(counts[word] - self.discount, 0.0) / total + self.discount * len(counts) / total * lower


def word_scorer(source: str, transcripts: list[str], order: int) -> WordScorer | None:
    """The language model ``--lm`` names: none, transcripts (counted from ``transcripts``) or an ARPA file's path."""
    if source == "none":
        return None
    if source == "transcripts":
        return CountedNGram([text.split() for text in transcripts], order)
    return ArpaModel.read(source)
