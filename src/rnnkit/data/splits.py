"""The three parts of a data set, spelt one way everywhere in the code.

Files name them in their own ways (PTB's ``ptb.valid.txt``, SST's ``stsa.binary.dev``,
Multi30k's ``val.*``, the ``--dev`` option of the text tasks); the code reads them into
these names and nothing else.
"""

from rnnkit.errors import UserError

SPLITS = ("train", "validation", "test")
HELD_OUT_SHARE = 10  # without validation data of its own, a training file's last tenth validates


def hold_out_last_tenth(items: list, too_few: str) -> tuple[list, list]:
    """(training, validation): the last tenth of ``items`` (at least one) validates; ``too_few`` is the UserError's
    message where nothing would be left to train on."""
    held_out = max(1, len(items) // HELD_OUT_SHARE)
    if len(items) <= held_out:
        raise UserError(too_few)
    return items[:-held_out], items[-held_out:]
