"""Generating from a next-token model one token at a time: sampling and beam search.

Works with any model whose forward is ``model(tokens (T, B), state) -> (logits, _, state)``.
The prime is read in one call; every further token is one step of the recurrence.
"""

from __future__ import annotations

import torch

from rnnkit.cells import State


def _select(state: State, rows: torch.Tensor) -> State:
    """Keep batch rows ``rows`` (dim 1 of every (L*D, B, size) state tensor)."""
    return tuple(part.index_select(1, rows) for part in state)


@torch.no_grad()
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
    logits, _, state = model(prime.view(-1, 1))
    next_logits = logits[-1, 0]
    generated: list[int] = []
    for _ in range(length):
        if temperature == 0:
            token = int(next_logits.argmax())
        else:
            scaled = next_logits.float() / temperature
            if top_k > 0:
                kth = torch.topk(scaled, min(top_k, scaled.numel())).values[-1]
                scaled = scaled.masked_fill(scaled < kth, float("-inf"))
            token = int(torch.multinomial(torch.softmax(scaled, dim=-1), 1, generator=generator))
        generated.append(token)
        logits, _, state = model(torch.tensor([[token]], device=prime.device), state)
        next_logits = logits[-1, 0]
    return generated


@torch.no_grad()
def beam_search(model, prime: torch.Tensor, length: int, beam_size: int) -> list[int]:
    """The ``length``-token continuation of ``prime`` with the highest total log-probability found
    by keeping the ``beam_size`` best partial continuations at every step."""
    logits, _, state = model(prime.view(-1, 1))
    log_probs = torch.log_softmax(logits[-1].float(), dim=-1)  # (1, V)
    scores = torch.zeros(1, device=prime.device)  # (K,)
    sequences = torch.empty(1, 0, dtype=torch.long, device=prime.device)  # (K, t)
    for _ in range(length):
        vocab = log_probs.shape[-1]
        candidates = (scores[:, None] + log_probs).reshape(-1)  # (K * V,)
        scores, best = torch.topk(candidates, min(beam_size, candidates.numel()))
        beams, tokens = best // vocab, best % vocab
        sequences = torch.cat([sequences[beams], tokens[:, None]], dim=1)
        logits, _, state = model(tokens.view(1, -1), _select(state, beams))
        log_probs = torch.log_softmax(logits[-1].float(), dim=-1)
    return sequences[0].tolist()
