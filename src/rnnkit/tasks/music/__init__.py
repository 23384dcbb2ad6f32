"""``music``: polyphonic music as piano rolls (``task.py``), and its generate and evaluate commands
(``commands.py``)."""

from rnnkit.tasks.music.task import MusicTask

__all__ = ["MusicTask"]
