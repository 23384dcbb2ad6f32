"""Sampling from a next-token model one token at a time (beam search is ``rnnkit.models.search``).

Which tokens may be drawn is decided in one place (``restrict``): the model's logits divided by
the temperature, then only the k most likely tokens (top-k, Fan et al. 2018) and only the
smallest set of most likely tokens whose probability reaches p (nucleus, Holtzman et al. 2020).

``sample`` continues a language model's prime (``model(tokens (T, B), state) -> (logits, _,
state)``). ``sample_outputs`` draws whole outputs of a ``search.Searchable`` model (an
encoder–decoder), every input of a batch at once, and scores each by the model's own
log-probability (before temperature and truncation), as the beam search scores its hypotheses;
``sampling_steps`` is the same draw, yielding each step's tokens as they are drawn.
"""

from __future__ import annotations

from typing import Callable, Generator, Iterator

import torch

from rnnkit.models.search import Hypothesis, _log_probs, block_repeats, last_steps, no_penalty


def restrict(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """(..., V) logits -> the logits to draw from: divided by ``temperature``, -inf outside the ``top_k`` most likely
    tokens (0: all) and outside the nucleus of probability ``top_p`` (1: all). The most likely token always stays."""
    scaled = logits.float() / temperature
    if top_k > 0:
        kth = torch.topk(scaled, min(top_k, scaled.shape[-1]), dim=-1).values[..., -1:]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    if top_p < 1.0:
        ordered, order = scaled.sort(dim=-1, descending=True)
        probabilities = ordered.softmax(dim=-1)
        before = probabilities.cumsum(dim=-1) - probabilities  # the mass of the more likely tokens
        outside = torch.zeros_like(before, dtype=torch.bool).scatter(-1, order, before >= top_p)  # back in vocab order
        scaled = scaled.masked_fill(outside, float("-inf"))
    return scaled


def sample(
    model,
    prime: torch.Tensor,
    length: int,
    temperature: float = 1.0,
    top_k: int = 0,
    generator: torch.Generator | None = None,
) -> list[int]:
    """Continue ``prime`` (1-D token ids) by ``length`` tokens drawn from softmax(logits / temperature).

    ``top_k > 0`` draws only among the k most likely tokens; temperature 0 is greedy decoding.
    """
    return list(sampled_tokens(model, prime, length, temperature, top_k, generator))


def sampled_tokens(model, prime: torch.Tensor, length: int, temperature: float = 1.0, top_k: int = 0,
                   generator: torch.Generator | None = None) -> Iterator[int]:
    """``sample``'s tokens one at a time, each as soon as it is drawn (for streaming)."""
    with torch.no_grad():
        logits, _, state = model(prime.view(-1, 1))
    next_logits = logits[-1, 0]
    for _ in range(length):
        if temperature == 0:
            token = int(next_logits.argmax())
        else:
            scaled = restrict(next_logits, temperature, top_k)
            token = int(torch.multinomial(torch.softmax(scaled, dim=-1), 1, generator=generator))
        yield token
        with torch.no_grad():  # a generator runs between its caller's steps: no_grad is held per step
            logits, _, state = model(torch.tensor([[token]], device=prime.device), state)
        next_logits = logits[-1, 0]


@torch.no_grad()
def sample_outputs(
    model,
    inputs: torch.Tensor,
    *,
    lengths: torch.Tensor | None = None,
    max_lengths: torch.Tensor,
    begin: int | None = None,
    end: int | None = None,
    never: tuple[int, ...] = (),
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    block_ngram: int = 0,
    samples: int = 1,
    penalty: Callable[[float, int], float] = no_penalty,
    generator: torch.Generator | None = None,
) -> list[list[Hypothesis]]:
    """``samples`` outputs drawn for each of the B inputs, best score first (``beam_search``'s arguments and result).

    Each token is drawn from ``restrict(logits, temperature, top_k, top_p)``; an output ends at ``end`` or at its
    input's ``max_lengths``. ``log_prob`` is the model's untruncated log-probability of what was written."""
    steps = sampling_steps(model, inputs, lengths=lengths, max_lengths=max_lengths, begin=begin, end=end, never=never,
                           temperature=temperature, top_k=top_k, top_p=top_p, block_ngram=block_ngram,
                           samples=samples, penalty=penalty, generator=generator)
    while True:
        try:
            next(steps)
        except StopIteration as finished:
            return finished.value


def sampling_steps(model, inputs: torch.Tensor, *, lengths: torch.Tensor | None, max_lengths: torch.Tensor,
                   begin: int | None, end: int | None, never: tuple[int, ...], temperature: float, top_k: int,
                   top_p: float, block_ngram: int, samples: int, penalty: Callable[[float, int], float],
                   generator: torch.Generator | None) -> Generator[torch.Tensor, None, list[list[Hypothesis]]]:
    """``sample_outputs`` one step at a time: yields the tokens drawn at each step (B × samples,), as soon as they
    are drawn (a reply streamed word by word), and returns ``sample_outputs``' result."""
    device = max_lengths.device
    batch = max_lengths.shape[0]
    outputs, _, state = model(inputs, None, lengths=lengths)
    rows = torch.arange(batch, device=device).repeat_interleave(samples)  # each input's row ``samples`` times
    state = model.reorder_state(state, rows)
    if begin is None:
        logits = last_steps(outputs, lengths).index_select(0, rows)
    else:
        logits, _, state = model(torch.full((1, batch * samples), begin, dtype=torch.long, device=device), state)
        logits = logits[0]
    limits = max_lengths.index_select(0, rows)
    history = torch.zeros(batch * samples, 0, dtype=torch.long, device=device)
    log_prob = torch.zeros(batch * samples, device=device)
    ended = torch.zeros(batch * samples, dtype=torch.bool, device=device)
    written = torch.zeros(batch * samples, dtype=torch.long, device=device)  # tokens written, the end included
    for t in range(int(max_lengths.max())):
        log_probs = block_repeats(_log_probs(logits, never), history, block_ngram)
        drawn = restrict(log_probs, temperature, top_k, top_p).softmax(dim=-1)
        tokens = torch.multinomial(drawn, 1, generator=generator).squeeze(1)
        yield tokens
        live = ~ended
        log_prob += torch.where(live, log_probs.gather(1, tokens.unsqueeze(1)).squeeze(1), 0.0)
        written += live.long()
        history = torch.cat([history, tokens.unsqueeze(1)], dim=1)  # an ended row's are drawn on, not kept
        ended |= (tokens == end if end is not None else torch.zeros_like(ended)) | (t + 1 >= limits)
        if ended.all():
            break
        logits, _, state = model(tokens.unsqueeze(0), state)
        logits = logits[0]
    found: list[list[Hypothesis]] = [[] for _ in range(batch)]
    for row, tokens in enumerate(history.tolist()):
        kept = tokens[: int(written[row])]
        if end is not None and kept and kept[-1] == end:
            kept = kept[:-1]
        score = float(log_prob[row])
        found[row // samples].append(Hypothesis(kept, penalty(score, int(written[row])), score, None))
    return [sorted(hypotheses, key=lambda hypothesis: -hypothesis.score) for hypotheses in found]
