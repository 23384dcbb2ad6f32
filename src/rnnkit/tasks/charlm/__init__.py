"""``charlm``: a character-level language model (``task.py``; the machinery it shares with wordlm is
``rnnkit.tasks.language_modelling``)."""

from rnnkit.tasks.charlm.task import CharLMTask

__all__ = ["CharLMTask"]
