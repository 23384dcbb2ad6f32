"""Users' interactions with items, as one time-ordered item sequence per user, and the leave-one-out split.

Formats read (``read_interactions``):
- ``user item`` per line, whitespace-separated, each user's lines in time order (SASRec's
  ``data/Video.txt``, the "Games" set); a third column, if there is one, is a timestamp.
- ``user item1 item2 ...``, one user per line in time order (S3-Rec's ``data/Beauty.txt``):
  ``read_user_sequences``.
- CSV or TSV (``.csv``, ``.tsv``) with a header naming the user, item and timestamp columns
  (``user``/``user_id``, ``item``/``item_id``, ``timestamp``/``time``), and RecBole's atomic
  ``.inter`` files (tab-separated, ``user_id:token item_id:token ... timestamp:float``).

Ids stay strings (as in the data) everywhere a person sees them; ``Catalogue`` maps them to the
model's indices, 1..N, with 0 for padding. With timestamps, each user's items are sorted by time
(stably: ties keep the file's order).

Leave-one-out, as SASRec and S3-Rec split (``leave_one_out``)::

    a user's items:  i1 i2 i3 ... i(n-2) | i(n-1) | i(n)
                     training            | valid. | test
    validation: the history i1..i(n-2) predicts i(n-1); test: i1..i(n-1) predicts i(n)

Users with fewer than 3 items have no validation and test item; their items only train (as
SASRec's ``util.py`` does), and ``leave_one_out`` counts them.
"""

from __future__ import annotations

import csv
import functools
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rnnkit.data.text import read_text_file
from rnnkit.errors import UserError

USER_COLUMNS = ("user", "user_id", "userid")
ITEM_COLUMNS = ("item", "item_id", "itemid")
TIME_COLUMNS = ("timestamp", "time", "ts")
EVALUATED_FROM = 3  # items a user needs to have a validation and a test item besides training


@dataclass
class Histories:
    """Each user's items, in time order; ids as in the data."""

    users: list[str]
    sequences: list[list[str]]

    def __len__(self) -> int:
        return len(self.users)

    def actions(self) -> int:
        return sum(len(items) for items in self.sequences)


def read_interactions(path: str | Path, option: str = "--interactions") -> Histories:
    """A file of (user, item[, timestamp]) interactions as each user's time-ordered items."""
    path = Path(path)
    content = read_text_file(path, option=option)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".inter"):
        rows = _table_rows(content, path, "," if suffix == ".csv" else "\t")
    else:
        rows = _pair_rows(content, path)
    by_user: dict[str, list[tuple[float, int, str]]] = {}
    for order, (user, item, time) in enumerate(rows):
        by_user.setdefault(user, []).append((time, order, item))
    if not by_user:
        raise UserError(f"{path} holds no interaction: expected one 'user item [timestamp]' per line")
    return Histories(list(by_user), [[item for _, _, item in sorted(events)] for events in by_user.values()])


def _pair_rows(content: str, path: Path) -> list[tuple[str, str, float]]:
    rows = []
    for number, line in enumerate(content.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) not in (2, 3):
            raise UserError(f"{path} line {number}: expected 'user item' or 'user item timestamp', got {line.strip()!r} "
                            f"({len(fields)} fields); one interaction per line")
        rows.append((fields[0], fields[1], _time(fields[2], path, number) if len(fields) == 3 else 0.0))
    return rows


def _table_rows(content: str, path: Path, delimiter: str) -> list[tuple[str, str, float]]:
    lines = list(csv.reader(io.StringIO(content), delimiter=delimiter))
    header = [name.split(":")[0].strip().lower() for name in lines[0]] if lines else []  # .inter: 'user_id:token'
    columns = [next((header.index(name) for name in names if name in header), None)
               for names in (USER_COLUMNS, ITEM_COLUMNS, TIME_COLUMNS)]
    if columns[0] is None or columns[1] is None:
        raise UserError(f"{path} line 1: expected a header naming the user and item columns (user or user_id, item or "
                        f"item_id, and optionally timestamp), got {delimiter.join(lines[0]) if lines else 'nothing'!r}")
    user, item, time = columns
    rows = []
    for number, fields in enumerate(lines[1:], start=2):
        if not fields:
            continue
        if len(fields) != len(header):
            raise UserError(f"{path} line {number}: {len(fields)} fields where the header names {len(header)}; quote "
                            "fields that hold the delimiter")
        rows.append((fields[user], fields[item], 0.0 if time is None else _time(fields[time], path, number)))
    return rows


