"""Data: text readers, the bundled corpus, vocabularies and batching."""

from rnnkit.data.batch import Batch, Batches
from rnnkit.data.streams import TokenStreams
from rnnkit.data.text import bundled_corpus_text, read_text_file
from rnnkit.data.vocabulary import CharVocabulary

__all__ = ["Batch", "Batches", "CharVocabulary", "TokenStreams", "bundled_corpus_text", "read_text_file"]
