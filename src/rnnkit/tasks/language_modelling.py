"""What the language-model tasks share (``charlm``, ``wordlm``): truncated BPTT over token streams,
evaluation with the state carried, generation, and the ``generate`` and ``evaluate`` commands.

A task adds its vocabulary (characters or words), where its text comes from, and what the
loss is reported as (bits per character, perplexity): ``LanguageModelSession.loss_metrics``
and ``unit``. One-to-many: the model reads text and predicts the next token at every step;
generation feeds its own samples back. The hidden state flows from one window to the next
and is detached between them.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterator, Protocol

import torch
import torch.nn.functional as F

from rnnkit.data import Batch, TokenStreams, read_text_file
from rnnkit.errors import UserError
from rnnkit.layers import Recurrent, detach_state
from rnnkit.models import LanguageModel, beam_search
from rnnkit.models.sampling import sampled_tokens
from rnnkit.tasks.base import CheckpointOptions, Command
from rnnkit.tasks.predict import answered_in_place
from rnnkit.train.distributed import SINGLE_PROCESS, Distributed
from rnnkit.train.session import Session

EVALUATION_STREAMS = 16  # few long streams: few cold starts of the carried state


@dataclass
class StreamOptions:
    """The data options every language-model task has; a task's own dataset options extend these."""

    bptt: int = 35
    """Truncated-BPTT length: tokens per training window; the state flows across windows."""
    val_fraction: float = 0.1
    """The last fraction of the text, held out for validation."""

    def validate(self) -> None:
        if self.bptt <= 0:
            raise UserError(f"--bptt: expected a positive integer, got {self.bptt}")
        if not 0 < self.val_fraction < 1:
            raise UserError(f"--val-fraction: expected a fraction in (0, 1), got {self.val_fraction}")


