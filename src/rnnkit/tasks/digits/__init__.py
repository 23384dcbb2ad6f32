"""``digits``: handwritten digits read pixel by pixel (``task.py``)."""

from rnnkit.tasks.digits.task import DigitsTask

__all__ = ["DigitsTask"]
