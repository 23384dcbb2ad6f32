"""Dialogues: conversations as lists of utterances, and the (context, response) examples a chatbot learns from.

Formats read:
- DailyDialog's split zips (``read_dailydialog``): ``<split>.zip`` holding ``<split>/dialogues_<split>.txt``,
  one dialogue a line, each utterance ending in `` __eou__``.
- Your own dialogues (``read_dialogues``): the same text form (one dialogue a line, utterances
  separated by ``__eou__``), or JSON lines (``.jsonl``), one dialogue a line: a list of
  utterances, or an object whose ``turns`` (or ``utterances``/``dialogue``) list holds strings
  or objects with a ``text``.

Speakers alternate. An example is one turn of a dialogue and the ``context_turns`` utterances
before it (``dialogue_examples``); the first utterance of a dialogue has no context and is
no example. The model reads the context with each utterance marked by who said it, seen
from the one who answers: ``<user>`` the other speaker (always the last utterance's), ``<bot>``
the answerer itself, as in a conversation with the model (``context_words``)::

    dialogue:  A: hi , how are you ?   B: fine , thanks .   A: what are you doing ?   B: reading .
    example 3 (context_turns 3): context  <user> hi , how are you ? <bot> fine , thanks . <user> what are you doing ?
                                 response reading .

Words are lower-cased, with punctuation split off (``dialogue_words``), in the data and in what
a user types alike, so that both read the same (DailyDialog's text is tokenised already, with a
few glitches such as ``right.But``, which the same rule repairs).

The model reads ids (``reply_examples``): the context's last ``max_context_words`` words (the
oldest dropped) and ``<bos>`` reply ``<eos>``, the reply cut after ``max_reply_words`` words for
training; the metrics read the whole reply (``references``).
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass
from collections import Counter
from pathlib import Path

import torch

from rnnkit.data.text import read_text_file
from rnnkit.data.vocabulary import BEGIN, END, TokenVocabulary
from rnnkit.errors import UserError

END_OF_UTTERANCE = "__eou__"
USER, BOT = "<user>", "<bot>"  # who said a context utterance, seen from the one who answers
SPLITS = ("train", "validation", "test")
TURN_KEYS = ("turns", "utterances", "dialogue")
_WORD = re.compile(r"\w+(?:'\w+)*|[^\w\s]")
# DailyDialog's first release (these zips) splits one train utterance in two, which leaves that dialogue with one more
# utterance than its act and emotion labels; the later release joins them. We apply the later release's edit.
_DAILYDIALOG_FIX = ("train", 7852, "but I need one here as well . __eou__ I've been using",
                    "but I need one here as well . I've been using")


@dataclass(frozen=True)
class Dialogue:
    utterances: tuple[str, ...]
    where: str  # "FILE line N", for messages


@dataclass(frozen=True)
class ChatExample:
    context: tuple[str, ...]  # the utterances before the response, oldest first
    response: str
    where: str


def dialogue_words(text: str) -> list[str]:
    """An utterance's words: lower-cased, typographic apostrophes as ', punctuation split off (don't and parent's
    stay whole)."""
    return _WORD.findall(text.lower().replace("\u2019", "'").replace("\u2018", "'"))


def context_words(context: tuple[str, ...] | list[str]) -> list[str]:
    """The context as the model reads it: each utterance's words after its speaker's marker, the last one <user>'s."""
    words = []
    for position, utterance in enumerate(context):
        answerers_own = (len(context) - 1 - position) % 2 == 1  # speakers alternate; the last utterance is the user's
        words += [BOT if answerers_own else USER, *dialogue_words(utterance)]
    return words


def split_utterances(line: str) -> list[str]:
    """The utterances of one text-form dialogue line (``__eou__`` separates them and may end the last)."""
    return [piece.strip() for piece in line.split(END_OF_UTTERANCE) if piece.strip()]


def dialogues_of_text(text: str, name: str) -> list[Dialogue]:
    """The dialogues of text-form lines; blank lines are skipped, a line of one utterance is an error (no turn to
    answer)."""
    dialogues = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        utterances = split_utterances(line)
        if len(utterances) < 2:
            raise UserError(f"{name} line {number}: a dialogue needs at least two utterances separated by "
                            f"'{END_OF_UTTERANCE}', found {len(utterances)}; join the line to its dialogue or remove it")
        dialogues.append(Dialogue(tuple(utterances), f"{name} line {number}"))
    return dialogues


def _json_turns(value, where: str) -> list[str]:
    if isinstance(value, dict):
        key = next((key for key in TURN_KEYS if key in value), None)
        if key is None:
            raise UserError(f"{where}: expected a list of utterances or an object with one of "
                            f"{', '.join(TURN_KEYS)}; found keys {', '.join(sorted(value)) or 'none'}")
        value = value[key]
    if not isinstance(value, list):
        raise UserError(f"{where}: expected a list of utterances, found {type(value).__name__}")
    turns = []
    for position, turn in enumerate(value, start=1):
        text = turn.get("text") if isinstance(turn, dict) else turn
        if not isinstance(text, str):
            raise UserError(f"{where}: turn {position} is not a string nor an object with a 'text' string")
        if text.strip():
            turns.append(text.strip())
    return turns