class LanguageModelSession(Session):
    """A ``LanguageModel`` over ``vocabulary``; ``config`` is a RunConfig whose dataset has ``bptt``."""

    unit: ClassVar[str] = "token"  # what one position is: counted in training, and in reports (nats/char, nats/word)
    units: ClassVar[str] = "tokens"  # the same in messages: characters, words
    sample_length: ClassVar[int] = 100  # tokens of the sample printed when training ends

    def __init__(self, config, vocabulary, device: torch.device, context: Distributed = SINGLE_PROCESS) -> None:
        self.config, self.vocabulary, self.device, self.context = config, vocabulary, device, context
        self.model = LanguageModel(len(vocabulary), config.model).to(device)
        self.batches = None
        self.validation = None
        self.test = None

    @abstractmethod
    def loss_metrics(self, loss: float) -> dict[str, float]:
        """What the mean cross-entropy in nats per token is also reported as (bits per character, perplexity)."""

    @abstractmethod
    def held_out_tokens(self) -> tuple[torch.Tensor, str]:
        """The held-out (validation) text, encoded, and where it comes from: for ``evaluate`` and ``inspect``."""

    def read_tokens(self, path: str) -> torch.Tensor:
        """A text file to evaluate on, encoded with the run's vocabulary."""
        tokens = self.vocabulary.encode(read_text_file(Path(path)), f"data file {path}")
        if tokens.numel() < 2:
            raise UserError(f"data file {path} is too short to evaluate on: it needs at least 2 {self.units}")
        return tokens

    # ----------------------------------------------------------------- data
    def lay_out(self, train: torch.Tensor, validation: torch.Tensor, test: torch.Tensor | None, where: str,
                context: Distributed) -> None:
        """Lay the encoded splits out in streams: this process's rows of the training streams, and evaluation streams."""
        c = self.config
        if train.numel() < c.dataset.bptt + 1:
            raise UserError(
                f"{where} is too short: its training part has {train.numel()} {self.units}, fewer than one training "
                f"sequence (--bptt {c.dataset.bptt} + 1); use a longer text or a smaller --bptt"
            )
        if validation.numel() < 2:
            raise UserError(f"{where} is too short to hold out a validation part; use a longer text or a larger --val-fraction")
        global_batch = c.train.batch_size * context.world_size
        if train.numel() - 1 < global_batch:
            raise UserError(f"{where}: {train.numel()} training {self.units} cannot fill {global_batch} streams; lower --batch-size")
        rows = slice(context.rank * c.train.batch_size, (context.rank + 1) * c.train.batch_size)
        self.batches = TokenStreams(train, global_batch, c.dataset.bptt, rows)
        self.validation = self.streams_for_evaluation(validation, context)
        self.test = None if test is None else self.streams_for_evaluation(test, context)

    def streams_for_evaluation(self, tokens: torch.Tensor, context: Distributed) -> TokenStreams:
        count = max(1, min(EVALUATION_STREAMS, (tokens.numel() - 1) // self.config.dataset.bptt))
        return TokenStreams(tokens, count, self.config.dataset.bptt, slice(context.rank, None, context.world_size))

    def task_state(self) -> dict:
        return {"vocabulary": self.vocabulary.to_state()}

    # ----------------------------------------------------------------- training and evaluation
    def training_step(self, network, batch, state):
        if batch.starts_epoch:
            state = None  # the streams start again from the beginning of the text
        batch = batch.to(self.device)
        _, loss, state = network(batch.inputs, state, targets=batch.targets)
        return loss, detach_state(state), self.units_in(batch)  # truncated BPTT: the state flows, gradients stop

    def units_in(self, batch: Batch) -> int:
        return batch.inputs.numel()

    def loss_terms(self, batch: Batch) -> int:
        return batch.inputs.numel()  # the mean cross-entropy per token

    def evaluate(self, model) -> dict[str, float]:
        return self.evaluate_streams(model, self.validation, self.context)

    def evaluate_tokens(self, tokens: torch.Tensor) -> dict[str, float]:
        """The metrics of the trained model on ``tokens`` (a text), in this process alone."""
        self.model.eval()
        with torch.no_grad():
            return self.evaluate_streams(self.model, self.streams_for_evaluation(tokens, SINGLE_PROCESS), SINGLE_PROCESS)

    def evaluate_streams(self, model, streams: TokenStreams, context: Distributed) -> dict[str, float]:
        """Mean cross-entropy per token in nats over every stream, the state carried throughout."""
        total = torch.zeros(2, dtype=torch.float64)  # (summed loss, tokens)
        state = None
        for batch in streams:
            if batch.size == 0:
                break  # this process holds no evaluation stream
            logits, _, state = model(batch.inputs.to(self.device), state)
            targets = batch.targets.to(self.device)
            total[0] += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), reduction="sum"))
            total[1] += targets.numel()
        total = context.sum(total)
        loss = float(total[0] / total[1])
        return {"loss": loss, **self.loss_metrics(loss)}

    def test_summary(self) -> dict:
        if self.test is None:
            return {}
        self.model.eval()
        with torch.no_grad():
            return {"test": self.evaluate_streams(self.model, self.test, self.context)}

    # ----------------------------------------------------------------- generation
    def generate(self, prime: str, length: int, temperature: float = 1.0, top_k: int = 0, seed: int = 0,
                 beam_size: int = 0) -> str:
        """The prime and its continuation by ``length`` tokens, sampled (or the beam search's best)."""
        return "".join(self.generated_pieces(prime, length, temperature, top_k, seed, beam_size))

    def generated_pieces(self, prime: str, length: int, temperature: float = 1.0, top_k: int = 0, seed: int = 0,
                         beam_size: int = 0) -> Iterator[str]:
        """``generate``'s text as it is produced: the prime, then the text each sampled token adds (a beam search's
        continuation comes whole, when the search ends)."""
        prime_ids = self.vocabulary.encode(prime or self.default_prime(), "--prime").to(self.device)
        if prime_ids.numel() == 0:
            raise UserError("--prime: the text holds no token of the model's vocabulary; give some text to start from")
        self.model.eval()
        written = self.vocabulary.decode(prime_ids.tolist())
        yield written
        if beam_size > 0 and length > 0:  # the continuation of the highest log-probability the beam finds
            limit = torch.tensor([length], device=self.device)
            tokens = beam_search(self.model, prime_ids.view(-1, 1), beam_size=beam_size, max_lengths=limit)[0][0].tokens
        elif beam_size > 0:
            tokens = []
        else:
            generator = torch.Generator(device=self.device).manual_seed(seed)
            tokens = sampled_tokens(self.model, prime_ids, length, temperature, top_k, generator)
        ids = prime_ids.tolist()
        for token in tokens:  # decoded with what precedes it: a word vocabulary puts the spaces between words
            ids.append(token)
            text = self.vocabulary.decode(ids)
            yield text[len(written):]
            written = text

    def default_prime(self) -> str:
        """A line break, the natural start of a text, if the vocabulary has one; else its first token."""
        return self.vocabulary.line_break or self.vocabulary.decode([0])

    def finish(self) -> str:
        sample = self.generate(self.default_prime(), self.sample_length, temperature=0.8, seed=0)
        return "--- sample (temperature 0.8) ---\n" + sample.lstrip("\n")

    # ----------------------------------------------------------------- rnnkit inspect (rnnkit.inspect.source.Inspectable)
    def recurrent_layers(self) -> Recurrent:
        return self.model.rnn

    def inspection_batch(self, size: int, length: int | None = None) -> Batch:
        """``size`` consecutive pieces of ``length`` tokens (default --bptt) from the held-out text."""
        length = length or self.config.dataset.bptt
        tokens, where = self.held_out_tokens()
        size = min(size, (tokens.numel() - 1) // length)
        if size < 1:
            raise UserError(f"{where}: its validation part is shorter than {length + 1} {self.units}; use a smaller --length")
        used = size * length
        inputs = tokens[:used].view(size, length).t()
        targets = tokens[1 : used + 1].view(size, length).t()
        return Batch(inputs, targets, starts_epoch=True)

    def step_labels(self, batch: Batch) -> list[str]:
        return [self.vocabulary.decode([token]) for token in batch.inputs[:, 0]]

    def report(self, metrics: dict[str, float], label: str = "validation") -> str:
        return f"{label} loss {metrics['loss']:.4f} nats/{self.unit}"


# ----------------------------------------------------------------------------- commands
@dataclass
class GenerateOptions(CheckpointOptions):
    prime: str = ""
    """Text to start from (default: a line break, or the vocabulary's first token if it has none)."""
    length: int = 500
    """Tokens (characters, words) to generate."""
    temperature: float = 0.8
    """Sampling temperature: lower is more conservative, 0 is greedy."""
    top_k: int = 0
    """Sample only among the k most likely tokens (0: all)."""
    seed: int = 0
    """Random seed of the sampling."""
    beam_size: int = 0
    """Beam search with this many beams instead of sampling (0: sample)."""
    format: str = "text"
    """text (the generated text) or jsonl (its record: {"prime", "text"}, as 'rnnkit serve' answers)."""

    machine_only = (*CheckpointOptions.machine_only, "prime", "format")  # over HTTP, the primes are the inputs

    def validate(self) -> None:
        if self.length < 0 or self.temperature < 0 or self.top_k < 0 or self.beam_size < 0:
            raise UserError("--length, --temperature, --top-k and --beam-size must be >= 0")
        if self.format not in ("text", "jsonl"):
            raise UserError(f"--format: expected text or jsonl, got {self.format!r}")


class Generator(Protocol):
    """What ``rnnkit generate`` needs from a language model's session."""

    def generated_pieces(self, prime: str, length: int, temperature: float, top_k: int, seed: int,
                         beam_size: int) -> Iterator[str]: ...


def generation_events(session: Generator, prime: str, options: GenerateOptions) -> Iterator[dict]:
    """{"token": TEXT} as each piece of the text is produced (the prime first), then {"output": RECORD}."""
    options.validate()
    pieces = []
    for piece in session.generated_pieces(prime, options.length, options.temperature, options.top_k, options.seed,
                                          options.beam_size):
        pieces.append(piece)
        yield {"token": piece}
    yield {"output": {"prime": prime, "text": "".join(pieces)}}


def generation_records(session: Generator, primes: list[str], options: GenerateOptions,
                       where: list[str] | None = None) -> list[dict]:
    """{"prime", "text"} for each prime: the prime and its continuation; {"error": "WHERE: why"} in place of a prime
    the model cannot read."""
    return answered_in_place(primes, where, lambda prime: list(generation_events(session, prime, options))[-1]["output"])


def generate(session: Generator, options: GenerateOptions) -> None:
    record = generation_records(session, [options.prime], options)[0]
    print(json.dumps(record) if options.format == "jsonl" else record["text"])


@dataclass
class EvaluateOptions(CheckpointOptions):
    data: str | None = None
    """Text file to evaluate on (default: the held-out part of the training text)."""


class TextEvaluator(Protocol):
    """What ``rnnkit evaluate`` needs from a language model's session."""

    def held_out_tokens(self) -> tuple[torch.Tensor, str]: ...

    def read_tokens(self, path: str) -> torch.Tensor: ...

    def evaluate_tokens(self, tokens: torch.Tensor) -> dict[str, float]: ...

    def report(self, metrics: dict[str, float], label: str) -> str: ...


def evaluate(session: TextEvaluator, options: EvaluateOptions) -> None:
    """Loss on a text file, or on the held-out part of the training text."""
    tokens = session.held_out_tokens()[0] if options.data is None else session.read_tokens(options.data)
    print(session.report(session.evaluate_tokens(tokens), label="evaluation"))


COMMANDS = {
    "generate": Command("text sampled (or beam-searched) from the trained model", GenerateOptions, generate, Generator,
                        records=generation_records, stream=generation_events, generated_length="length"),
    "evaluate": Command("loss on a text file, or on the held-out part of the training text", EvaluateOptions, evaluate,
                        TextEvaluator),
}
