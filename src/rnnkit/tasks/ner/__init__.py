"""``ner``: named-entity recognition, BiLSTM-CRF on CoNLL-2003 or any CoNLL file (``task.py``)."""

from rnnkit.tasks.ner.task import NERTask

__all__ = ["NERTask"]
