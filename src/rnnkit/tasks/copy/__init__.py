"""``copy``: the copy-memory task (``task.py``)."""

from rnnkit.tasks.copy.task import CopyTask

__all__ = ["CopyTask"]
