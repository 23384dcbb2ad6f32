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

from rnnkit.data import Batch, CharVocabulary, TokenStreams, bundled_corpus_text, read_text_file
from rnnkit.errors import UserError
from rnnkit.layers import detach_state
from rnnkit.models import LanguageModel, LanguageModelConfig, beam_search, sample
from rnnkit.tasks.base import CheckpointOptions, Command, RunConfig, Task
from rnnkit.train.config import TrainConfig
from rnnkit.train.distributed import SINGLE_PROCESS, Distributed
from rnnkit.train.session import Session

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

    def training_step(self, network, batch, state):
        if batch.starts_epoch:
            state = None  # the streams start again from the beginning of the text
        batch = batch.to(self.device)
        _, loss, state = network(batch.inputs, state, targets=batch.targets)
        return loss, detach_state(state), batch.inputs.numel()  # truncated BPTT: the state flows, gradients stop

    def evaluate(self, model, streams: TokenStreams | None = None, context: Distributed | None = None) -> dict[str, float]:
        """Mean cross-entropy per character in nats (and bits) over every stream, the state carried throughout."""
        streams = streams or self.validation
        total = torch.zeros(2, dtype=torch.float64)  # (summed loss, characters)
        state = None
        for batch in streams:
            if batch.size == 0:
                break  # this process holds no evaluation stream
            logits, _, state = model(batch.inputs.to(self.device), state)
            targets = batch.targets.to(self.device)
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

    def inspection_batch(self, size: int, length: int | None = None) -> Batch:
        """``size`` consecutive pieces of ``length`` characters (default --bptt) from the validation text."""
        length = length or self.config.dataset.bptt
        tokens, where = self.held_out_tokens
        size = min(size, (tokens.numel() - 1) // length)
        if size < 1:
            raise UserError(f"{where}: its validation part is shorter than {length + 1} characters; use a smaller --length")
        used = size * length
        inputs = tokens[:used].view(size, length).t()
        targets = tokens[1 : used + 1].view(size, length).t()
        return Batch(inputs, targets, starts_epoch=True)

    @functools.cached_property
    def held_out_tokens(self) -> tuple[torch.Tensor, str]:
        """The validation part of the training corpus, encoded (read once), and where it comes from."""
        text, where = _read_corpus(self.config.dataset)
        split = int(len(text) * (1 - self.config.dataset.val_fraction))
        return self.vocabulary.encode(text[split:], where), where

    def step_labels(self, batch: Batch) -> list[str]:
        return list(self.vocabulary.decode(batch.inputs[:, 0]))

    def finish(self) -> str:
        sample = self.generate(self.default_prime(), 400, temperature=0.8, seed=0)
        return "--- sample (temperature 0.8) ---\n" + sample.lstrip("\n")


@dataclass
class GenerateOptions(CheckpointOptions):
    prime: str = ""
    """Text to start from (default: a newline, or the corpus's first character if it has none)."""
    length: int = 500
    """Characters to generate."""
    temperature: float = 0.8
    """Sampling temperature: lower is more conservative, 0 is greedy."""
    top_k: int = 0
    """Sample only among the k most likely characters (0: all)."""
    seed: int = 0
    """Random seed of the sampling."""
    beam_size: int = 0
    """Beam search with this many beams instead of sampling (0: sample)."""


def generate(session: CharLMSession, options: GenerateOptions) -> None:
    if options.length < 0 or options.temperature < 0 or options.top_k < 0 or options.beam_size < 0:
        raise UserError("--length, --temperature, --top-k and --beam-size must be >= 0")
    print(session.generate(options.prime, options.length, options.temperature, options.top_k, options.seed,
                           options.beam_size))


@dataclass
class EvaluateOptions(CheckpointOptions):
    data: str | None = None
    """Text file to evaluate on (default: the validation part of the training corpus)."""


def evaluate(session: CharLMSession, options: EvaluateOptions) -> None:
    """Loss on a text file, or on the validation part of the training corpus."""
    if options.data is None:
        tokens, _ = session.held_out_tokens
    else:
        tokens = session.vocabulary.encode(read_text_file(Path(options.data)), f"data file {options.data}")
    if tokens.numel() < 2:
        raise UserError(f"data file {options.data} is too short to evaluate on: it needs at least 2 characters")
    session.model.eval()
    with torch.no_grad():
        metrics = session.evaluate(session.model, session.streams_for_evaluation(tokens, SINGLE_PROCESS), SINGLE_PROCESS)
    print(session.report(metrics, label="evaluation"))


class CharLMTask(Task):
    name = "charlm"
    summary = "character-level language model (one-to-many), truncated BPTT; default corpus Tiny Shakespeare"
    config_class = CharLMConfig
    unit = "char"
    commands = {
        "generate": Command("text sampled (or beam-searched) from the trained model", GenerateOptions, generate),
        "evaluate": Command("loss on a text file, or on the held-out part of the training text", EvaluateOptions, evaluate),
    }

    def start(self, config: CharLMConfig, context: Distributed, device: torch.device) -> CharLMSession:
        text, where = _read_corpus(config.dataset)
        session = CharLMSession(config, CharVocabulary.from_text(text), device, context)
        session.load_text(text, where, context)
        return session

    def restore(self, config: CharLMConfig, task_state: dict, device: torch.device) -> CharLMSession:
        return CharLMSession(config, CharVocabulary(task_state["vocabulary"]), device)
