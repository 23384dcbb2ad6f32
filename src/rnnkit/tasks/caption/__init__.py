"""``caption``: image captioning (``task.py``), and its commands (``commands.py``)."""

from rnnkit.tasks.caption.task import CaptionTask

__all__ = ["CaptionTask"]
