"""A sequence tagger (many-to-many, aligned): one tag per token, BiLSTM-CRF as in Lample et al. 2016.

    tokens -> WordFeatures -> dropout -> Recurrent(lengths) -> dropout -> linear -> emissions (T, B, C)
                                                                     -> CRF (or a softmax per token)

With ``output="crf"`` the loss is the CRF's negative log-likelihood of the whole tag
sequence and decoding is Viterbi under the tag scheme's constraints; with ``"softmax"``
each token's tag is chosen on its own (cross-entropy per token, argmax). Both losses are
means: per sentence for the CRF (as Lample et al.), per token for the softmax.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rnnkit.cells import State
from rnnkit.errors import UserError
from rnnkit.models.crf import LinearChainCRF
from rnnkit.models.losses import cross_entropy, ignore_padding
from rnnkit.models.readout import step_outputs, step_width
from rnnkit.models.word_features import WordFeatures, WordFeaturesConfig

OUTPUTS = ("crf", "softmax")


@dataclass
class TaggerConfig(WordFeaturesConfig):
    output: str = "crf"
    """crf (a linear-chain CRF over the tag sequence) or softmax (each token's tag on its own)."""

    def validate(self) -> None:
        super().validate()
        if self.output not in OUTPUTS:
            raise UserError(f"--output: expected one of {', '.join(OUTPUTS)}, got {self.output!r}")


class SequenceTagger(nn.Module):
    """Args:
        allowed: the CRF's (C + 2, C + 2) transition constraints (``rnnkit.models.crf.transition_constraints``).
    """

    def __init__(self, vocab_size: int, num_tags: int, config: TaggerConfig, char_vocab_size: int = 0,
                 allowed: torch.Tensor | None = None) -> None:
        super().__init__()
        self.config = config
        self.features = WordFeatures(vocab_size, config, char_vocab_size)
        self.dropout = nn.Dropout(config.dropout)
        self.rnn = config.build(self.features.output_size)
        directions = 2 if config.bidirectional else 1
        self.head = nn.Linear(step_width(self.rnn, directions, config.merge_mode), num_tags)
        self.crf = LinearChainCRF(num_tags, allowed) if config.output == "crf" else None

    def forward(
        self,
        inputs: torch.Tensor,
        state: State | None = None,
        *,
        lengths: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, State]:
        """inputs (T, B, F) token features -> emissions (T, B, tags), the mean loss against targets (T, B) if
        given, and the recurrent core's final state."""
        hidden, state = self.rnn(self.dropout(self.features(inputs)), state, lengths=lengths)
        emissions = self.head(self.dropout(step_outputs(hidden)))  # (T, B, C)
        loss = None
        if targets is not None:
            lengths = self.lengths_or_all(emissions, lengths)
            if self.crf is not None:
                loss = self.crf(emissions.float(), targets, lengths).mean()
            else:
                loss = cross_entropy(emissions, ignore_padding(targets, lengths))
        return emissions, loss, state

    def decode(self, emissions: torch.Tensor, lengths: torch.Tensor | None = None) -> list[list[int]]:
        """The tag ids of each sentence, its own length: Viterbi with the CRF, else each token's argmax."""
        lengths = self.lengths_or_all(emissions, lengths)
        if self.crf is not None:
            return self.crf.viterbi(emissions.float(), lengths)
        best = emissions.argmax(-1).t().tolist()  # (B, T)
        return [row[:length] for row, length in zip(best, lengths.tolist())]

    @staticmethod
    def lengths_or_all(emissions: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        if lengths is None:
            return torch.full((emissions.shape[1],), emissions.shape[0], dtype=torch.long)
        return lengths
