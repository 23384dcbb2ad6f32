"""``sst``: sentence classification on the Stanford Sentiment Treebank or your own labelled sentences (``task.py``;
what it shares with ner is ``rnnkit.tasks.labelled_files``)."""

from rnnkit.tasks.sst.task import SSTTask

__all__ = ["SSTTask"]
