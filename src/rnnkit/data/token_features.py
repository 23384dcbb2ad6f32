"""Sentences as the integer features a text model reads: per token a word id, optionally a case class and characters.

One sentence of L tokens becomes an (L, F) tensor of ids; a batch pads them into one
(T, B, F) tensor with its ``lengths``, time-major like every input of rnnkit::

    column   0         1 (with case)   next C (with characters)
             word id   case class      character ids of the word, 0-padded to the batch's longest word

    "EU rejects German"  ->  [[w("eu"),      UPPER, c(E), c(U), 0,    0, ...],
                              [w("rejects"), LOWER, c(r), c(e), c(j), ...],
                              [w("german"),  TITLE, c(G), c(e), ...      ]]

Keeping the features in one tensor lets a ``Batch`` carry them as its ``inputs`` through the
trainer, DistributedDataParallel and ``.to(device)`` unchanged. Words are looked up
lower-cased with ``lowercase`` (the case class then keeps what lower-casing loses, Lample et
al. 2016); characters keep the original case. With ``zero_digits`` every digit of a word is
looked up as 0 (Lample et al.'s and NCRF++'s number normalisation: "1996" and "2003" share an
embedding, as do most numbers training saw once); characters keep the digits. Id 0 is padding
in every column.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

import re

import torch

from rnnkit.data.vocabulary import TokenVocabulary

DIGIT = re.compile(r"[0-9]")
CASES = ("<pad>", "lower", "upper", "title", "digits", "has_digit", "other")  # index = case id


def case_class(token: str) -> int:
    """The case id of a token: all lower, all upper, capitalised, all digits, some digit, or other."""
    if token.isdigit():
        return CASES.index("digits")
    if any(character.isdigit() for character in token):
        return CASES.index("has_digit")
    if token.islower():
        return CASES.index("lower")
    if token.isupper():
        return CASES.index("upper")
    if token[:1].isupper() and (len(token) == 1 or token[1:].islower()):
        return CASES.index("title")
    return CASES.index("other")


def word_form(token: str, lowercase: bool, zero_digits: bool) -> str:
    """The form a token's word embedding is looked up by."""
    if lowercase:
        token = token.lower()
    return DIGIT.sub("0", token) if zero_digits else token


def first_character_column(case: bool) -> int:
    """Where a token's character ids start: after its word id and, with the case feature, its case class."""
    return 2 if case else 1


@dataclass(frozen=True)
class TokenFeatures:
    """How tokens become ids: the vocabularies and which columns the model reads."""

    words: TokenVocabulary
    lowercase: bool = False
    characters: TokenVocabulary | None = None  # None: no character column
    case: bool = False
    zero_digits: bool = False

    @classmethod
    def from_training(cls, sentences: list[list[str]], lowercase: bool, min_count: int, characters: bool,
                      case: bool, zero_digits: bool = False) -> "TokenFeatures":
        """The features of a training split's tokenised sentences: its words seen ``min_count`` times (in their
        ``word_form``) and, with ``characters``, every character of its tokens."""
        spelling = None
        if characters:
            spelling = TokenVocabulary.from_counts(Counter(character for tokens in sentences for token in tokens
                                                           for character in token))
        words = Counter(word_form(token, lowercase, zero_digits) for tokens in sentences for token in tokens)
        return cls(TokenVocabulary.from_counts(words, min_count), lowercase, spelling, case, zero_digits)

    def with_words(self, words: TokenVocabulary) -> "TokenFeatures":
        return replace(self, words=words)

    def word_key(self, token: str) -> str:
        return word_form(token, self.lowercase, self.zero_digits)

    def encode(self, tokens: list[str]) -> torch.Tensor:
        """(L, F) ids of a sentence of L tokens (F as the module docstring draws it, characters unpadded: F = the longest word)."""
        columns = [torch.tensor(self.words.encode(self.word_key(token) for token in tokens)).unsqueeze(1)]
        if self.case:
            columns.append(torch.tensor([case_class(token) for token in tokens]).unsqueeze(1))
        if self.characters is not None:
            width = max(len(token) for token in tokens)
            characters = torch.zeros(len(tokens), width, dtype=torch.long)
            for row, token in enumerate(tokens):
                characters[row, : len(token)] = torch.tensor(self.characters.encode(token))
            columns.append(characters)
        return torch.cat(columns, dim=1)

    def to_state(self) -> dict:
        return {"words": self.words.to_state(), "lowercase": self.lowercase, "case": self.case,
                "zero_digits": self.zero_digits,
                "characters": None if self.characters is None else self.characters.to_state()}

    @classmethod
    def from_state(cls, state: dict) -> "TokenFeatures":
        characters = None if state["characters"] is None else TokenVocabulary.from_state(state["characters"])
        return cls(TokenVocabulary.from_state(state["words"]), state["lowercase"], characters, state["case"],
                   state.get("zero_digits", False))  # runs saved before the option read digits as they are


def pad_sentences(sentences: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_i, F_i) sentences -> (T, B, F), zero-padded at the end of each (T = max L_i, F = max F_i), and lengths (B,);
    (L_i,) sequences (one id per step: a user's items) -> (T, B).

    The padded tensor has the sentences' dtype: token ids, or real-valued frames (piano rolls)."""
    lengths = torch.tensor([sentence.shape[0] for sentence in sentences])
    if sentences[0].dim() == 1:
        return torch.nn.utils.rnn.pad_sequence(sentences), lengths
    padded = torch.zeros(int(lengths.max()), len(sentences), max(sentence.shape[1] for sentence in sentences),
                         dtype=sentences[0].dtype)
    for column, sentence in enumerate(sentences):
        padded[: sentence.shape[0], column, : sentence.shape[1]] = sentence
    return padded, lengths
