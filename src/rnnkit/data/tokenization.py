"""Tokenisers: how raw text becomes the words a vocabulary looks up, the same at training and at ``predict``.

``treebank`` follows the Penn Treebank conventions the SST and PTB files were made with
(nltk's ``TreebankWordTokenizer``: ``n't`` and ``'s`` split off, quotes as `````` and ``''``,
parentheses as ``-lrb-``/``-rrb-``), plus the treebank's escaped slash ``\\/``. It leaves
text already tokenised that way as it is (29 of SST's 11,855 sentences change, by a split
final period or ``gon na``), so the files and a user's raw sentence read alike.
``whitespace`` splits on white space only (pre-tokenised data, CoNLL).
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
    return [token if "\\/" in token else token.replace("/", "\\/") for token in tokens]


def whitespace(text: str) -> list[str]:
    return text.split()


TOKENIZERS: dict[str, Callable[[str], list[str]]] = {"treebank": treebank, "whitespace": whitespace}
