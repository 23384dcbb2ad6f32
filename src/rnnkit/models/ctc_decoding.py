"""Turning CTC posteriors into text: greedy (best path) decoding, and prefix beam search with a word language model.

A CTC output is a distribution over the labels plus a blank (label 0) at every step; a path
of labels maps to a text by merging repeats and then dropping blanks (``collapse``):
``a a - b - - b`` -> ``abb``. Greedy decoding collapses the most likely label of each step.

Prefix beam search (Graves 2012; Hannun et al. 2014, "First-pass large vocabulary continuous
speech recognition using bi-directional recurrent DNNs") keeps the ``beam_size`` best prefixes,
each with the probability of the paths that produce it ending in a blank (p_b) and in its
last label (p_nb), so that paths which collapse to the same prefix are summed. A word
language model enters as each word is completed (the prefix gains a space after a letter) and
at the end, for the last word and the end of the sentence; the score of a text y is

    log P_ctc(y | x) + alpha * log P_lm(words of y, </s>) + beta * |words of y| + gamma * |words of y the LM lacks|

(``lm_weight`` alpha, ``word_bonus`` beta, ``unknown_offset`` gamma: pyctcdecode's ``unk_score_offset``,
which keeps a closed-vocabulary search from spelling words it has never seen). As in pyctcdecode,
gamma is charged as soon as a word's letters stop being the beginning of any word the model knows,
not when the word ends: by then a narrow beam may hold nothing but misspellings. With a beam wide
enough to keep every prefix this is exact: the tests check it against scoring every path by
enumeration.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import torch

from rnnkit.models.word_ngram import END, WordScorer

BLANK = 0
NEVER = -math.inf


def collapse(path: list[int]) -> list[int]:
    """Merge repeated labels, then drop blanks."""
    return [label for position, label in enumerate(path)
            if label != BLANK and (position == 0 or path[position - 1] != label)]


def greedy(log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
    """(T, B, V) log posteriors -> each sequence's collapsed best path, its own length long."""
    best = log_probs.argmax(-1).t().tolist()  # (B, T)
    return [collapse(row[:length]) for row, length in zip(best, lengths.tolist())]


@dataclass(frozen=True)
class Scored:
    labels: tuple[int, ...]
    score: float  # the module docstring's score (natural log)


def _add(a: float, b: float) -> float:
    """log(exp(a) + exp(b))."""
    if a == NEVER:
        return b
    if b == NEVER:
        return a
    return max(a, b) + math.log1p(math.exp(-abs(a - b)))


class PrefixScorer:
    """What a word language model adds to a prefix: at each completed word, at the letter where a word leaves the
    model's vocabulary (with an unknown-word offset), and at the end."""

    def __init__(self, characters: str, space: int, lm: WordScorer | None, lm_weight: float, word_bonus: float,
                 unknown_offset: float = 0.0) -> None:
        self.characters, self.space = characters, space  # characters[label - 1] is label's character
        self.lm, self.lm_weight, self.word_bonus, self.unknown_offset = lm, lm_weight, word_bonus, unknown_offset
        self.known = lm.known_words() if lm is not None and unknown_offset else set()
        self.beginnings = {word[:end] for word in self.known for end in range(len(word) + 1)}  # "" and every prefix

    def words(self, labels: tuple[int, ...]) -> list[str]:
        return "".join(self.characters[label - 1] for label in labels).split()

    def word_score(self, words: list[str]) -> float:
        """The score of the last of ``words`` once it is complete."""
        if self.lm is None:
            return self.word_bonus
        lm = self.lm_weight * self.lm.log_prob(tuple(words[:-1]), words[-1])
        return lm + self.word_bonus + self.unknown_charge(words[-1])

    def unknown_charge(self, word: str) -> float:
        """gamma for a finished unknown word not yet charged: one that is still the beginning of a known word
        ("eigh"); the others were charged by ``partial_word_charge`` where they left every known word."""
        return self.unknown_offset if word in self.beginnings and word not in self.known else 0.0

    def partial_word_charge(self, prefix: tuple[int, ...], label: int) -> float:
        """gamma where ``label``'s letter makes the word being spelt the beginning of no known word ("eie")."""
        start = len(prefix)
        while start and prefix[start - 1] != self.space:
            start -= 1
        spelt = "".join(self.characters[earlier - 1] for earlier in prefix[start:])
        extended = spelt + self.characters[label - 1]
        return self.unknown_offset if spelt in self.beginnings and extended not in self.beginnings else 0.0

    def on_extend(self, prefix: tuple[int, ...], label: int) -> float:
        if label != self.space:  # the beam search's innermost call: no work without an offset
            return self.partial_word_charge(prefix, label) if self.beginnings else 0.0
        if not prefix or prefix[-1] == self.space:
            return 0.0
        return self.word_score(self.words(prefix))

    def at_end(self, prefix: tuple[int, ...]) -> float:
        words = self.words(prefix)
        score = self.word_score(words) if prefix and prefix[-1] != self.space else 0.0
        if self.lm is not None:
            score += self.lm_weight * self.lm.log_prob(tuple(words), END)
        return score


def prefix_beam_search(log_probs: torch.Tensor, scorer: PrefixScorer, beam_size: int,
                       label_floor: float = NEVER) -> list[Scored]:
    """(T, V) log posteriors of one utterance -> its best texts as label tuples, best first (at most ``beam_size``).

    ``label_floor``: labels whose log posterior at a step is below it are not tried there (speed; -inf: all).
    """
    steps = log_probs.double().cpu().tolist()
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, NEVER)}  # prefix -> (log p_b, log p_nb)
    for row in steps:
        candidates = [label for label in range(1, len(row)) if row[label] >= label_floor]
        following: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [NEVER, NEVER])
        for prefix, (blank, non_blank) in beams.items():
            total = _add(blank, non_blank)
            entry = following[prefix]
            entry[0] = _add(entry[0], total + row[BLANK])
            for label in candidates:
                repeated = bool(prefix) and label == prefix[-1]
                if repeated:
                    entry[1] = _add(entry[1], non_blank + row[label])  # a a -> a
                source = blank if repeated else total  # a - a -> aa; a b -> ab
                if source != NEVER:
                    extended = following[prefix + (label,)]
                    extended[1] = _add(extended[1], source + row[label] + scorer.on_extend(prefix, label))
        ranked = sorted(following.items(), key=lambda item: _add(*item[1]), reverse=True)[:beam_size]
        beams = {prefix: (values[0], values[1]) for prefix, values in ranked}
    finished = [Scored(prefix, _add(*values) + scorer.at_end(prefix)) for prefix, values in beams.items()]
    return sorted(finished, key=lambda scored: scored.score, reverse=True)
