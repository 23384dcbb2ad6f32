"""``chat``: a chatbot (``task.py``), and its commands, the terminal conversation among them (``commands.py``)."""

from rnnkit.tasks.chat.task import ChatTask

__all__ = ["ChatTask"]
