"""What a text model reads at each token: a word embedding, optionally a case embedding and a character-level encoding.

    word id  -> embedding (E)                                   word dropout: <unk> instead, training only
    case id  -> embedding (K)                                   with --case-embedding-size K
    chars    -> embedding -> bidirectional Recurrent -> [h_fwd ; h_bwd] (2 C)   with --char-hidden-size C
             -> concatenated: (T, B, E + K + 2 C)

The character encoder is Lample et al. 2016's: each word's characters are read in both
directions and the two final states are concatenated, so a word never seen in training still
gets a representation from its spelling. Its batch is every real word of the batch at once,
with each word's length, so the fast kernels run it. Inputs are laid out as
``rnnkit.data.token_features`` draws them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rnnkit.data.token_features import CASES, first_character_column
from rnnkit.errors import UserError
from rnnkit.layers import Recurrent
from rnnkit.models.config import RecurrentConfig

UNKNOWN_ID = 1  # rnnkit.data.vocabulary.TokenVocabulary: 0 is <pad>, 1 is <unk>


@dataclass
class WordFeaturesConfig(RecurrentConfig):
    """A recurrent core over word features (the options of the text classifier and the tagger)."""

    embedding_size: int = 300
    """Width of the word embeddings."""
    word_dropout: float = 0.0
    """Probability of reading a training word as <unk> (learns an <unk> embedding worth having)."""
    char_hidden_size: int = 0
    """Units per direction of the character-level encoder of each word (0: no character features)."""
    char_embedding_size: int = 25
    """Width of the character embeddings (with --char-hidden-size)."""
    case_embedding_size: int = 0
    """Width of an embedding of each token's case (lower, upper, title, digits, ...; 0: none)."""

    def validate(self) -> None:
        super().validate()
        for name in ("embedding_size", "char_embedding_size"):
            if getattr(self, name) <= 0:
                raise UserError(f"--{name.replace('_', '-')}: expected a positive integer, got {getattr(self, name)}")
        for name in ("char_hidden_size", "case_embedding_size"):
            if getattr(self, name) < 0:
                raise UserError(f"--{name.replace('_', '-')}: expected 0 (off) or a positive integer, got {getattr(self, name)}")
        if not 0.0 <= self.word_dropout < 1.0:
            raise UserError(f"--word-dropout: expected a probability in [0, 1), got {self.word_dropout}")


class WordFeatures(nn.Module):
    def __init__(self, vocab_size: int, config: WordFeaturesConfig, char_vocab_size: int = 0) -> None:
        super().__init__()
        self.word_dropout = config.word_dropout
        self.embedding = nn.Embedding(vocab_size, config.embedding_size, padding_idx=0)
        self.case_embedding = None
        if config.case_embedding_size:
            self.case_embedding = nn.Embedding(len(CASES), config.case_embedding_size, padding_idx=0)
        self.char_embedding = self.char_rnn = None
        if config.char_hidden_size:
            self.char_embedding = nn.Embedding(char_vocab_size, config.char_embedding_size, padding_idx=0)
            self.char_rnn = Recurrent(config.cell, config.char_embedding_size, config.char_hidden_size, bidirectional=True)
        self.output_size = (config.embedding_size + config.case_embedding_size + 2 * config.char_hidden_size)

    @property
    def first_character_column(self) -> int:
        return first_character_column(case=self.case_embedding is not None)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """inputs (T, B, F) ids -> features (T, B, output_size)."""
        words = inputs[..., 0]  # (T, B)
        if self.training and self.word_dropout:
            dropped = (torch.rand(words.shape, device=words.device) < self.word_dropout) & (words > 0)
            words = words.masked_fill(dropped, UNKNOWN_ID)
        features = [self.embedding(words)]
        if self.case_embedding is not None:
            features.append(self.case_embedding(inputs[..., 1]))
        if self.char_rnn is not None:
            features.append(self.spellings(inputs[..., self.first_character_column :]))
        return torch.cat(features, dim=-1)

    def spellings(self, characters: torch.Tensor) -> torch.Tensor:
        """characters (T, B, C) ids -> (T, B, 2 H): both directions' final states over each word's characters."""
        steps, batch, width = characters.shape
        flat = characters.reshape(steps * batch, width)  # one row per token
        lengths = (flat > 0).sum(dim=1)
        real = (lengths > 0).unsqueeze(1)  # padded tokens have no characters
        # Every row runs, a padded token's as one padding character, and is zeroed after: no shape depends on the
        # data, so the model exports with T and B symbolic (selecting the real rows first would not).
        embedded = self.char_embedding(flat.t())  # (C, N, E): time-major, one word per column
        _, state = self.char_rnn(embedded, lengths=lengths.clamp(min=1).cpu())
        final = state[0]  # (2, N, H): forward, backward
        encoded = torch.cat([final[0], final[1]], dim=-1).masked_fill(~real, 0.0)
        return encoded.view(steps, batch, -1)
