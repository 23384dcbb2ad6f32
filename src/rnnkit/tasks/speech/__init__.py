"""``speech``: speech recognition with a CTC acoustic model (``task.py``), and its predict and evaluate (``commands.py``)."""

from rnnkit.tasks.speech.task import SpeechTask

__all__ = ["SpeechTask"]
