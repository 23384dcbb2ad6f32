"""Data: text readers, the bundled corpus, vocabularies and batching."""

from rnnkit.data.streams import TokenStreams, Window
from rnnkit.data.text import bundled_corpus_text, read_text_file
from rnnkit.data.vocabulary import CharVocabulary

__all__ = ["CharVocabulary", "TokenStreams", "Window", "bundled_corpus_text", "read_text_file"]
