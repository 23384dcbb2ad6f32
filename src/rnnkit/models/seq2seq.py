"""An encoder–decoder (sequence to sequence): an encoder RNN reads the source, a decoder RNN writes the target.

    encoder:  x_1 .. x_S -> embedding -> Recurrent(lengths) -> memory (S, B, H), final state
    decoder:  y_{t-1} -> embedding -> [ ; extra input] -> Recurrent -> read-out -> logits over y_t

The three architectures differ in what the decoder sees of the source (``--architecture``):

    sutskever   the encoder's final state starts the decoder; nothing else (Sutskever et al. 2014)
    cho         also the context c (the encoder's final top-layer state) at every step's input
                and in the read-out tanh(W [h_t ; e(y_{t-1}) ; c]) (Cho et al. 2014)
    attention   the read-out attends over the memory: a_t = tanh(W_c [context_t ; h_t])
                (Luong et al. 2015), scored additively (Bahdanau et al. 2015) or by dot/general;
                with input feeding a_{t-1} joins y_{t-1} at the input (Luong et al.; OpenNMT)

A bidirectional encoder has ``hidden_size / 2`` units per direction and its two directions are
concatenated, so memory and final states are as wide as the decoder (OpenNMT's brnn): the
final state starts the decoder as it is, and dot attention needs no projection.

The model is a language model of the target conditioned on the source, and its forward says so
(the model contract, ``forward(inputs, state, *, lengths, targets)``)::

    model(source, None, lengths=L, targets=Y)   teacher forcing: logits of y_1 .. <eos>, the loss, the state after
    model(source, None, lengths=L)              read the source: the encoder's outputs, the decoder's first state
    model(words (T, B), state)                  continue: logits of the word after each, the state after them

Search (``rnnkit.models.search``) reads the source, then feeds ``<bos>`` and each chosen word back.
Teacher forcing runs the whole target through the decoder's ``Recurrent`` at once, on the fast
kernels, wherever a step's input does not depend on the previous step's output: everywhere but
attention with input feeding and scheduled sampling (``teacher_forcing`` < 1), which step one
token at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.errors import UserError
from rnnkit.models.attention import SCORES, Attention
from rnnkit.models.config import RecurrentConfig
from rnnkit.models.losses import IGNORED
from rnnkit.sequences import step_mask

ARCHITECTURES = ("sutskever", "cho", "attention")
PAD = 0  # rnnkit.data.vocabulary.TokenVocabulary: <pad> is id 0 in both vocabularies


@dataclass
class Seq2SeqConfig(RecurrentConfig):
    """The encoder and the decoder share the cell, the depth and the width; --bidirectional is the encoder's."""

    embedding_size: int = 256
    """Width of the source and target word embeddings."""
    architecture: str = "attention"
    """sutskever (final state only), cho (context at every step) or attention."""
    score: str = "additive"
    """attention: additive (Bahdanau), dot or general (Luong)."""
    input_feeding: bool = True
    """attention: feed the previous step's attentional vector into the decoder's input (Luong et al.)."""
    tie_embeddings: bool = False
    """Share the target embedding matrix with the output layer (Press & Wolf 2016); needs --embedding-size =
    --hidden-size."""
    teacher_forcing: float = 1.0
    """Training: the probability that a decoder step reads the true previous word rather than its own best guess
    (scheduled sampling, Bengio et al. 2015; 1: always the true word)."""
    label_smoothing: float = 0.0
    """Training loss: the probability mass spread over the other words (Szegedy et al. 2016; 0.1 is usual)."""

    def validate(self) -> None:
        super().validate()
        if self.embedding_size <= 0:
            raise UserError(f"--embedding-size: expected a positive integer, got {self.embedding_size}")
        if self.architecture not in ARCHITECTURES:
            raise UserError(f"--architecture: expected one of {', '.join(ARCHITECTURES)}, got {self.architecture!r}")
        if self.score not in SCORES:
            raise UserError(f"--score: expected one of {', '.join(SCORES)}, got {self.score!r}")
        if self.bidirectional and self.hidden_size % 2:
            raise UserError(f"--hidden-size: a bidirectional encoder splits it between its two directions, so it "
                            f"must be even, got {self.hidden_size}")
        if self.bidirectional and self.merge_mode != "concat":
            raise UserError("--merge-mode: the encoder's two directions are concatenated (each hidden-size / 2 wide); "
                            "leave --merge-mode concat")
        if self.tie_embeddings and self.embedding_size != self.hidden_size:
            raise UserError(f"--tie-embeddings: the output layer reads --hidden-size ({self.hidden_size}) features "
                            f"and the embedding has --embedding-size ({self.embedding_size}); make them equal")
        for name in ("teacher_forcing", "label_smoothing"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UserError(f"--{name.replace('_', '-')}: expected a probability in [0, 1], got {getattr(self, name)}")


@dataclass
class DecoderState:
    """What a decoder step needs: its recurrent state, the source it attends to, and what it feeds itself."""

    rnn: tuple[torch.Tensor, ...]  # each (L, B, H)
    memory: torch.Tensor  # (S, B, H) the encoder's outputs
    keys: torch.Tensor | None  # (B, S, K) the memory as the attention scores it (attention only)
    source_mask: torch.Tensor  # (B, S) True at real source positions
    context: torch.Tensor | None  # (B, H) cho: the fixed context vector
    feed: torch.Tensor | None  # (B, H) input feeding: the previous attentional vector
    attention: torch.Tensor | None = None  # (B, S) the last word's attention weights (attention only)

    def select(self, rows: torch.Tensor, same_sources: bool = False) -> "DecoderState":
        """The state of the batch rows ``rows`` (in that order, repeats allowed): for beam search. With
        ``same_sources`` the caller promises that each new row reads the same source as the old row in its place
        (beam search reorders hypotheses within each sentence), so the source's tensors are kept as they are."""
        def pick(tensor, dim):
            return None if tensor is None else tensor.index_select(dim, rows)
        rnn = tuple(part.index_select(1, rows) for part in self.rnn)
        if same_sources:
            return replace(self, rnn=rnn, feed=pick(self.feed, 0), attention=pick(self.attention, 0))
        return DecoderState(rnn, pick(self.memory, 1), pick(self.keys, 0), pick(self.source_mask, 0),
                            pick(self.context, 0), pick(self.feed, 0), pick(self.attention, 0))


class Encoder(nn.Module):
    def __init__(self, vocab_size: int, config: Seq2SeqConfig) -> None:
        super().__init__()
        self.directions = 2 if config.bidirectional else 1
        self.embedding = nn.Embedding(vocab_size, config.embedding_size, padding_idx=PAD)
        self.dropout = nn.Dropout(config.dropout)
        self.rnn = replace(config, hidden_size=config.hidden_size // self.directions).build(config.embedding_size)

    def forward(self, source: torch.Tensor,
                lengths: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], torch.Tensor]:
        """source (S, B) ids, lengths (B,) -> memory (S, B, H), final state: each (L, B, H), directions concatenated,
        and the memory's mask (B, S): True where attention may look (every real source position)."""
        memory, state = self.rnn(self.dropout(self.embedding(source)), lengths=lengths)
        layers = state[0].shape[0] // self.directions
        joined = tuple(part.view(layers, self.directions, *part.shape[1:]).permute(0, 2, 1, 3).flatten(2)
                       for part in state)  # (L*D, B, H/D) -> (L, B, D * H/D): [forward ; backward] per layer
        return memory, joined, step_mask(lengths, source.shape[0], source.device).t()


class Decoder(nn.Module):
    def __init__(self, vocab_size: int, config: Seq2SeqConfig) -> None:
        super().__init__()
        hidden, width = config.hidden_size, config.embedding_size
        self.architecture = config.architecture
        self.feeds = config.architecture == "attention" and config.input_feeding
        self.embedding = nn.Embedding(vocab_size, width, padding_idx=PAD)
        self.dropout = nn.Dropout(config.dropout)
        extra_input = hidden if self.feeds or config.architecture == "cho" else 0
        self.rnn = replace(config, bidirectional=False).build(width + extra_input)
        self.attention = self.combine = self.readout = None
        if config.architecture == "attention":
            self.attention = Attention(config.score, hidden, hidden)
            self.combine = nn.Linear(2 * hidden, hidden, bias=False)  # Luong et al.'s W_c
        elif config.architecture == "cho":
            self.readout = nn.Linear(hidden + width + hidden, hidden)
        self.output = nn.Linear(hidden, vocab_size)
        if config.tie_embeddings:
            self.output.weight = self.embedding.weight

    def start(self, memory: torch.Tensor, final: tuple[torch.Tensor, ...], source_mask: torch.Tensor) -> DecoderState:
        """The state before the first target word, from the encoder's outputs and final state."""
        batch = memory.shape[1]
        keys = None if self.attention is None else self.attention.prepare(memory)
        context = final[0][-1] if self.architecture == "cho" else None  # the top layer's h
        feed = memory.new_zeros(batch, self.combine.out_features) if self.feeds else None
        return DecoderState(final, memory, keys, source_mask, context, feed)

    def step(self, tokens: torch.Tensor, state: DecoderState) -> tuple[torch.Tensor, DecoderState]:
        """One target word: tokens (B,) ids of y_{t-1} -> logits (B, V) over y_t, and the new state (holding the
        attention weights (B, S) where there is attention)."""
        embedded = self.dropout(self.embedding(tokens)).unsqueeze(0)  # (1, B, E)
        hidden, rnn_state = self.rnn(self._inputs(embedded, state), state.rnn)
        logits, weights, attentional = self._read_out(hidden, embedded, state)
        feed = attentional[-1] if self.feeds else None
        return logits[0], replace(state, rnn=rnn_state, feed=feed, attention=None if weights is None else weights[0])

    def teacher_forced(self, previous: torch.Tensor,
                       state: DecoderState) -> tuple[torch.Tensor, torch.Tensor | None, DecoderState]:
        """previous (T, B) ids of y_0 .. y_{T-1} (y_0 = <bos> from the first state) -> logits (T, B, V), attention
        weights (T, B, S) and the state after the last word."""
        if self.feeds:  # each step's input holds the previous step's attentional vector
            return self.sampled(previous, state, 1.0)
        embedded = self.dropout(self.embedding(previous))  # (T, B, E)
        hidden, rnn_state = self.rnn(self._inputs(embedded, state), state.rnn)  # one call: the fast kernels
        logits, weights, _ = self._read_out(hidden, embedded, state)
        return logits, weights, replace(state, rnn=rnn_state, attention=None if weights is None else weights[-1])

    def sampled(self, previous: torch.Tensor, state: DecoderState,
                teacher_forcing: float) -> tuple[torch.Tensor, torch.Tensor | None, DecoderState]:
        """As ``teacher_forced``, one step at a time; each step reads the true y_{t-1} with probability
        ``teacher_forcing``, else the previous step's best guess (scheduled sampling)."""
        logits, weights = [], []
        tokens = previous[0]
        for t in range(previous.shape[0]):
            if t > 0 and teacher_forcing < 1.0:
                keep = torch.rand(tokens.shape, device=tokens.device) < teacher_forcing
                tokens = torch.where(keep, previous[t], logits[-1].argmax(dim=-1))
            elif t > 0:
                tokens = previous[t]
            step_logits, state = self.step(tokens, state)
            logits.append(step_logits)
            weights.append(state.attention)
        return torch.stack(logits), None if weights[0] is None else torch.stack(weights), state

    def _inputs(self, embedded: torch.Tensor, state: DecoderState) -> torch.Tensor:
        """The recurrent input (T, B, E [+ H]): the embedded previous word, and the fed vector or context."""
        extra = state.feed if self.feeds else state.context
        if extra is None:
            return embedded
        return torch.cat([embedded, extra.unsqueeze(0).expand(embedded.shape[0], -1, -1)], dim=-1)

    def _read_out(self, hidden: torch.Tensor, embedded: torch.Tensor, state: DecoderState):
        """hidden (T, B, H) -> logits (T, B, V), attention weights (T, B, S) or None, attentional vectors (T, B, H)."""
        weights = None
        if self.attention is not None:
            context, weights = self.attention(hidden, state.keys, state.memory, state.source_mask)
            hidden = torch.tanh(self.combine(torch.cat([context, hidden], dim=-1)))
        elif self.readout is not None:
            context = state.context.unsqueeze(0).expand(hidden.shape[0], -1, -1)
            hidden = torch.tanh(self.readout(torch.cat([hidden, embedded, context], dim=-1)))
        return self.output(self.dropout(hidden)), weights, hidden


class EncoderDecoder(nn.Module):
    """The model of the ``translate`` task (and of ``chat``); it owns its loss (token-level cross-entropy, padding
    ignored). ``encoder``: what reads the source, any module with ``Encoder``'s forward (default: an ``Encoder``;
    the chatbot's HRED passes its hierarchical one)."""

    def __init__(self, source_vocab_size: int, target_vocab_size: int, config: Seq2SeqConfig,
                 encoder: nn.Module | None = None) -> None:
        super().__init__()
        self.config = config
        self.encoder = encoder if encoder is not None else Encoder(source_vocab_size, config)
        self.decoder = Decoder(target_vocab_size, config)

    def forward(
        self,
        inputs: torch.Tensor,
        state: DecoderState | None = None,
        *,
        lengths: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, DecoderState]:
        """Without a state, inputs (S, B) are source ids (``lengths`` (B,)): with targets (T + 1, B) = <bos> y_1 ..
        y_n <eos>, then padding -> logits (T, B, V) for y_1 .. <eos>, the mean cross-entropy per target word and
        the state after <eos>; without targets -> the encoder's outputs (S, B, H) and the decoder's first state.
        With a state, inputs (T, B) are target words continuing it -> logits (T, B, V) of the word after each
        (the mean cross-entropy against targets (T, B) if given) and the state after the last."""
        if state is None:
            memory, state = self._read_source(inputs, lengths)
            if targets is None:
                return memory, None, state
            inputs, targets = targets[:-1], targets[1:]  # y_0 .. y_{T-1} in, y_1 .. y_T out
        if self.training and self.config.teacher_forcing < 1.0:
            logits, _, state = self.decoder.sampled(inputs, state, self.config.teacher_forcing)
        else:
            logits, _, state = self.decoder.teacher_forced(inputs, state)
        if targets is None:
            return logits, None, state
        smoothing = self.config.label_smoothing if self.training else 0.0
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]),
                               targets.masked_fill(targets == PAD, IGNORED).reshape(-1), label_smoothing=smoothing)
        return logits, loss, state

    def _read_source(self, source: torch.Tensor, lengths: torch.Tensor | None) -> tuple[torch.Tensor, DecoderState]:
        """source (S, B) ids with lengths (B,) -> the memory (S, B, H) and the decoder's state before the first word."""
        if lengths is None:
            lengths = torch.full((source.shape[1],), source.shape[0], dtype=torch.long)
        memory, final, source_mask = self.encoder(source, lengths)
        return memory, self.decoder.start(memory, final, source_mask)

    def reorder_state(self, state: DecoderState, rows: torch.Tensor, same_inputs: bool = False) -> DecoderState:
        """The state of hypotheses ``rows`` (``rnnkit.models.search.Searchable``)."""
        return state.select(rows, same_sources=same_inputs)


def attention_of(state: DecoderState) -> torch.Tensor | None:
    """The last word's attention weights (B, S) of a decoder state: what search keeps of each step."""
    return state.attention
