"""Vocabularies: the language models' characters, or words with ``<unk>`` and ``<eos>``; and the tokens
(with ``<pad>`` and ``<unk>``) the text classifier and tagger embed.

Each maps tokens to ids, and says how it is saved in a checkpoint (``to_state``/``from_state``,
JSON); the language models' two also map ids back to text and say which text starts a line (a
generation's default prime).
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass

import torch

from rnnkit.errors import UserError


@dataclass(frozen=True)
class CharVocabulary:
    characters: str  # every character once, sorted; index = token id

    @classmethod
    def from_text(cls, text: str) -> "CharVocabulary":
        return cls("".join(sorted(set(text))))

    def to_state(self) -> str:
        return self.characters

    @classmethod
    def from_state(cls, state: str) -> "CharVocabulary":
        return cls(state)

    @property
    def line_break(self) -> str | None:
        """The text that ends a line, if the corpus has one."""
        return "\n" if "\n" in self.characters else None

    def __len__(self) -> int:
        return len(self.characters)

    def encode(self, text: str, where: str = "text") -> torch.Tensor:
        index = {character: i for i, character in enumerate(self.characters)}
        unknown = sorted(set(text) - index.keys())
        if unknown:
            shown = ", ".join(repr(c) for c in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
            raise UserError(
                f"{where} contains {len(unknown)} character(s) the model's vocabulary lacks ({shown}): "
                "use text written with the training corpus's characters"
            )
        return torch.tensor([index[c] for c in text], dtype=torch.long)

    def decode(self, ids) -> str:
        return "".join(self.characters[int(i)] for i in ids)


UNKNOWN, END_OF_LINE = "<unk>", "<eos>"


@dataclass(frozen=True)
class WordVocabulary:
    """Whitespace-separated words, Mikolov's PTB convention: every line ends with ``<eos>``, and a
    word outside the vocabulary reads as ``<unk>``."""

    words: tuple[str, ...]  # index = token id; holds UNKNOWN and END_OF_LINE

    @classmethod
    def from_text(cls, text: str, size: int) -> "WordVocabulary":
        """The ``size`` most frequent words of ``text`` (ties in alphabetical order), ``<unk>`` and ``<eos>`` included."""
        counts = Counter(tokenize(text))
        counts.pop(UNKNOWN, None)
        counts.pop(END_OF_LINE, None)
        frequent = sorted(counts, key=lambda word: (-counts[word], word))[: max(size - 2, 0)]
        return cls((END_OF_LINE, UNKNOWN, *frequent))

    def __len__(self) -> int:
        return len(self.words)

    def to_state(self) -> list[str]:
        return list(self.words)

    @classmethod
    def from_state(cls, state: list[str]) -> "WordVocabulary":
        return cls(tuple(state))

    @property
    def line_break(self) -> str:
        return "\n"

    @functools.cached_property
    def _index(self) -> dict[str, int]:
        """word -> token id, built once: encode runs once per input of 'rnnkit predict' and 'generate'."""
        return {word: i for i, word in enumerate(self.words)}

    def encode(self, text: str, where: str = "text") -> torch.Tensor:
        unknown = self._index[UNKNOWN]
        return torch.tensor([self._index.get(word, unknown) for word in tokenize(text)], dtype=torch.long)

    def decode(self, ids) -> str:
        """Words joined by spaces, ``<eos>`` as a line break."""
        text = " ".join(self.words[int(i)] for i in ids).replace(END_OF_LINE, "\n")
        return "\n".join(line.strip() for line in text.split("\n"))


def tokenize(text: str) -> list[str]:
    """The words of ``text`` with ``<eos>`` at the end of every line (a last line without a line break has none)."""
    lines = text.split("\n")
    words = []
    for number, line in enumerate(lines):
        words += line.split()
        if number < len(lines) - 1:
            words.append(END_OF_LINE)
    return words


PADDING = "<pad>"
BEGIN, END = "<bos>", END_OF_LINE  # a translation's target starts after <bos> and ends with <eos>


@dataclass(frozen=True)
class TokenVocabulary:
    """The tokens a classifier or tagger embeds: ``<pad>`` (id 0, what padded steps hold), ``<unk>`` (id 1, any
    token not kept), then the kept tokens, most frequent first. Built from the training split only."""

    tokens: tuple[str, ...]  # index = id

    @classmethod
    def from_counts(cls, counts: Counter, min_count: int = 1, max_size: int = 0,
                    specials: tuple[str, ...] = ()) -> "TokenVocabulary":
        """The tokens seen at least ``min_count`` times (ties in alphabetical order), at most ``max_size`` in all (0: no
        limit), after ``<pad>``, ``<unk>`` and the ``specials`` (ids 2, 3, ...: a translation's ``<bos>``, ``<eos>``)."""
        reserved = (PADDING, UNKNOWN, *specials)
        kept = sorted((token for token, count in counts.items() if count >= min_count and token not in reserved),
                      key=lambda token: (-counts[token], token))
        if max_size:
            kept = kept[: max(max_size - len(reserved), 0)]
        return cls((*reserved, *kept))

    def __len__(self) -> int:
        return len(self.tokens)

    def to_state(self) -> list[str]:
        return list(self.tokens)

    @classmethod
    def from_state(cls, state: list[str]) -> "TokenVocabulary":
        return cls(tuple(state))

    @functools.cached_property
    def index(self) -> dict[str, int]:
        return {token: i for i, token in enumerate(self.tokens)}

    def encode(self, tokens) -> list[int]:
        """Ids of ``tokens`` (any iterable of strings), ``<unk>``'s for those not kept."""
        index = self.index
        return [index.get(token, 1) for token in tokens]

    def decode(self, ids) -> list[str]:
        """The tokens of ``ids`` (any iterable of ints)."""
        return [self.tokens[int(i)] for i in ids]
