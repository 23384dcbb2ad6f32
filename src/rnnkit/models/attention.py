"""Attention over an encoder's outputs: how much each source position matters for the current decoder state.

    score(q, k_s) = v^T tanh(W_q q + W_k k_s)    additive  (Bahdanau et al. 2015)
                  = q^T k_s                      dot       (Luong et al. 2015)
                  = q^T W k_s                    general   (Luong et al. 2015)
    alpha_s = softmax_s(score(q, k_s)) over the real source positions only (padding gets exactly 0)
    context = sum_s alpha_s k_s

The query q is the decoder's hidden state, the keys k_s the encoder's outputs (the memory).
What does not depend on the query (W_k k_s) is computed once per sentence by ``prepare``,
not at every decoder step.
"""

from __future__ import annotations

import torch
from torch import nn

SCORES = ("additive", "dot", "general")


class Attention(nn.Module):
    def __init__(self, score: str, query_size: int, memory_size: int) -> None:
        super().__init__()
        if score not in SCORES:
            raise ValueError(f"score: expected one of {', '.join(SCORES)}, got {score!r}")
        if score == "dot" and query_size != memory_size:
            raise ValueError(f"dot attention needs a query as wide as the memory, got {query_size} and {memory_size}")
        self.score = score
        self.key_layer = None
        if score == "additive":
            self.query_layer = nn.Linear(query_size, query_size, bias=False)
            self.key_layer = nn.Linear(memory_size, query_size, bias=False)
            self.v = nn.Linear(query_size, 1, bias=False)
        elif score == "general":
            self.key_layer = nn.Linear(memory_size, query_size, bias=False)

    def prepare(self, memory: torch.Tensor) -> torch.Tensor:
        """memory (S, B, M) -> keys (B, S, K) as the score reads them (W_k k_s for additive and general)."""
        keys = memory.transpose(0, 1)
        return keys if self.key_layer is None else self.key_layer(keys)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, memory: torch.Tensor,
                source_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """query (T, B, Q) for T decoder steps at once, keys from ``prepare``, memory (S, B, M), source_mask (B, S)
        True at real positions -> context (T, B, M), weights (T, B, S)."""
        if self.score == "additive":
            projected = self.query_layer(query).transpose(0, 1)  # (B, T, Q)
            scores = self.v(torch.tanh(projected.unsqueeze(2) + keys.unsqueeze(1))).squeeze(-1)  # (B, T, S)
        else:
            scores = torch.bmm(query.transpose(0, 1), keys.transpose(1, 2))  # (B, T, S)
        if source_mask is not None:  # None: every position is real (an image's regions)
            scores = scores.masked_fill(~source_mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(scores, dim=-1)  # (B, T, S); exp(-inf) = 0 on padding
        context = torch.bmm(weights, memory.transpose(0, 1))  # (B, T, M)
        return context.transpose(0, 1), weights.transpose(0, 1)
