"""``charlm``: a character-level language model on Tiny Shakespeare or any UTF-8 text.

The machinery (truncated BPTT, evaluation, generation, the generate and evaluate commands)
is shared with ``wordlm`` in ``language_modelling.py``; this file says where the text comes
from, that tokens are characters, and that the loss is also reported in bits per character.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import torch

from rnnkit.data import CharVocabulary, bundled_corpus_text, read_text_file
from rnnkit.metrics import bits_per_unit
from rnnkit.models import LanguageModelConfig
from rnnkit.tasks.base import RunConfig, Task
from rnnkit.tasks.language_modelling import COMMANDS, LanguageModelSession, StreamOptions
from rnnkit.train.config import TrainConfig
from rnnkit.train.distributed import Distributed


@dataclass
class CharLMData(StreamOptions):
    data: str | None = None
    """UTF-8 text file to train on (default: the bundled Tiny Shakespeare, 1.1M characters)."""
    bptt: int = 128
    """Truncated-BPTT length: characters per training window; the state flows across windows."""


@dataclass
class CharLMConfig(RunConfig):
    model: LanguageModelConfig = field(default_factory=lambda: LanguageModelConfig(
        cell="lstm", hidden_size=512, num_layers=1, dropout=0.2, embedding_size=128))
    # Tuned for the 5-minute budget on 2 CPU cores (docs/benchmarks.md): small batches give the
    # most updates per second, dropout holds back the overfitting of a 512-unit LSTM on 1M characters.
    train: TrainConfig = field(default_factory=lambda: TrainConfig(batch_size=16, eval_every=500))
    dataset: CharLMData = field(default_factory=CharLMData)


def _read_corpus(config: CharLMData) -> tuple[str, str]:
    if config.data is None:
        return bundled_corpus_text(), "the bundled Tiny Shakespeare"
    return read_text_file(config.data), f"data file {config.data}"


def _split(text: str, val_fraction: float) -> int:
    """Where the held-out part of ``text`` begins: the last ``val_fraction`` of its characters."""
    return int(len(text) * (1 - val_fraction))


class CharLMSession(LanguageModelSession):
    unit, units = "char", "characters"
    sample_length = 400

    def loss_metrics(self, loss: float) -> dict[str, float]:
        return {"bpc": bits_per_unit(loss)}

    def report(self, metrics: dict[str, float], label: str = "validation") -> str:
        return f"{label} loss {metrics['loss']:.4f} nats/char ({metrics['bpc']:.4f} bits/char)"

    def held_out_tokens(self) -> tuple[torch.Tensor, str]:
        """The validation part of the training corpus, encoded, and where it comes from."""
        return self._held_out

    @functools.cached_property
    def _held_out(self) -> tuple[torch.Tensor, str]:  # read once
        text, where = _read_corpus(self.config.dataset)
        return self.vocabulary.encode(text[_split(text, self.config.dataset.val_fraction):], where), where


class CharLMTask(Task):
    name = "charlm"
    summary = "character-level language model (one-to-many), truncated BPTT; default corpus Tiny Shakespeare"
    config_class = CharLMConfig
    session_class = CharLMSession
    commands = COMMANDS

    def start(self, config: CharLMConfig, context: Distributed, device: torch.device) -> CharLMSession:
        text, where = _read_corpus(config.dataset)
        vocabulary = CharVocabulary.from_text(text)
        session = CharLMSession(config, vocabulary, device, context)
        split = _split(text, config.dataset.val_fraction)
        session.lay_out(vocabulary.encode(text[:split], where), vocabulary.encode(text[split:], where), None, where, context)
        return session

    def restore(self, config: CharLMConfig, task_state: dict, device: torch.device) -> CharLMSession:
        return CharLMSession(config, CharVocabulary.from_state(task_state["vocabulary"]), device)
