"""``charlm``: a character-level language model on Tiny Shakespeare or any UTF-8 text.

One-to-many: the model reads text and predicts the next character at every step;
generation feeds its own samples back. Trained with truncated BPTT: the hidden state
flows from one window to the next and is detached between them.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from rnnkit.data import CharVocabulary, TokenStreams, Window, bundled_corpus_text, read_text_file
from rnnkit.errors import UserError
from rnnkit.models import LanguageModel, LanguageModelConfig, beam_search, sample
from rnnkit.tasks.base import RunConfig, Session, Task
from rnnkit.train.config import TrainConfig
from rnnkit.train.distributed import SINGLE_PROCESS, Distributed

EVALUATION_STREAMS = 16  # few long streams: few cold starts of the carried state


@dataclass
class CharLMData:
    data: str | None = None
    """UTF-8 text file to train on (default: the bundled Tiny Shakespeare, 1.1M characters)."""
    bptt: int = 128
    """Truncated-BPTT length: characters per training window; the state flows across windows."""
    val_fraction: float = 0.1
    """The last fraction of the text, held out for validation."""

    def validate(self) -> None:
        if self.bptt <= 0:
            raise UserError(f"--bptt: expected a positive integer, got {self.bptt}")
        if not 0 < self.val_fraction < 1:
            raise UserError(f"--val-fraction: expected a fraction in (0, 1), got {self.val_fraction}")


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


class CharLMSession(Session):
    def __init__(self, config: CharLMConfig, vocabulary: CharVocabulary, device: torch.device,
                 context: Distributed = SINGLE_PROCESS) -> None:
        self.config, self.vocabulary, self.device, self.context = config, vocabulary, device, context
        self.model = LanguageModel(len(vocabulary), config.model).to(device)
        self.batches = None
        self.validation = None

    def load_text(self, text: str, where: str, context: Distributed) -> None:
        """Split ``text`` (first part train, last part validation) and lay both out in streams."""
        c = self.config
        split = int(len(text) * (1 - c.dataset.val_fraction))
        if split < c.dataset.bptt + 1:
            raise UserError(
                f"{where} is too short: its training part has {split} characters, fewer than one training "
                f"sequence (--bptt {c.dataset.bptt} + 1); use a longer text or a smaller --bptt"
            )
        if len(text) - split < 2:
            raise UserError(f"{where} is too short to hold out a validation part; use a longer text or a larger --val-fraction")
        global_batch = c.train.batch_size * context.world_size
        if split - 1 < global_batch:
            raise UserError(f"{where}: {split} training characters cannot fill {global_batch} streams; lower --batch-size")
        rows = slice(context.rank * c.train.batch_size, (context.rank + 1) * c.train.batch_size)
        self.batches = TokenStreams(self.vocabulary.encode(text[:split], where), global_batch, c.dataset.bptt, rows)
        self.validation = self.streams_for_evaluation(self.vocabulary.encode(text[split:], where), context)

    def streams_for_evaluation(self, tokens: torch.Tensor, context: Distributed) -> TokenStreams:
        count = max(1, min(EVALUATION_STREAMS, (tokens.numel() - 1) // self.config.dataset.bptt))
        return TokenStreams(tokens, count, self.config.dataset.bptt, slice(context.rank, None, context.world_size))

    def task_state(self) -> dict:
        return {"vocabulary": self.vocabulary.characters}

    def loss(self, network, window, state):
        inputs, targets = window.inputs.to(self.device), window.targets.to(self.device)
        _, loss, state = network(inputs, state, targets)
        return loss, state, inputs.numel()

    def evaluate(self, model, streams: TokenStreams | None = None, context: Distributed | None = None) -> dict[str, float]:
        """Mean cross-entropy per character in nats (and bits) over every stream, the state carried throughout."""
        streams = streams or self.validation
        total = torch.zeros(2, dtype=torch.float64)  # (summed loss, characters)
        state = None
        for window in streams:
            if window.inputs.shape[1] == 0:
                break  # this process holds no evaluation stream
            logits, _, state = model(window.inputs.to(self.device), state)
            targets = window.targets.to(self.device)
            total[0] += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), reduction="sum"))
            total[1] += targets.numel()
        total = (context or self.context).sum(total)
        loss = float(total[0] / total[1])
        return {"loss": loss, "bpc": loss / math.log(2)}

    def report(self, metrics: dict[str, float], label: str = "validation") -> str:
        return f"{label} loss {metrics['loss']:.4f} nats/char ({metrics['bpc']:.4f} bits/char)"

    def generate(self, prime: str, length: int, temperature: float = 1.0, top_k: int = 0, seed: int = 0,
                 beam_size: int = 0) -> str:
        prime = prime or self.default_prime()
        prime_ids = self.vocabulary.encode(prime, "--prime").to(self.device)
        self.model.eval()
        if beam_size > 0:
            ids = beam_search(self.model, prime_ids, length, beam_size)
        else:
            generator = torch.Generator(device=self.device).manual_seed(seed)
            ids = sample(self.model, prime_ids, length, temperature, top_k, generator)
        return prime + self.vocabulary.decode(ids)

    def default_prime(self) -> str:
        """A newline, the natural start of a text, if the corpus has one; else its first character."""
        return "\n" if "\n" in self.vocabulary.characters else self.vocabulary.characters[0]

    def inspection_batch(self, size: int, length: int | None = None) -> Window:
        """``size`` consecutive pieces of ``length`` characters (default --bptt) from the validation text."""
        length = length or self.config.dataset.bptt
        tokens, where = self.held_out_tokens
        size = min(size, (tokens.numel() - 1) // length)
        if size < 1:
            raise UserError(f"{where}: its validation part is shorter than {length + 1} characters; use a smaller --length")
        used = size * length
        inputs = tokens[:used].view(size, length).t()
        targets = tokens[1 : used + 1].view(size, length).t()
        return Window(inputs, targets, starts_epoch=True)

    @functools.cached_property
    def held_out_tokens(self) -> tuple[torch.Tensor, str]:
        """The validation part of the training corpus, encoded (read once), and where it comes from."""
        text, where = _read_corpus(self.config.dataset)
        split = int(len(text) * (1 - self.config.dataset.val_fraction))
        return self.vocabulary.encode(text[split:], where), where

    def step_labels(self, window: Window) -> list[str]:
        return list(self.vocabulary.decode(window.inputs[:, 0]))

    def finish(self) -> str:
        sample = self.generate(self.default_prime(), 400, temperature=0.8, seed=0)
        return "--- sample (temperature 0.8) ---\n" + sample.lstrip("\n")


class CharLMTask(Task):
    name = "charlm"
    summary = "character-level language model (one-to-many), truncated BPTT; default corpus Tiny Shakespeare"
    config_class = CharLMConfig
    unit = "char"

    def start(self, config: CharLMConfig, context: Distributed, device: torch.device) -> CharLMSession:
        text, where = _read_corpus(config.dataset)
        session = CharLMSession(config, CharVocabulary.from_text(text), device, context)
        session.load_text(text, where, context)
        return session

    def restore(self, config: CharLMConfig, task_state: dict, device: torch.device) -> CharLMSession:
        return CharLMSession(config, CharVocabulary(task_state["vocabulary"]), device)

    def evaluate_text(self, session: CharLMSession, path: str | None) -> dict[str, float]:
        """Loss on a text file, or on the validation part of the training corpus."""
        if path is None:
            tokens, _ = session.held_out_tokens
        else:
            tokens = session.vocabulary.encode(read_text_file(Path(path)), f"data file {path}")
        if tokens.numel() < 2:
            raise UserError(f"data file {path} is too short to evaluate on: it needs at least 2 characters")
        session.model.eval()
        with torch.no_grad():
            return session.evaluate(session.model, session.streams_for_evaluation(tokens, SINGLE_PROCESS), SINGLE_PROCESS)
