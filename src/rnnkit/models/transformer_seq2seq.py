"""A Transformer encoder–decoder (``torch.nn.Transformer``) with the model contract of ``seq2seq.EncoderDecoder``.

It is the non-recurrent baseline of the ``chat`` task (and, reading an image through the
encoder it is given, of ``caption``): the same vocabulary, the same loss, the same search.
Words are embedded (one table for source and target: they share the vocabulary),
scaled by sqrt(d) and given sinusoidal positions (Vaswani et al. 2017); layers normalise first
(pre-LN, which trains without warm-up tricks at small sizes)::

    model(source, None, lengths=L, targets=Y)   teacher forcing: logits of y_1 .. <eos>, the loss, the state after
    model(source, None, lengths=L)              read the source: the encoder's outputs and the first state
    model(words (T, B), state)                  continue: logits of the word after each, the state after them

A decoder state holds the encoder's memory and every target word read so far; each call runs
the decoder's causal self-attention over all of them again (no key-value cache: the replies are
short, and the search's contract stays one ``reorder_state``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.models.losses import IGNORED
from rnnkit.models.seq2seq import PAD
from rnnkit.sequences import step_mask


@dataclass
class TransformerState:
    memory: torch.Tensor  # (S, B, D) the encoder's outputs
    source_padding: torch.Tensor  # (B, S) True at padding
    read: torch.Tensor  # (T, B) the target words read so far (<bos> first)

    def select(self, rows: torch.Tensor) -> "TransformerState":
        return TransformerState(self.memory.index_select(1, rows), self.source_padding.index_select(0, rows),
                                self.read.index_select(1, rows))


def sinusoids(length: int, width: int, device: torch.device) -> torch.Tensor:
    """(length, 1, width) positional encodings: sin and cos of position / 10000^(2i / width)."""
    position = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    rates = torch.exp(torch.arange(0, width, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / width))
    table = torch.zeros(length, width, device=device)
    table[:, 0::2] = torch.sin(position * rates)
    table[:, 1::2] = torch.cos(position * rates[: width // 2])
    return table.unsqueeze(1)


class TransformerEncoderDecoder(nn.Module):
    def __init__(self, vocab_size: int, width: int, heads: int, layers: int, feedforward: int, dropout: float,
                 label_smoothing: float = 0.0, encoder: nn.Module | None = None) -> None:
        """``encoder``: what reads a source that is not words (the captioner's image), a module mapping (inputs,
        lengths) to the memory (S, B, width) and its padding (B, S), True at padding (default: a Transformer encoder
        over the embedded words)."""
        super().__init__()
        self.width, self.label_smoothing = width, label_smoothing
        self.reads_words = encoder is None
        self.embedding = nn.Embedding(vocab_size, width, padding_idx=PAD)
        self.dropout = nn.Dropout(dropout)
        if encoder is None:
            encoder_layer = nn.TransformerEncoderLayer(width, heads, feedforward, dropout, norm_first=True)
            encoder = nn.TransformerEncoder(encoder_layer, layers, nn.LayerNorm(width), enable_nested_tensor=False)
        self.transformer = nn.Transformer(width, heads, layers, layers, feedforward, dropout, norm_first=True,
                                          custom_encoder=encoder)
        self.output = nn.Linear(width, vocab_size)

    def _embedded(self, words: torch.Tensor) -> torch.Tensor:
        """(T, B) ids -> (T, B, D) scaled embeddings plus positions."""
        scaled = self.embedding(words) * math.sqrt(self.width)
        return self.dropout(scaled + sinusoids(words.shape[0], self.width, words.device))

    def _decode(self, read: torch.Tensor, state: TransformerState) -> torch.Tensor:
        """Logits (T, B, V) of the word after each of ``read`` (T, B)."""
        causal = torch.ones(read.shape[0], read.shape[0], dtype=torch.bool, device=read.device).triu(1)  # True: hidden
        hidden = self.transformer.decoder(self._embedded(read), state.memory, tgt_mask=causal, tgt_is_causal=True,
                                          tgt_key_padding_mask=read.t() == PAD,
                                          memory_key_padding_mask=state.source_padding)
        return self.output(hidden)

    def forward(self, inputs: torch.Tensor, state: TransformerState | None = None, *,
                lengths: torch.Tensor | None = None, targets: torch.Tensor | None = None):
        """As ``seq2seq.EncoderDecoder.forward``."""
        if state is None:
            memory, padding = self._read_source(inputs, lengths)
            state = TransformerState(memory, padding, torch.zeros(0, memory.shape[1], dtype=torch.long,
                                                                  device=memory.device))
            if targets is None:
                return memory, None, state
            inputs, targets = targets[:-1], targets[1:]
        read = torch.cat([state.read, inputs])
        state = TransformerState(state.memory, state.source_padding, read)
        logits = self._decode(read, state)[-inputs.shape[0]:]
        if targets is None:
            return logits, None, state
        smoothing = self.label_smoothing if self.training else 0.0
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]),
                               targets.masked_fill(targets == PAD, IGNORED).reshape(-1), label_smoothing=smoothing)
        return logits, loss, state

    def _read_source(self, inputs: torch.Tensor, lengths: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The memory (S, B, D) and its padding (B, S) of the source ``inputs``."""
        if not self.reads_words:
            return self.transformer.encoder(inputs, lengths)
        if lengths is None:
            lengths = torch.full((inputs.shape[1],), inputs.shape[0], dtype=torch.long)
        padding = ~step_mask(lengths, inputs.shape[0], inputs.device).t()  # (B, S)
        return self.transformer.encoder(self._embedded(inputs), src_key_padding_mask=padding), padding

    def reorder_state(self, state: TransformerState, rows: torch.Tensor, same_inputs: bool = False) -> TransformerState:
        return state.select(rows)
