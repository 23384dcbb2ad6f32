"""Parallel corpora: two line-aligned UTF-8 files, line i of one the translation of line i of the other.

    train.de:  ein mann fährt fahrrad .        train.en:  a man rides a bike .
               zwei hunde spielen .                       two dogs play .

Files may be gzip-compressed (``.gz``, as Multi30k's raw text). Both files must have the same
number of lines, and no pair may have an empty side: either would silently misalign or
drop training data, so each is an error naming the file and line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rnnkit.data.text import read_text_file
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
