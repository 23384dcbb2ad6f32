"""Searching for the best output of a model that writes one token at a time: one beam search for every such model.

The search needs only the model contract and one method. A model is called once on its inputs
(a language model's prime, an encoder–decoder's source), then once per written token with
the state the previous call returned; ``reorder_state`` keeps the batch rows a step
continues (``Searchable``)::

    outputs, _, state = model(inputs, None, lengths=lengths)        read the inputs
    [logits, _, state = model(<begin> (1, B), state)]               then the start symbol, if there is one
    loop:   choose tokens from logits ─► state = model.reorder_state(state, rows)
            logits, _, state = model(tokens (1, B·K), state)

Beam search (as fairseq's) keeps the ``beam_size`` best unfinished hypotheses of each input.
At each step it looks at the best 2 × beam_size extensions. Those among the first beam_size
that end in ``end`` finish, and the best beam_size that do not continue. An input is done when
beam_size hypotheses have finished, or at its length limit, where its unfinished hypotheses
finish as they are. A model without an end symbol (a language model asked for N tokens)
finishes every hypothesis at the limit. Hypotheses are ranked by their log-probability under
a length penalty, since a plain sum of log-probabilities favours short outputs:

    none      log P(y)
    average   log P(y) / |y|                         (length normalisation)
    gnmt      log P(y) / ((5 + |y|) / 6)^alpha       (Wu et al. 2016, GNMT)

with |y| the tokens written, ``end`` included. A beam of one is greedy decoding. With
``block_ngram`` n, a hypothesis never writes an n-gram it has written already (fairseq's
``--no-repeat-ngram-size``, ParlAI's ``--beam-block-ngram``): the token that would repeat one gets probability 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

import torch

from rnnkit.data.pair_batches import pairs_by_length
from rnnkit.errors import UserError

LENGTH_PENALTIES = ("none", "average", "gnmt")


class Searchable(Protocol):
    """A model the search can run: the model contract, and how to keep some rows of its state."""

    def __call__(self, inputs: torch.Tensor, state=None, *, lengths: torch.Tensor | None = None): ...

    def reorder_state(self, state, rows: torch.Tensor, same_inputs: bool = False):
        """The state of batch rows ``rows`` (in that order, repeats allowed). ``same_inputs``: every new row
        continues a row that read the same inputs (a beam reordering one input's hypotheses), so what was
        computed from the inputs alone may be kept as it is."""


@dataclass
class DecodingConfig:
    """How outputs are searched for (test metrics and ``rnnkit predict``): the run's ``decoding`` options."""

    beam_size: int = 5
    """Hypotheses kept per input (1: greedy decoding)."""
    length_penalty: str = "gnmt"
    """How hypotheses of different lengths are ranked: none, average (log-probability per token) or gnmt."""
    alpha: float = 0.6
    """gnmt: the length penalty's exponent (0: none)."""
    max_length_ratio: float = 2.0
    """An output has at most max-length-ratio x input tokens + max-length-extra tokens."""
    max_length_extra: int = 10
    """See --max-length-ratio."""
    replace_unknown: bool = False
    """Replace each <unk> written by the input token the attention weighs most (attention models)."""

    def validate(self) -> None:
        if self.beam_size <= 0:
            raise UserError(f"--beam-size: expected a positive integer, got {self.beam_size}")
        if self.length_penalty not in LENGTH_PENALTIES:
            raise UserError(f"--length-penalty: expected one of {', '.join(LENGTH_PENALTIES)}, got {self.length_penalty!r}")
        if self.alpha < 0 or self.max_length_ratio < 0 or self.max_length_extra < 0:
            raise UserError("--alpha, --max-length-ratio, --max-length-extra: expected values >= 0")
        if self.max_length_ratio == 0 and self.max_length_extra == 0:
            raise UserError("--max-length-ratio, --max-length-extra: both 0 would allow no token at all")

    def max_lengths(self, input_lengths: torch.Tensor) -> torch.Tensor:
        """(B,) the most tokens each input's output may have, the end symbol included (at least 1)."""
        limit = (self.max_length_ratio * input_lengths.float()).floor().long() + self.max_length_extra
        return limit.clamp(min=1)

    def penalised(self, log_prob: float, length: int) -> float:
        """The ranking score of a hypothesis of ``length`` tokens (the end symbol included) and log-probability
        ``log_prob``."""
        if self.length_penalty == "average":
            return log_prob / length
        if self.length_penalty == "gnmt":
            return log_prob / ((5 + length) / 6) ** self.alpha
        return log_prob


def no_penalty(log_prob: float, length: int) -> float:
    return log_prob


@dataclass
class Hypothesis:
    tokens: list[int]  # the tokens written, without the start and end symbols
    score: float  # the ranking score (length-penalised)
    log_prob: float  # log P(tokens, then the end symbol if it ended with one)
    attention: torch.Tensor | None  # (steps, S): ``attention(state)`` after each token written (the end's included)


def last_steps(outputs: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """(T, B, ...) outputs -> (B, ...): each row's output at its own last real step."""
    if lengths is None:
        return outputs[-1]
    rows = torch.arange(outputs.shape[1], device=outputs.device)
    return outputs[lengths.to(outputs.device) - 1, rows]


@torch.no_grad()
def beam_search(
    model: Searchable,
    inputs: torch.Tensor,
    *,
    lengths: torch.Tensor | None = None,
    beam_size: int,
    max_lengths: torch.Tensor,
    begin: int | None = None,
    end: int | None = None,
    never: tuple[int, ...] = (),
    penalty: Callable[[float, int], float] = no_penalty,
    n_best: int = 1,
    attention: Callable[[Any], torch.Tensor | None] | None = None,
    block_ngram: int = 0,
) -> list[list[Hypothesis]]:
    """The ``n_best`` best hypotheses of each of the B inputs (best first).

    inputs (T, B, ...) with ``lengths`` (B,): what the model reads first. ``max_lengths`` (B,): the most
    tokens each output may have (the end symbol included). ``begin``: the token read before the first
    one written (None: the inputs' own last step predicts it, as a language model's prime does).
    ``end``: the token that finishes a hypothesis (None: only the length limit does). ``never``:
    tokens never written. ``penalty(log_prob, length)``: the ranking score. ``attention(state)``: what to
    keep of each step per hypothesis, (B, S) rows (an encoder–decoder's attention weights).
    ``block_ngram``: n > 0 forbids writing any n-gram twice in one hypothesis.
    """
    device = max_lengths.device
    batch, beam = max_lengths.shape[0], beam_size
    outputs, _, state = model(inputs, None, lengths=lengths)
    expand = torch.arange(batch, device=device).repeat_interleave(beam)  # every input's row K times
    state = model.reorder_state(state, expand)
    if begin is None:
        logits = last_steps(outputs, lengths).index_select(0, expand)
    else:  # the start symbol is read on every hypothesis's row: the same computation as every later step
        logits, _, state = model(torch.full((1, batch * beam), begin, dtype=torch.long, device=device), state)
        logits = logits[0]
    log_probs = _log_probs(logits, never)  # (B*K, V)
    recorded = None if attention is None else attention(state)
    attention_history = None if recorded is None else recorded.unsqueeze(1)  # (B*K, 1, S)

    scores = torch.full((batch, beam), float("-inf"), device=device)
    scores[:, 0] = 0.0  # one live hypothesis per input at first
    history = torch.zeros(batch * beam, 0, dtype=torch.long, device=device)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    rank = torch.arange(2 * beam, device=device)
    for t in range(int(max_lengths.max())):
        vocab = log_probs.shape[-1]
        candidates = (scores.unsqueeze(2) + log_probs.view(batch, beam, vocab)).view(batch, beam * vocab)
        top_scores, top = candidates.topk(min(2 * beam, beam * vocab), dim=1)  # best first
        from_beam, word = top // vocab, top % vocab
        ends = word == end if end is not None else torch.zeros_like(word, dtype=torch.bool)
        at_limit = (t + 1 >= max_lengths).unsqueeze(1)
        in_first = rank[: top.shape[1]].unsqueeze(0) < beam
        finishing = in_first & (ends | at_limit) & ~done.unsqueeze(1) & torch.isfinite(top_scores)
        for sentence, position in finishing.nonzero().tolist():
            row = sentence * beam + int(from_beam[sentence, position])
            written = history[row].tolist() + ([] if ends[sentence, position] else [int(word[sentence, position])])
            log_prob = float(top_scores[sentence, position])
            steps = None if attention_history is None else attention_history[row]
            finished[sentence].append(Hypothesis(written, penalty(log_prob, t + 1), log_prob, steps))
        done |= at_limit.squeeze(1) | torch.tensor([len(found) >= beam for found in finished], device=device)
        if done.all():
            break
        alive_scores, keep = top_scores.masked_fill(ends, float("-inf")).topk(beam, dim=1)
        scores = alive_scores.masked_fill(done.unsqueeze(1), float("-inf"))
        rows = (torch.arange(batch, device=device).unsqueeze(1) * beam + from_beam.gather(1, keep)).view(-1)
        tokens = word.gather(1, keep).view(-1)
        state = model.reorder_state(state, rows, same_inputs=True)  # rows move only among one input's hypotheses
        history = torch.cat([history[rows], tokens.unsqueeze(1)], dim=1)
        logits, _, state = model(tokens.unsqueeze(0), state)
        log_probs = block_repeats(_log_probs(logits[0], never), history, block_ngram)
        if attention_history is not None:
            attention_history = torch.cat([attention_history[rows], attention(state).unsqueeze(1)], dim=1)
    return [sorted(found, key=lambda hypothesis: -hypothesis.score)[:n_best] for found in finished]


def search_in_batches(model: Searchable, inputs: list[torch.Tensor], batch_size: int,
                      max_lengths: Callable[[torch.Tensor], torch.Tensor], search: Callable = None,
                      **options) -> list[list[Hypothesis]]:
    """``search`` (default ``beam_search``; ``sampling.sample_outputs`` has the same form) over inputs of different
    lengths (each (S_i,) token ids): ``batch_size`` at a time, shortest first so that a batch pads little, the results
    in the order given. ``max_lengths(lengths)`` is each output's limit; ``options`` are the search's others."""
    search = search or beam_search
    device = next(model.parameters()).device
    found: list[list[Hypothesis]] = [[] for _ in inputs]
    for indices, batch in pairs_by_length(inputs, None, batch_size):
        results = search(model, batch.inputs.to(device), lengths=batch.lengths,
                         max_lengths=max_lengths(batch.lengths).to(device), **options)
        for position, hypotheses in zip(indices, results):
            found[position] = hypotheses
    return found


def block_repeats(log_probs: torch.Tensor, history: torch.Tensor, n: int) -> torch.Tensor:
    """``log_probs`` (R, V) with -inf (in place) for every token that would end an n-gram its row of ``history`` (R, T)
    holds already (n <= 0: none blocked)."""
    if n <= 0 or history.shape[1] < n:
        return log_probs
    for row, tokens in enumerate(history.tolist()):
        last = tuple(tokens[len(tokens) - n + 1 :]) if n > 1 else ()
        repeated = [tokens[start + n - 1] for start in range(len(tokens) - n + 1)
                    if tuple(tokens[start : start + n - 1]) == last]
        if repeated:
            log_probs[row, repeated] = float("-inf")
    return log_probs


def _log_probs(logits: torch.Tensor, never: tuple[int, ...]) -> torch.Tensor:
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    if never:
        log_probs[:, list(never)] = float("-inf")
    return log_probs
