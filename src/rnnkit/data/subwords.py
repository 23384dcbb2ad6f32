"""Subword units: words split into frequent pieces, so that a rare word is spelt from known parts, not ``<unk>``.

A byte-pair-encoding model (Sennrich et al. 2016) learnt by sentencepiece (Kudo & Richardson
2018) from one language's training sentences, already tokenised into words::

    "zwei männer bedienen ein antriebsradsystem ."  ->  ▁zwei ▁männer ▁bedienen ▁ein ▁antrieb s rad system ▁.

``▁`` marks where a word starts, so ``decode`` gives back exactly the words it was given.
sentencepiece is maintained, trains and splits in C++ in well under a second on Multi30k,
and its model is one serialised string, which a checkpoint's JSON task state holds (base64);
subword-nmt, the other BPE library in use, has not been released since 2021.
"""

from __future__ import annotations

import base64
import io


class SubwordModel:
    def __init__(self, serialized: bytes) -> None:
        import sentencepiece  # [tasks] extra

        self.serialized = serialized
        self.processor = sentencepiece.SentencePieceProcessor(model_proto=serialized)

    @classmethod
    def train(cls, sentences: list[str], size: int) -> "SubwordModel":
        """A BPE model of ``size`` pieces learnt from ``sentences`` (words separated by spaces)."""
        import sentencepiece

        model = io.BytesIO()
        try:
            sentencepiece.SentencePieceTrainer.train(
                sentence_iterator=iter(sentences), model_writer=model, vocab_size=size, model_type="bpe",
                character_coverage=1.0, unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1, minloglevel=2, num_threads=1)
        except RuntimeError as error:  # e.g. "Vocabulary size is too high (4000). Please set it to a value <= 812."
            raise ValueError(str(error).splitlines()[-1].strip()) from None
        return cls(model.getvalue())

    def split(self, words: list[str]) -> list[str]:
        return self.processor.encode(" ".join(words), out_type=str)

    def decode(self, pieces: list[str]) -> list[str]:
        """The words ``pieces`` spell."""
        return self.processor.decode(pieces).split()

    def to_state(self) -> str:
        return base64.b64encode(self.serialized).decode("ascii")

    @classmethod
    def from_state(cls, state: str) -> "SubwordModel":
        return cls(base64.b64decode(state))