def _time(text: str, path: Path, number: int) -> float:
    try:
        return float(text)
    except ValueError:
        raise UserError(f"{path} line {number}: the timestamp {text!r} is not a number; give seconds (or any number "
                        "that orders the interactions)") from None


def read_user_sequences(path: str | Path, option: str = "--data-dir") -> Histories:
    """``user item1 item2 ...`` per line (S3-Rec's files): each user's items in time order."""
    path = Path(path)
    users, sequences = [], []
    for number, line in enumerate(read_text_file(path, option=option).splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 2:
            raise UserError(f"{path} line {number}: expected 'user item1 item2 ...', got {line.strip()!r}")
        users.append(fields[0])
        sequences.append(fields[1:])
    return Histories(users, sequences)


def keep_frequent_items(histories: Histories, min_count: int) -> tuple[Histories, int]:
    """The histories without the items seen fewer than ``min_count`` times (one pass, as SASRec's preprocessing),
    and how many distinct items were dropped; users left with no item are dropped."""
    counts = Counter(item for items in histories.sequences for item in items)
    rare = {item for item, count in counts.items() if count < min_count}
    kept = [(user, [item for item in items if item not in rare]) for user, items in zip(histories.users,
                                                                                       histories.sequences)]
    kept = [(user, items) for user, items in kept if items]
    return Histories([user for user, _ in kept], [items for _, items in kept]), len(rare)


@dataclass(frozen=True)
class Catalogue:
    """The items a model knows, by their ids in the data: index i + 1 is ``items[i]`` (0 is padding)."""

    items: tuple[str, ...]

    @classmethod
    def of(cls, histories: Histories) -> Catalogue:
        """Every item of ``histories``, in order of first appearance."""
        return cls(tuple(dict.fromkeys(item for items in histories.sequences for item in items)))

    def __len__(self) -> int:
        return len(self.items)

    @functools.cached_property
    def index(self) -> dict[str, int]:
        return {item: number for number, item in enumerate(self.items, start=1)}

    def indices(self, items: list[str]) -> list[int]:
        index = self.index
        return [index[item] for item in items]

    def ids(self, indices) -> list[str]:
        return [self.items[int(i) - 1] for i in indices]


@dataclass
class HeldOut:
    """One held-out item per evaluated user: the history before it, and every item the user interacted with."""

    users: list[int] = field(default_factory=list)  # positions in the Histories
    histories: list[list[int]] = field(default_factory=list)  # item indices, in time order
    targets: list[int] = field(default_factory=list)
    interacted: list[list[int]] = field(default_factory=list)  # all of the user's items (for sampled negatives)


@dataclass
class LeaveOneOut:
    train: list[list[int]]  # each user's training items (every user, those too short to evaluate included)
    validation: HeldOut
    test: HeldOut
    train_only: int  # users with fewer than EVALUATED_FROM items: not evaluated


def leave_one_out(histories: Histories, catalogue: Catalogue) -> LeaveOneOut:
    """The split of the module docstring, on item indices."""
    index = catalogue.index
    split = LeaveOneOut([], HeldOut(), HeldOut(), 0)
    for user, items in enumerate(histories.sequences):
        sequence = [index[item] for item in items]
        if len(sequence) < EVALUATED_FROM:
            split.train.append(sequence)
            split.train_only += 1
            continue
        split.train.append(sequence[:-2])
        for held_out, end in ((split.validation, -2), (split.test, -1)):
            held_out.users.append(user)
            held_out.histories.append(sequence[:end])
            held_out.targets.append(sequence[end])
            held_out.interacted.append(sequence)
    return split


def sampled_candidates(held_out: HeldOut, items: int, negatives: int, seed: int, chunk: int = 1024) -> torch.Tensor:
    """(U, 1 + negatives) item indices: each user's target, then ``negatives`` distinct items drawn uniformly from those
    the user never interacted with (SASRec's protocol; the same for every model given the same seed)."""
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for start in range(0, len(held_out.targets), chunk):
        interacted = held_out.interacted[start : start + chunk]
        allowed = torch.ones(len(interacted), items + 1)
        allowed[:, 0] = 0  # padding
        for row, user_items in enumerate(interacted):
            allowed[row, user_items] = 0
        if int(allowed.sum(1).min()) < negatives:
            raise UserError(f"the sampled evaluation draws {negatives} negatives per user, and a user has interacted "
                            f"with all but {int(allowed.sum(1).min())} of the {items} items; use the full ranking")
        drawn = torch.multinomial(allowed, negatives, replacement=False, generator=generator)
        targets = torch.tensor(held_out.targets[start : start + chunk]).unsqueeze(1)
        rows.append(torch.cat([targets, drawn], dim=1))
    return torch.cat(rows)
