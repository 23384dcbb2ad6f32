"""``adding``: the adding problem (``task.py``; what it shares with copy and digits is ``rnnkit.tasks.fixed_sets``)."""

from rnnkit.tasks.adding.task import AddingTask

__all__ = ["AddingTask"]
