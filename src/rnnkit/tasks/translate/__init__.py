"""``translate``: sequence to sequence with an encoder–decoder (``task.py``), and its commands (``commands.py``)."""

from rnnkit.tasks.translate.task import TranslateTask

__all__ = ["TranslateTask"]
