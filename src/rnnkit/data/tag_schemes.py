"""Entity tag schemes: IOB1 (CoNLL-2003's own), BIO (IOB2) and IOBES, conversions between them, and their rules.

    tokens   U.N.   official  Ekeus  heads  for  Baghdad  New    York
    IOB1     I-ORG  O         I-PER  O      O    I-LOC    I-LOC  I-LOC   B- only between two same-type entities
    BIO      B-ORG  O         B-PER  O      O    B-LOC    I-LOC  I-LOC   B- starts every entity
    IOBES    S-ORG  O         S-PER  O      O    S-LOC    B-LOC  E-LOC   S- single, E- ends

(``Baghdad`` and ``New York`` would be one I-LOC run in IOB1 unless a B-LOC split them.)
The three describe the same entities, so a model may be trained on one and report in
another. ``allowed_transition`` is the scheme's grammar: which tag may follow which, and
which may start or end a sentence; the CRF forbids the rest.
"""

from __future__ import annotations

SCHEMES = ("iob1", "bio", "iobes")
OUTSIDE = "O"


def split_tag(tag: str) -> tuple[str, str | None]:
    """('B', 'PER') from 'B-PER'; ('O', None) from 'O'."""
    if tag == OUTSIDE:
        return OUTSIDE, None
    prefix, _, kind = tag.partition("-")
    return prefix, kind


def is_valid_tag(tag: str, scheme: str) -> bool:
    prefix, kind = split_tag(tag)
    prefixes = {"iob1": "IB", "bio": "IB", "iobes": "IBES"}[scheme]
    return tag == OUTSIDE or (len(prefix) == 1 and prefix in prefixes and bool(kind))


def to_bio(tags: list[str]) -> list[str]:
    """The same entities in BIO. IOB1 and IOBES tag sequences are read leniently, as conlleval reads them:
    an I- that does not continue an entity of its type starts one."""
    bio = []
    for position, tag in enumerate(tags):
        prefix, kind = split_tag(tag)
        previous = bio[position - 1] if position else OUTSIDE
        continues = previous != OUTSIDE and split_tag(previous)[1] == kind and not tags[position - 1].startswith(("E-", "S-"))
        if prefix == OUTSIDE:
            bio.append(OUTSIDE)
        elif prefix in ("B", "S") or not continues:
            bio.append(f"B-{kind}")
        else:  # I or E continuing an entity of its type
            bio.append(f"I-{kind}")
    return bio


def from_bio(tags: list[str], scheme: str) -> list[str]:
    """BIO tags (as ``to_bio`` gives them) in ``scheme``."""
    if scheme == "bio":
        return list(tags)
    converted = []
    for position, tag in enumerate(tags):
        prefix, kind = split_tag(tag)
        following = tags[position + 1] if position + 1 < len(tags) else OUTSIDE
        continued = following == f"I-{kind}"
        if prefix == OUTSIDE:
            converted.append(OUTSIDE)
        elif scheme == "iobes":
            converted.append(f"{'B' if continued else 'S'}-{kind}" if prefix == "B" else f"{'I' if continued else 'E'}-{kind}")
        else:  # iob1: B- only where an entity directly follows one of the same type
            previous_kind = split_tag(tags[position - 1])[1] if position else None
            converted.append(f"B-{kind}" if prefix == "B" and previous_kind == kind else f"I-{kind}")
    return converted


def convert(tags: list[str], target: str) -> list[str]:
    """The entities of ``tags`` in ``target``'s tags. They are read leniently (``to_bio``, the same reading for
    every scheme), so the result always follows ``target``'s rules, even where the input broke its own
    scheme's: a BIO file's ``O I-PER`` becomes ``O B-PER``, a tag path the CRF can decode."""
    return from_bio(to_bio(tags), target)


def allowed_transition(previous: str | None, following: str | None, scheme: str) -> bool:
    """Whether tag ``following`` may come right after ``previous`` (None: the start, or the end, of a sentence)."""
    previous_prefix, previous_kind = split_tag(previous) if previous is not None else (None, None)
    following_prefix, following_kind = split_tag(following) if following is not None else (None, None)
    if scheme == "iob1":  # B-X only right after an entity of the same type X
        return following_prefix != "B" or previous_kind == following_kind
    if scheme == "bio":  # I-X only inside an entity of type X
        return following_prefix != "I" or (previous_prefix in ("B", "I") and previous_kind == following_kind)
    if previous_prefix in ("B", "I"):  # IOBES: an open entity goes on (I-X) or ends (E-X)
        return following_prefix in ("I", "E") and following_kind == previous_kind
    return following_prefix not in ("I", "E")  # after O, E-, S- or at the start: O, B-, S- or the end
