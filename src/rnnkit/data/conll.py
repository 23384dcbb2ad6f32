"""Reading tagged sentences in the CoNLL column format: one token per line, columns separated by white space,
a blank line between sentences, ``-DOCSTART-`` lines between documents (skipped).

    EU NNP B-NP B-ORG          token, then other columns (CoNLL-2003: POS, chunk), the tag in
    rejects VBZ B-VP O         --tag-column (default: the last)
    <blank line>

Every line must have the same number of columns as the file's first token line; a line
that does not, a tag outside the scheme, or a file that is not UTF-8 stops the run with the
file, the line and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rnnkit.data.tag_schemes import SCHEMES, is_valid_tag, split_tag
from rnnkit.data.text import read_text_file
from rnnkit.errors import UserError

DOCUMENT_START = "-DOCSTART-"


@dataclass
class TaggedSentence:
    tokens: list[str]
    tags: list[str]
    where: str  # "FILE line N" of its first token


def read_conll(path: str | Path, tag_column: int, option: str) -> list[TaggedSentence]:
    """The sentences of a CoNLL file; ``tag_column`` counts from 0, negative from the end (-1: the last)."""
    path = Path(path)
    content = read_text_file(path, option=option)
    sentences, tokens, tags, first_line, columns = [], [], [], 0, None
    for number, line in enumerate(content.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0] == DOCUMENT_START:
            if tokens:
                sentences.append(TaggedSentence(tokens, tags, f"{path} line {first_line}"))
                tokens, tags = [], []
            continue
        if columns is None:
            columns = len(fields)
            if not -columns <= tag_column < columns or columns < 2:
                raise UserError(f"{path} line {number}: the line has {columns} column(s), so --tag-column {tag_column} "
                                "names none of them besides the token; set --tag-column to the tag's column (0-based, -1: last)")
        if len(fields) != columns:
            raise UserError(f"{path} line {number}: expected {columns} columns like the file's first token line, got "
                            f"{len(fields)}; fix the line (tokens cannot hold spaces)")
        if not tokens:
            first_line = number
        tokens.append(fields[0])
        tags.append(fields[tag_column])
    if tokens:
        sentences.append(TaggedSentence(tokens, tags, f"{path} line {first_line}"))
    if not sentences:
        raise UserError(f"data file {path} holds no sentence: expected one 'token ... tag' line per token")
    return sentences


def detect_scheme(sentences: list[TaggedSentence]) -> str:
    """iobes if it has E- or S- tags; iob1 if some entity starts with I- (CoNLL-2003's original files); else bio."""
    starts_inside = False
    for sentence in sentences:
        previous_kind = None
        for tag in sentence.tags:
            prefix, kind = split_tag(tag)
            if prefix in ("E", "S"):
                return "iobes"
            if prefix == "I" and kind != previous_kind:
                starts_inside = True
            previous_kind = kind
    return "iob1" if starts_inside else "bio"


def check_tags(sentences: list[TaggedSentence], scheme: str) -> None:
    if scheme not in SCHEMES:
        raise ValueError(f"scheme: expected one of {SCHEMES}, got {scheme!r}")
    for sentence in sentences:
        for offset, tag in enumerate(sentence.tags):
            if not is_valid_tag(tag, scheme):
                file, _, line = sentence.where.rpartition(" line ")
                raise UserError(f"{file} line {int(line) + offset}: tag {tag!r} is not an {scheme.upper()} tag (O, "
                                f"{'B-, I-, E- or S-' if scheme == 'iobes' else 'B- or I-'}TYPE); fix it or set --scheme")
