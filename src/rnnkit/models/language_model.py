"""A next-token language model (characters or words): one-to-many generation with any recurrent cell.

    x_t -> embedding -> Recurrent -> dropout -> linear -> logits over the next token

It owns its loss (cross-entropy of the next token, in nats per token), so the trainer
needs to know nothing about it (minGPT's habit). With ``tie_weights`` the output layer
uses the embedding matrix (Press & Wolf 2016; Inan et al. 2017): one matrix instead of
two, which regularises and, for a word vocabulary, saves most of the parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rnnkit.cells import State
from rnnkit.errors import UserError
from rnnkit.models.config import RecurrentConfig
from rnnkit.models.losses import cross_entropy, ignore_padding


@dataclass
class LanguageModelConfig(RecurrentConfig):
    """The language model: a recurrent core between an embedding and a softmax."""

    embedding_size: int = 128
    """Width of the token embeddings."""
    tie_weights: bool = False
    """Share the embedding matrix with the output layer (Press & Wolf 2016); needs --embedding-size = --hidden-size."""
    init_range: float = 0.0
    """Draw the embeddings and the output layer's weights from U(-r, r), as Zaremba et al. and pytorch/examples
    (r = 0.1); 0: torch's defaults (embeddings N(0, 1), too large for an output layer when tied)."""

    def validate(self) -> None:
        super().validate()
        if self.bidirectional:
            raise UserError("--bidirectional: a language model predicts the next token and must not read ahead")
        if self.embedding_size <= 0:
            raise UserError(f"--embedding-size: expected a positive integer, got {self.embedding_size}")
        if self.init_range < 0:
            raise UserError(f"--init-range: expected 0 (torch's defaults) or a positive range, got {self.init_range}")
        if self.tie_weights and self.embedding_size != self.hidden_size:
            raise UserError(
                f"--tie-weights: the embedding and the output layer share one matrix, so --embedding-size "
                f"({self.embedding_size}) must equal --hidden-size ({self.hidden_size})"
            )


class LanguageModel(nn.Module):
    def __init__(self, vocab_size: int, config: LanguageModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(vocab_size, config.embedding_size)
        self.rnn = config.build(config.embedding_size)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(self.rnn.output_size, vocab_size)
        if config.init_range:
            nn.init.uniform_(self.embedding.weight, -config.init_range, config.init_range)
            nn.init.uniform_(self.head.weight, -config.init_range, config.init_range)
            nn.init.zeros_(self.head.bias)
        if config.tie_weights:
            self.head.weight = self.embedding.weight  # (V, E): the same matrix reads tokens in and scores them out

    def forward(
        self,
        inputs: torch.Tensor,
        state: State | None = None,
        *,
        lengths: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, State]:
        """inputs (T, B) token ids -> logits (T, B, V), the mean cross-entropy in nats per token if targets (T, B)
        are given (over the real steps only, with ``lengths``), and the final state."""
        embedded = self.dropout(self.embedding(inputs))  # (T, B, E)
        hidden, state = self.rnn(embedded, state, lengths=lengths)  # (T, B, H)
        logits = self.head(self.dropout(hidden))  # (T, B, V)
        loss = None
        if targets is not None:
            loss = cross_entropy(logits, ignore_padding(targets, lengths))
        return logits, loss, state

    def reorder_state(self, state: State, rows: torch.Tensor, same_inputs: bool = False) -> State:
        """The state of batch rows ``rows`` (``rnnkit.models.search.Searchable``): dim 1 of every (L, B, H) tensor."""
        return tuple(part.index_select(1, rows) for part in state)
