"""HRED's encoder (Serban et al. 2016): each utterance of a conversation read alone, then the utterances in order.

    utterance encoder:  the words of utterance u  -> Encoder (any cell, lengths) -> v_u = its final top-layer state
    context RNN:        v_1 .. v_U                -> Recurrent (lengths)         -> the conversation's state
    decoder:            rnnkit.models.seq2seq's, started from the context RNN's final state; with
                        --architecture cho it also reads the context at every step (HRED's decoder),
                        with attention it attends over the words of the last utterance

It has the forward of ``seq2seq.Encoder``, so ``EncoderDecoder(..., encoder=HierarchicalEncoder(...))``
is the whole model, and the search, batching and predict of the flat model serve it unchanged.
The source is the context as the flat model reads it, one row per conversation; an utterance
starts at each speaker marker (``markers``), which stays its first word. Every utterance of the
batch is read in one call of the utterance encoder::

    source (S, B):  <user> hi there <bot> hello <user> how are you        (one row)
    utterances (W, U * B):  column u * B + b holds utterance u of row b:  <user> hi there | <bot> hello | <user> how ...
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from rnnkit.models.seq2seq import PAD, Encoder, Seq2SeqConfig
from rnnkit.sequences import step_mask


class HierarchicalEncoder(nn.Module):
    def __init__(self, vocab_size: int, config: Seq2SeqConfig, markers: tuple[int, ...]) -> None:
        super().__init__()
        self.utterances = Encoder(vocab_size, config)
        self.context = replace(config, bidirectional=False).build(config.hidden_size)
        self.register_buffer("markers", torch.tensor(markers, dtype=torch.long), persistent=False)

    def forward(self, source: torch.Tensor,
                lengths: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], torch.Tensor]:
        """source (S, B) ids, lengths (B,) -> the words' memory (S, B, H), the context RNN's final state (each (L, B,
        H)) and the memory's mask (B, S): True on the words of each row's last utterance."""
        length, batch = source.shape
        lengths = lengths.to(source.device)
        steps = torch.arange(length, device=source.device).unsqueeze(1)  # (S, 1)
        real = step_mask(lengths, length, source.device)  # (S, B)
        starts = torch.isin(source, self.markers) & real
        starts[0] = True  # a source without markers is one utterance
        utterance = starts.long().cumsum(0) - 1  # (S, B) which utterance each word is in
        first = torch.where(starts, steps.expand(length, batch), 0).cummax(0).values  # (S, B) its utterance's start
        position = steps - first  # (S, B) the word's place in its utterance
        count = torch.where(real, utterance, -1).max(0).values + 1  # (B,) utterances per row
        utterances = int(count.max())

        column = utterance * batch + torch.arange(batch, device=source.device)  # (S, B) its utterance's column
        width = int(position[real].max()) + 1
        words = source.new_full((width, utterances * batch), PAD)
        words[position[real], column[real]] = source[real]
        word_counts = torch.zeros(utterances * batch, dtype=torch.long, device=source.device)
        word_counts.index_add_(0, column[real], torch.ones_like(column[real]))
        read, final, _ = self.utterances(words, word_counts.clamp(min=1))  # absent utterances: one padding word

        vectors = final[0][-1].view(utterances, batch, -1)  # (U, B, H) each utterance's top-layer state
        _, state = self.context(vectors, lengths=count)
        memory = read[position.clamp(max=width - 1), column.clamp(max=utterances * batch - 1)]  # (S, B, H)
        last = real & (utterance == (count - 1).unsqueeze(0))
        return memory, state, last.t()
