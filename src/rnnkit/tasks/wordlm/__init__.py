"""``wordlm``: a word-level language model on the Penn Treebank or any tokenised text (``task.py``)."""

from rnnkit.tasks.wordlm.task import WordLMTask

__all__ = ["WordLMTask"]
