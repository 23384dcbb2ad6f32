"""Sampling from a next-token model one token at a time (beam search is ``rnnkit.models.search``).

Works with any model whose forward is ``model(tokens (T, B), state) -> (logits, _, state)``.
The prime is read in one call; every further token is one step of the recurrence.
"""

from __future__ import annotations

import torch


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
