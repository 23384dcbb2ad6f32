"""The Stanford Sentiment Treebank's trees: one binary tree per line in PTB brackets, a sentiment label 0–4 on every
node (0 very negative … 4 very positive).

    (3 (2 (2 The) (2 Rock)) (4 (3 (2 is) …) (2 .)))        (LABEL WORD) is a leaf, (LABEL CHILD CHILD) a phrase

Every node is a labelled phrase: the leaves below it, with its label. The root is the whole
sentence. The published sentence classifiers (Kim 2014, Tai et al. 2015) train on every phrase
of the training trees and test on the test trees' roots.

Leaves keep the treebank's spelling: original case and PTB escapes (``-LRB-``, ``-RRB-``,
``\\/``, ``\\*``, ````````, ``''``), as ``rnnkit.data.tokenization.treebank`` writes raw text. A line
is split on ASCII spaces and brackets only, since three training leaves hold a no-break space
(``8 1\\/2``). A line that is not a tree (an unbalanced bracket, a label outside 0–4, a node
without a word or children) is one ``UserError`` naming the file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from typing import Callable

from rnnkit.data.labelled_sentences import LabelledSentence
from rnnkit.data.text import read_text_file
from rnnkit.errors import UserError

LABELS = range(5)
_PIECES = re.compile(r"\(|\)|[^ ()]+")  # a bracket, or a run of anything but ASCII spaces and brackets


@dataclass(frozen=True)
class Span:
    label: int
    start: int  # the first leaf below the node
    end: int  # one past the last


@dataclass
class SentimentTree:
    leaves: list[str]  # the sentence's tokens
    spans: list[Span]  # every node, the root first, then each node before its children (pre-order)
    where: str  # "FILE line N"

    @property
    def label(self) -> int:
        """The root's label: the sentence's sentiment."""
        return self.spans[0].label

    def phrases(self) -> list[tuple[tuple[str, ...], int]]:
        """(tokens, label) of every node, the sentence included."""
        return [(tuple(self.leaves[span.start : span.end]), span.label) for span in self.spans]


def parse_tree(line: str, where: str) -> SentimentTree:
    """One line of a tree file; ``where`` names it in errors."""
    pieces = _PIECES.findall(line.strip())
    leaves: list[str] = []
    spans: list[Span] = []
    open_nodes: list[tuple[int, int, int]] = []  # (index into spans, first leaf, children seen) of each open node
    position = 0
    while position < len(pieces):
        piece = pieces[position]
        if piece == "(":
            if open_nodes == [] and spans:
                raise UserError(f"{where}: text after the tree's last bracket; one tree per line")
            label = pieces[position + 1] if position + 1 < len(pieces) else ""
            if label not in {str(value) for value in LABELS}:
                raise UserError(f"{where}: expected a label 0-4 after '(', got {label!r}; fix the line")
            spans.append(Span(int(label), len(leaves), -1))
            if open_nodes:
                index, first, children = open_nodes[-1]
                open_nodes[-1] = (index, first, children + 1)
            open_nodes.append((len(spans) - 1, len(leaves), 0))
            position += 2
        elif piece == ")":
            if not open_nodes:
                raise UserError(f"{where}: a ')' closes no node (unbalanced brackets); fix the line")
            index, first, children = open_nodes.pop()
            if children == 0 and len(leaves) == first:
                raise UserError(f"{where}: a node with a label but no word or children; fix the line")
            spans[index] = Span(spans[index].label, first, len(leaves))
            position += 1
        else:
            if not open_nodes:
                raise UserError(f"{where}: the word {piece!r} is outside the tree's brackets; fix the line")
            index, first, children = open_nodes[-1]
            if children or len(leaves) > first:
                raise UserError(f"{where}: the word {piece!r} follows another word or a child node; a leaf is "
                                "(LABEL WORD)")
            leaves.append(piece)
            position += 1
    if open_nodes or not spans:
        raise UserError(f"{where}: {len(open_nodes)} bracket(s) left open (unbalanced brackets); fix the line"
                        if spans else f"{where}: the line holds no tree")
    return SentimentTree(leaves, spans, where)


def read_trees(path: str | Path, option: str) -> list[SentimentTree]:
    """Every tree of a file, one per non-empty line (``option`` named the file, for messages)."""
    text = read_text_file(path, option=option)
    trees = [parse_tree(line, f"{path} line {number}") for number, line in enumerate(text.splitlines(), start=1)
             if line.strip()]
    if not trees:
        raise UserError(f"{option}: {path} holds no tree; expected one '(LABEL ...)' tree per line")
    return trees


def labelled_sentences(trees: list[SentimentTree], label_of: Callable[[int], str | None]) -> list[LabelledSentence]:
    """Each tree's sentence (its leaves) with ``label_of(root label)``; a tree whose label maps to None is left out
    (SST-2's neutral sentences)."""
    found = []
    for tree in trees:
        label = label_of(tree.label)
        if label is not None:
            found.append(LabelledSentence(" ".join(tree.leaves), label, tree.where, tuple(tree.leaves)))
    return found


def labelled_phrases(trees: list[SentimentTree], label_of: Callable[[int], str | None]) -> list[LabelledSentence]:
    """Every distinct labelled phrase of the trees (each node's leaves; the sentences among them), with
    ``label_of(its label)``, in order of first appearance; a phrase whose label maps to None is left out.
    Distinct phrases, as the phrase-level training files of Kim (2014) hold them: a phrase shared by many
    sentences ("the film") counts once."""
    seen: set[tuple[tuple[str, ...], str]] = set()
    found = []
    for tree in trees:
        for tokens, label_id in tree.phrases():
            label = label_of(label_id)
            if label is not None and (tokens, label) not in seen:
                seen.add((tokens, label))
                found.append(LabelledSentence(" ".join(tokens), label, tree.where, tokens))
    return found
