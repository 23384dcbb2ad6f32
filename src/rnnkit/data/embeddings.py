"""Pretrained word vectors in the GloVe or word2vec text format, matched to a vocabulary.

One word and its D numbers per line, separated by spaces; word2vec's files begin with a
header line ``COUNT D``, GloVe's do not. The file is streamed, so a multi-gigabyte file costs
the memory of the vocabulary's rows only. A word matches exactly, else lower-cased (GloVe's
vocabulary is lower-case). Lines of the wrong width stop the read with their line number.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from rnnkit.errors import UserError


@dataclass
class MatchedVectors:
    rows: dict[int, torch.Tensor]  # vocabulary id -> vector (D,)
    width: int

    def coverage(self, vocabulary_size: int) -> str:
        return f"{len(self.rows):,} of {vocabulary_size:,} words ({len(self.rows) / vocabulary_size:.1%})"


def read_vectors(path: str | Path, index: dict[str, int], width: int, option: str = "--embeddings") -> MatchedVectors:
    """The vectors of the words of ``index`` (word -> id) found in ``path``; every vector must have ``width`` numbers."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{option}: {path} is not a file; pass a GloVe/word2vec text file (a word and its numbers per line)")
    rows: dict[int, torch.Tensor] = {}
    exact: set[int] = set()  # ids matched by their own spelling, which a lower-cased match must not replace
    lowered: dict[str, list[int]] = {}
    for word, i in index.items():
        lowered.setdefault(word.lower(), []).append(i)
    number = 0
    try:
        with open(path, encoding="utf-8") as file:
            for number, line in enumerate(file, start=1):
                parts = line.rstrip("\n").rstrip().split(" ")
                if number == 1 and len(parts) == 2 and all(part.isdigit() for part in parts):
                    if int(parts[1]) != width:
                        raise UserError(f"{path} line 1: the vectors have {parts[1]} dimensions but --embedding-size is "
                                        f"{width}; set --embedding-size {parts[1]}")
                    continue  # word2vec's header
                if len(parts) != width + 1:
                    raise UserError(f"{path} line {number}: expected a word and {width} numbers (--embedding-size), got "
                                    f"{len(parts) - 1} numbers; set --embedding-size to the file's width or fix the line")
                word = parts[0]
                targets = [index[word]] if word in index else [i for i in lowered.get(word.lower(), ()) if i not in exact]
                if not targets:
                    continue
                try:
                    vector = torch.tensor([float(value) for value in parts[1:]])
                except ValueError:
                    raise UserError(f"{path} line {number}: a value of {word!r} is not a number; fix the line") from None
                for i in targets:
                    rows[i] = vector
                if word in index:
                    exact.add(index[word])
    except UnicodeDecodeError:
        raise UserError(f"{path} line {number + 1}: not valid UTF-8; convert the file with 'iconv -t UTF-8'") from None
    return MatchedVectors(rows, width)
