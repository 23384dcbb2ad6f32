"""A sentence classifier (many-to-one): word features, a recurrent core over the valid steps, pooling, a linear layer.

    tokens -> WordFeatures -> dropout -> Recurrent(lengths) -> Pooling -> dropout -> linear -> class logits

The recurrent core gets each sentence's length, so the fast kernels skip the padding and the
backward direction of a bidirectional core starts at each sentence's own last word. Pooling
reads the valid steps only (``rnnkit.models.pooling``). The model owns its loss
(cross-entropy of the class).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rnnkit.cells import State
from rnnkit.errors import UserError
from rnnkit.models.losses import cross_entropy
from rnnkit.models.pooling import POOLINGS, Pooling
from rnnkit.models.readout import final_hidden, step_outputs, step_width
from rnnkit.models.word_features import WordFeatures, WordFeaturesConfig


@dataclass
class TextClassifierConfig(WordFeaturesConfig):
    pooling: str = "max"
    """How the steps' outputs become one vector: last, mean, max or attention."""

    def validate(self) -> None:
        super().validate()
        if self.pooling not in POOLINGS:
            raise UserError(f"--pooling: expected one of {', '.join(POOLINGS)}, got {self.pooling!r}")


class TextClassifier(nn.Module):
    def __init__(self, vocab_size: int, num_classes: int, config: TextClassifierConfig, char_vocab_size: int = 0) -> None:
        super().__init__()
        self.config = config
        self.features = WordFeatures(vocab_size, config, char_vocab_size)
        self.dropout = nn.Dropout(config.dropout)
        self.rnn = config.build(self.features.output_size)
        self.directions = 2 if config.bidirectional else 1
        per_step = step_width(self.rnn, self.directions, config.merge_mode)
        self.pooling = Pooling(config.pooling, per_step)
        pooled = self.rnn.cells[0].output_size * self.directions if config.pooling == "last" else per_step
        self.head = nn.Linear(pooled, num_classes)

    def forward(
        self,
        inputs: torch.Tensor,
        state: State | None = None,
        *,
        lengths: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, State]:
        """inputs (T, B, F) token features -> logits (B, classes), the mean cross-entropy against targets (B,)
        if given, and the recurrent core's final state."""
        hidden, state = self.rnn(self.dropout(self.features(inputs)), state, lengths=lengths)
        pooled = self.pooling(step_outputs(hidden), lengths, final_hidden(state, self.directions))  # (B, W)
        logits = self.head(self.dropout(pooled))
        loss = None if targets is None else cross_entropy(logits, targets)
        return logits, loss, state