def dialogues_of_jsonl(text: str, name: str) -> list[Dialogue]:
    dialogues = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{name} line {number}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise UserError(f"{where}: not valid JSON ({error.msg} at column {error.colno}); write one dialogue per "
                            "line as a JSON list of utterances") from None
        turns = _json_turns(value, where)
        if len(turns) < 2:
            raise UserError(f"{where}: a dialogue needs at least two utterances, found {len(turns)}")
        dialogues.append(Dialogue(tuple(turns), where))
    return dialogues


def read_dialogues(path: str | Path, option: str = "--dialogues") -> list[Dialogue]:
    """Your own dialogues: JSON lines (``.jsonl``) or text lines with ``__eou__`` between utterances."""
    text = read_text_file(path, option)
    dialogues = dialogues_of_jsonl(text, str(path)) if str(path).endswith(".jsonl") else dialogues_of_text(text, str(path))
    if not dialogues:
        raise UserError(f"{option}: {path} holds no dialogue (one dialogue a line)")
    return dialogues


def read_dailydialog(folder: str | Path, split: str) -> list[Dialogue]:
    """The dialogues of DailyDialog's ``split`` (train, validation, test), read from ``<split>.zip`` in place."""
    path = Path(folder) / f"{split}.zip"
    member = f"{split}/dialogues_{split}.txt"
    if not path.is_file():
        raise UserError(f"--data-dir: {folder} has no {split}.zip; pass DailyDialog's folder (train.zip, "
                        "validation.zip, test.zip), or your own dialogues with --dialogues")
    try:
        with zipfile.ZipFile(path) as archive:
            text = archive.read(member).decode("utf-8")
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError) as error:
        raise UserError(f"--data-dir: {path} is not DailyDialog's zip with {member} ({error})") from None
    lines = text.splitlines()
    fix_split, fix_line, before, after = _DAILYDIALOG_FIX
    if split == fix_split and len(lines) >= fix_line and before in lines[fix_line - 1]:
        lines[fix_line - 1] = lines[fix_line - 1].replace(before, after)
    return dialogues_of_text("\n".join(lines), f"{path}:{member}")


def dialogue_examples(dialogues: list[Dialogue], context_turns: int) -> list[ChatExample]:
    """Every turn after the first of every dialogue, with the (at most) ``context_turns`` utterances before it."""
    examples = []
    for dialogue in dialogues:
        utterances = dialogue.utterances
        for turn in range(1, len(utterances)):
            context = utterances[max(0, turn - context_turns) : turn]
            examples.append(ChatExample(context, utterances[turn], f"{dialogue.where}, turn {turn + 1}"))
    return examples


def unseen_contexts(examples: list[ChatExample], seen: list[ChatExample]) -> list[int]:
    """The positions of the examples whose context (as the model reads it) is no context of ``seen``: DailyDialog's
    test set without the contexts that occur in training too."""
    known = {tuple(context_words(example.context)) for example in seen}
    return [row for row, example in enumerate(examples) if tuple(context_words(example.context)) not in known]


def dialogue_vocabulary(dialogues: list[Dialogue], size: int) -> TokenVocabulary:
    """The ``size`` most frequent words of the dialogues' utterances (each counted once per utterance it is in the
    dialogue), after <pad> <unk> <bos> <eos> and the speaker markers."""
    counts = Counter(word for dialogue in dialogues for utterance in dialogue.utterances
                     for word in dialogue_words(utterance))
    return TokenVocabulary.from_counts(counts, max_size=size, specials=(BEGIN, END, USER, BOT))


def context_ids(context: tuple[str, ...] | list[str], vocabulary: TokenVocabulary, max_words: int) -> torch.Tensor:
    """(S,) the ids of the context's last ``max_words`` words as the model reads them."""
    return torch.tensor(vocabulary.encode(context_words(context)[-max_words:]))


@dataclass
class ReplyExamples:
    sources: list[torch.Tensor]  # (S_i,) the context's ids
    targets: list[torch.Tensor]  # (T_i + 2,) <bos> the reply's ids <eos>
    references: list[list[str]]  # the reply's words, whole: what the metrics compare with


def reply_examples(examples: list[ChatExample], vocabulary: TokenVocabulary, max_context_words: int,
                   max_reply_words: int) -> ReplyExamples:
    encoded = ReplyExamples([], [], [])
    for example in examples:
        reply = dialogue_words(example.response)
        encoded.sources.append(context_ids(example.context, vocabulary, max_context_words))
        encoded.targets.append(torch.tensor(vocabulary.encode([BEGIN, *reply[:max_reply_words], END])))
        encoded.references.append(reply)
    return encoded
