"""The three parts of a data set, spelt one way everywhere in the code.

Files name them in their own ways (PTB's ``ptb.valid.txt``, SST's ``stsa.binary.dev``,
Multi30k's ``val.*``, the ``--dev`` option of the text tasks); the code reads them into
these names and nothing else.
"""

SPLITS = ("train", "validation", "test")
