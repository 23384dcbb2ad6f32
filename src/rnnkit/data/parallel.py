"""Parallel corpora: two line-aligned UTF-8 files, line i of one the translation of line i of the other.

    train.de:  ein mann fährt fahrrad .        train.en:  a man rides a bike .
               zwei hunde spielen .                       two dogs play .

Files may be gzip-compressed (``.gz``, as Multi30k's raw text). Both files must have the same
number of lines, and no pair may have an empty side: either would silently misalign or
drop training data, so each is an error naming the file and line.

What a translation model reads of them: each sentence's words (``sentence_words``: lower-cased,
split on spaces if tokenised already, else by a tokenizer), each side's pieces (the words, or
their subwords, ``Side``) and their ids, and each target's reference text for the metrics
(``pair_examples``)::

    "Ein Mann fährt Fahrrad."  ─words─► ein mann fährt fahrrad .  ─pieces─► ids (S,)
    "A man rides a bike."      ─words─► a man rides a bike .      ─pieces─► <bos> ids <eos> (T + 2,);  reference
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from rnnkit.data.subwords import SubwordModel
from rnnkit.data.text import read_text_file
from rnnkit.data.tokenization import moses_tokenizer, whitespace
from rnnkit.data.vocabulary import BEGIN, END, TokenVocabulary
from rnnkit.errors import UserError


@dataclass(frozen=True)
class SentencePair:
    source: str
    target: str
    where: str  # "FILE line N" of the source side, for messages


def read_parallel(source_path: str | Path, target_path: str | Path, option: str) -> list[SentencePair]:
    """The pairs of two line-aligned files (``option`` named them, for messages)."""
    source_lines = read_text_file(source_path, option).splitlines()
    target_lines = read_text_file(target_path, option).splitlines()
    if len(source_lines) != len(target_lines):
        raise UserError(f"{option}: {source_path} has {len(source_lines)} lines but {target_path} has "
                        f"{len(target_lines)}; a parallel corpus needs one target line per source line")
    pairs = []
    for number, (source, target) in enumerate(zip(source_lines, target_lines), start=1):
        for path, side in ((source_path, source), (target_path, target)):
            if not side.strip():
                raise UserError(f"{path} line {number}: the line is empty, so the pair has nothing to translate; "
                                "remove the line from both files")
        pairs.append(SentencePair(source.strip(), target.strip(), f"{source_path} line {number}"))
    return pairs


def sentence_words(text: str, language: str, lowercase: bool, tokenizer: str, pretokenized: bool) -> list[str]:
    """The words of a sentence as the model reads them: lower-cased (``lowercase``), split on spaces if the text is
    tokenised already (or ``tokenizer`` is whitespace), else tokenised by the Moses rules of ``language``."""
    if lowercase:
        text = text.lower()
    if pretokenized or tokenizer == "whitespace":
        return whitespace(text)
    return moses_tokenizer(language)(text)


@dataclass
class WordPair:
    source: list[str]
    target: list[str]
    where: str


@dataclass
class Side:
    """One language of the pair: the pieces its sentences are read as (words, or subwords), and their vocabulary."""

    vocabulary: TokenVocabulary
    subwords: SubwordModel | None = None

    @classmethod
    def build(cls, sentences: list[list[str]], subword_pieces: int, min_count: int, option: str) -> Side:
        """The pieces and vocabulary of the words of one side's training sentences: words (or, with
        ``subword_pieces``, the pieces of a BPE model learnt from them) seen ``min_count`` times, after the special
        tokens."""
        subwords = None
        if subword_pieces:
            try:
                subwords = SubwordModel.train([" ".join(sentence) for sentence in sentences], subword_pieces)
            except ValueError as error:
                raise UserError(f"--subwords: {option} is too small for {subword_pieces} units ({error}); lower --subwords")
        counts = Counter(piece for sentence in sentences for piece in (subwords.split(sentence) if subwords else sentence))
        return cls(TokenVocabulary.from_counts(counts, min_count, specials=(BEGIN, END)), subwords)

    def pieces(self, words: list[str]) -> list[str]:
        return words if self.subwords is None else self.subwords.split(words)

    def words(self, pieces: list[str]) -> list[str]:
        return pieces if self.subwords is None else self.subwords.decode(pieces)

    def to_state(self) -> dict:
        return {"vocabulary": self.vocabulary.to_state(),
                "subwords": None if self.subwords is None else self.subwords.to_state()}

    @classmethod
    def from_state(cls, state: dict) -> Side:
        subwords = None if state["subwords"] is None else SubwordModel.from_state(state["subwords"])
        return cls(TokenVocabulary.from_state(state["vocabulary"]), subwords)


@dataclass
class PairExamples:
    sources: list[torch.Tensor]  # (S_i,) source ids
    targets: list[torch.Tensor]  # (T_i + 2,) <bos> target ids <eos>
    source_pieces: list[list[str]]  # what the source ids stand for: for replacing <unk> by a source piece
    references: list[str]  # the target sentences as the metrics read them (words joined by spaces)


def pair_examples(pairs: list[WordPair], source: Side, target: Side) -> PairExamples:
    """The pairs as the model reads them, with the target's reference text."""
    examples = PairExamples([], [], [], [])
    for pair in pairs:
        source_pieces, target_pieces = source.pieces(pair.source), target.pieces(pair.target)
        if not source_pieces or not target_pieces:
            raise UserError(f"{pair.where}: the pair has no word after tokenisation; remove the line from both files")
        examples.sources.append(torch.tensor(source.vocabulary.encode(source_pieces)))
        examples.targets.append(torch.tensor(target.vocabulary.encode([BEGIN, *target_pieces, END])))
        examples.source_pieces.append(source_pieces)
        examples.references.append(" ".join(pair.target))
    return examples
