"""``wordlm``: a word-level language model on the Penn Treebank or any whitespace-tokenised text.

The field's standard word-level benchmark: Mikolov's preprocessed PTB (10k words with
``<unk>``, ``<eos>`` at every line end; splits train/valid/test), scored by perplexity,
exp(mean cross-entropy per word). ``--data-dir`` names a folder with ``ptb.train.txt``,
``ptb.valid.txt`` and ``ptb.test.txt`` (or ``train.txt``, ``valid.txt``, ``test.txt``);
``--data FILE`` trains on any text instead, holding out its last ``--val-fraction``. The
vocabulary is the ``--vocab-size`` most frequent words of the training split; other words
read as ``<unk>``. The machinery is ``charlm``'s (``language_modelling.py``).

The defaults are the small configuration of Zaremba et al. 2014: a 2×200 LSTM, unroll 20,
batch 20, SGD, no dropout, 13 epochs, the learning rate halved after each epoch from the
fifth on, embeddings and output layer drawn from U(-0.1, 0.1) as theirs. Their learning rate 1 and gradient-norm clip 5 apply to a loss summed over the 20
steps of a window (and averaged over the batch); rnnkit's loss is the mean over steps too,
which makes gradients 20 times smaller, so the same updates are ``--lr 20 --clip-grad-norm
0.25`` here (pytorch/examples' word_language_model uses the same pair for the same reason).
PTB's training split is 929,589 words, so an epoch is 929,589 / (20 × 20) = 2,323 windows:
``--step-every 2323 --step-start 9292``; with other data or batch sizes, set them to your epoch.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rnnkit.data import read_text_file
from rnnkit.data.vocabulary import WordVocabulary
from rnnkit.errors import UserError
from rnnkit.metrics import perplexity
from rnnkit.models import LanguageModelConfig
from rnnkit.tasks.base import RunConfig, Task
from rnnkit.tasks.language_modelling import COMMANDS, LanguageModelSession, StreamOptions
from rnnkit.train.config import TrainConfig
from rnnkit.train.distributed import Distributed

FILE_SPLITS = {"train": "train", "validation": "valid", "test": "test"}  # split -> the files' name for it
PTB_EPOCH = 2323  # training windows in one pass over PTB at batch 20, unroll 20
PREFIXES = ("ptb.", "")  # ptb.train.txt as Mikolov ships it, or plain train.txt


@dataclass
class WordLMData(StreamOptions):
    data_dir: str = "../shared/data/ptb"
    """Folder with the train, valid and test splits (ptb.train.txt, ... or train.txt, ...)."""
    data: str | None = None
    """A whitespace-tokenised text file to train on instead of --data-dir (its last --val-fraction held out)."""
    vocab_size: int = 10000
    """The most frequent training words kept, <unk> and <eos> included; the others read as <unk>."""
    bptt: int = 20
    """Truncated-BPTT length: words per training window; the state flows across windows."""
    val_fraction: float = 0.1
    """With --data: the last fraction of the text, held out for validation."""

    def validate(self) -> None:
        super().validate()
        if self.vocab_size < 3:
            raise UserError(f"--vocab-size: expected at least 3 (<unk>, <eos> and a word), got {self.vocab_size}")


@dataclass
class WordLMConfig(RunConfig):
    model: LanguageModelConfig = field(default_factory=lambda: LanguageModelConfig(
        cell="lstm", hidden_size=200, num_layers=2, embedding_size=200, init_range=0.1))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        batch_size=20, optimizer="sgd", lr=20.0, momentum=0.0, clip_grad_norm=0.25, epochs=13, max_minutes=0.0,
        schedule="step", gamma=0.5, step_every=PTB_EPOCH, step_start=4 * PTB_EPOCH, eval_every=PTB_EPOCH,
        precision="fp32"))
    dataset: WordLMData = field(default_factory=WordLMData)


@dataclass
class WordTexts:
    """The splits' texts and where each comes from; ``test`` is None for a single --data file."""

    train: tuple[str, str]
    validation: tuple[str, str]
    test: tuple[str, str] | None


def read_splits(data: WordLMData) -> WordTexts:
    """The texts of the three splits of --data-dir, or of --data cut into train and validation."""
    if data.data is not None:
        text = read_text_file(data.data)
        lines = text.splitlines(keepends=True)
        split = int(len(lines) * (1 - data.val_fraction))
        where = f"data file {data.data}"
        return WordTexts(("".join(lines[:split]), where), ("".join(lines[split:]), where), None)
    folder = Path(data.data_dir)
    if not folder.is_dir():
        raise UserError(
            f"--data-dir: {folder} is not a folder; pass --data-dir DIR holding ptb.train.txt, ptb.valid.txt and "
            "ptb.test.txt (Mikolov's Penn Treebank), or --data FILE to train on one text file"
        )
    texts = {}
    for split, name in FILE_SPLITS.items():
        candidates = [folder / f"{prefix}{name}.txt" for prefix in PREFIXES]
        path = next((candidate for candidate in candidates if candidate.is_file()), None)
        if path is None:
            raise UserError(
                f"--data-dir: {folder} has no {candidates[0].name} (nor {candidates[1].name}); it needs the train, "
                "valid and test splits of a whitespace-tokenised corpus"
            )
        texts[split] = (read_text_file(path, option="--data-dir"), f"data file {path}")
    return WordTexts(texts["train"], texts["validation"], texts["test"])


class WordLMSession(LanguageModelSession):
    unit, units = "word", "words"
    sample_length = 100

    def loss_metrics(self, loss: float) -> dict[str, float]:
        return {"perplexity": perplexity(loss)}

    def report(self, metrics: dict[str, float], label: str = "validation") -> str:
        return f"{label} loss {metrics['loss']:.4f} nats/word, perplexity {metrics['perplexity']:.2f}"

    def held_out_tokens(self) -> tuple[torch.Tensor, str]:
        """The validation split, encoded, and where it comes from."""
        return self._held_out

    @functools.cached_property
    def _held_out(self) -> tuple[torch.Tensor, str]:  # read once
        text, where = read_splits(self.config.dataset).validation
        return self.vocabulary.encode(text, where), where


class WordLMTask(Task):
    name = "wordlm"
    summary = "word-level language model (perplexity), truncated BPTT; Penn Treebank from --data-dir or any --data"
    config_class = WordLMConfig
    session_class = WordLMSession
    commands = COMMANDS

    def start(self, config: WordLMConfig, context: Distributed, device: torch.device) -> WordLMSession:
        texts = read_splits(config.dataset)
        vocabulary = WordVocabulary.from_text(texts.train[0], config.dataset.vocab_size)
        session = WordLMSession(config, vocabulary, device, context)
        train, validation = (vocabulary.encode(*texts.train), vocabulary.encode(*texts.validation))
        test = None if texts.test is None else vocabulary.encode(*texts.test)
        session.lay_out(train, validation, test, texts.train[1], context)
        return session

    def restore(self, config: WordLMConfig, task_state: dict, device: torch.device) -> WordLMSession:
        return WordLMSession(config, WordVocabulary.from_state(task_state["vocabulary"]), device)
