"""Tokenisers: how raw text becomes the words a vocabulary looks up, the same at training and at ``predict``.

``treebank`` follows the Penn Treebank conventions the SST and PTB files were made with
(nltk's ``TreebankWordTokenizer``: ``n't`` and ``'s`` split off, quotes as `````` and ``''``,
parentheses as ``-lrb-``/``-rrb-``), plus the treebank's escaped slash ``\\/`` and star ``\\*``. It leaves
text already tokenised that way as it is (29 of SST's 11,855 sentences change, by a split
final period or ``gon na``), so the files and a user's raw sentence read alike.
``whitespace`` splits on white space only (pre-tokenised data, CoNLL). ``moses_tokenizer(lang)``
is the Moses tokeniser (sacremoses) that made Multi30k's ``*.tok.*`` files: punctuation split
off by the language's rules, punctuation normalised, and ``'``, ``"``, ``&`` escaped as those
files have them (``&apos;``); ``moses_detokenizer(lang)`` turns such tokens back into text.
"""

from __future__ import annotations

import functools
import re
from typing import Callable

_QUOTES = re.compile(r"(``|'')")  # already-tokenised quotes: the treebank rules would turn a closing '' into ``


@functools.cache
def _treebank_tokenizer():
    from nltk.tokenize import TreebankWordTokenizer  # [tasks] extra: only the text tasks need it

    return TreebankWordTokenizer()


def treebank(text: str) -> list[str]:
    tokenizer = _treebank_tokenizer()
    tokens = []
    for piece in _QUOTES.split(text):
        if piece in ("``", "''"):
            tokens.append(piece)
        elif piece.strip():
            tokens += tokenizer.tokenize(piece, convert_parentheses=True)
    return [_escaped(token, "/") if "/" in token else _escaped(token, "*") for token in tokens]


def _escaped(token: str, character: str) -> str:
    """``token`` with ``character`` escaped as the treebank escapes it (``\\/``, ``\\*``), unless it is already."""
    return token if "\\" + character in token else token.replace(character, "\\" + character)


def whitespace(text: str) -> list[str]:
    return text.split()


@functools.cache
def moses_tokenizer(language: str) -> Callable[[str], list[str]]:
    from sacremoses import MosesPunctNormalizer, MosesTokenizer  # [tasks] extra

    normalizer, tokenizer = MosesPunctNormalizer(lang=language), MosesTokenizer(lang=language)
    return lambda text: tokenizer.tokenize(normalizer.normalize(text), escape=True)


@functools.cache
def moses_detokenizer(language: str) -> Callable[[list[str]], str]:
    from sacremoses import MosesDetokenizer

    detokenizer = MosesDetokenizer(lang=language)
    return lambda tokens: detokenizer.detokenize(tokens, unescape=True)


TOKENIZERS: dict[str, Callable[[str], list[str]]] = {"treebank": treebank, "whitespace": whitespace}
