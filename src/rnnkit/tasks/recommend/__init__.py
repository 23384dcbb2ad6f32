"""Next-item recommendation: see ``task.py``."""

from rnnkit.tasks.recommend.task import RecommendTask

__all__ = ["RecommendTask"]
