"""The one exception type for mistakes a user can fix: bad data, bad options, bad checkpoints.

The command line prints its message as one line and exits with status 2, without a
traceback. Messages say what is wrong, where, and how to fix it.
"""


class UserError(Exception):
    """A problem with the user's input, reported as one line (exit status 2)."""
