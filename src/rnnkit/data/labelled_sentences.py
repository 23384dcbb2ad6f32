"""Reading sentence-classification data: one sentence and its label per line, checked line by line.

Two formats, told apart by the file's extension:

- ``label sentence`` (the SST files of Kim 2014 / harvardnlp, any extension but .csv/.tsv):
  the label, one space, the tokenised sentence. ``1 a stirring , funny ... horror films``
- CSV or TSV (``.csv``, ``.tsv``) with a header row: a column named ``label`` and one other
  column holding the text (GLUE's SST-2 ``sentence<TAB>label``, Keras/pandas exports).

Nothing is skipped: a line that cannot be read stops the run with a message naming the file,
the line and the fix (``UserError``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from rnnkit.data.text import read_text_file
from rnnkit.errors import UserError

LABEL_COLUMN = "label"


@dataclass
class LabelledSentence:
    text: str  # as in the file (tokenised or not; the task tokenises it)
    label: str
    where: str  # "FILE line N", for messages
    tokens: tuple[str, ...] | None = None  # the tokens, where the data gives them (a tree's leaves): not tokenised again


def read_labelled_sentences(path: str | Path, option: str) -> list[LabelledSentence]:
    """The sentences of ``path`` with their labels; ``option`` is the command-line option that named the file."""
    path = Path(path)
    content = read_text_file(path, option=option)
    if path.suffix.lower() in (".csv", ".tsv"):
        sentences = _read_table(content, path, "\t" if path.suffix.lower() == ".tsv" else ",")
    else:
        sentences = _read_label_first(content, path)
    if not sentences:
        raise UserError(f"data file {path} holds no sentence: expected one 'label sentence' per line")
    return sentences


def _read_label_first(content: str, path: Path) -> list[LabelledSentence]:
    sentences = []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            raise UserError(f"{path} line {number}: the line is empty; remove it (each line is 'label sentence')")
        label, _, text = line.strip().partition(" ")
        if not text.strip():
            raise UserError(f"{path} line {number}: {line.strip()!r} has a label but no sentence; each line is "
                            "'label sentence' (the label, one space, the text)")
        sentences.append(LabelledSentence(text, label, f"{path} line {number}"))
    return sentences


def _read_table(content: str, path: Path, delimiter: str) -> list[LabelledSentence]:
    rows = list(csv.reader(io.StringIO(content), delimiter=delimiter))
    header = [name.strip().lower() for name in rows[0]] if rows else []
    if len(header) != 2 or LABEL_COLUMN not in header:
        raise UserError(f"{path} line 1: expected a header of two columns, one named '{LABEL_COLUMN}' and one with "
                        f"the text (e.g. 'sentence{delimiter}label'), got {delimiter.join(rows[0]) if rows else 'nothing'!r}")
    label_column = header.index(LABEL_COLUMN)
    sentences = []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != 2:
            raise UserError(f"{path} line {number}: expected 2 columns ({', '.join(header)}), got {len(row)}; "
                            "quote text that holds the delimiter")
        label, text = row[label_column].strip(), row[1 - label_column]
        if not label:
            raise UserError(f"{path} line {number}: the label is empty; give every sentence its label")
        if not text.strip():
            raise UserError(f"{path} line {number}: the sentence is empty; remove the line or give it text")
        sentences.append(LabelledSentence(text, label, f"{path} line {number}"))
    return sentences


def check_labels(sentences: list[LabelledSentence], labels: tuple[str, ...], split: str) -> None:
    """Every label of a held-out split must be one the classifier was built for (the training split's)."""
    for sentence in sentences:
        if sentence.label not in labels:
            raise UserError(f"{sentence.where}: label {sentence.label!r} does not occur in the training split "
                            f"(labels: {', '.join(labels)}); fix the {split} file or train on data that has it")


def label_set(sentences: list[LabelledSentence]) -> tuple[str, ...]:
    """The labels that occur, in numeric order where all are integers (SST's 0..4), else alphabetical."""
    labels = {sentence.label for sentence in sentences}
    if all(label.lstrip("-").isdigit() for label in labels):
        return tuple(sorted(labels, key=int))
    return tuple(sorted(labels))
