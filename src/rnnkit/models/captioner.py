"""Image captioning: a convolutional encoder, and a recurrent decoder that attends over the image at every word.

Show, Attend and Tell (Xu et al. 2015), soft attention. The encoder (``image_encoder``) turns
the image into L annotation vectors a_1 .. a_L (the regions of its last feature map). Before
each word t the decoder looks at the image with its previous state::

    alpha_t   = softmax_i( v^T tanh(W_h h_{t-1} + W_a a_i) )      additive attention (rnnkit.models.attention)
    beta_t    = sigmoid(f_beta(h_{t-1}))                          gating scalar: how much to look at all
    z_t       = beta_t * sum_i alpha_ti a_i                       the context
    h_t       = cell([E y_{t-1} ; z_t], h_{t-1})                  any cell of the library
    p(y_t)    = softmax(L_o(E y_{t-1} + L_h h_t + L_z z_t))       the deep output layer
    h_0 (c_0) = tanh(W_init mean_i a_i)                           the initial state, from the mean annotation

and training adds the doubly stochastic penalty, which asks every region to be looked at about
once over the caption (``attention_penalty``)::

    loss = cross-entropy + lambda * mean_i (1 - sum_t alpha_ti)^2     (mean over regions: Xu et al. sum them)

The model contract of ``seq2seq.EncoderDecoder``, with an image as the source: a sequence of
one step, (1, B, 3, H, W) uint8 pixels (one-to-many)::

    model(images, None, targets=Y)   teacher forcing: logits of y_1 .. <eos>, the loss, the state after
    model(images, None)              read the image: its annotations (L, B, D) and the decoder's first state
    model(words (T, B), state)       continue: logits of the word after each, the state after them

so ``rnnkit.models.search.beam_search`` finds captions as it finds translations. Each step
reads the previous one's state (the attention comes before the cell), so even teacher forcing
steps one word at a time. ``--decoder transformer`` is the baseline: the same encoder under
``torch.nn.TransformerDecoder`` (``transformer_seq2seq``), its memory the projected annotations
plus a learnt position per region.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.errors import UserError
from rnnkit.models.attention import Attention
from rnnkit.models.config import RecurrentConfig
from rnnkit.models.image_encoder import ENCODERS, NORM_GROUPS, ImageEncoder, grid_side
from rnnkit.models.losses import IGNORED
from rnnkit.models.seq2seq import PAD
from rnnkit.models.transformer_seq2seq import TransformerEncoderDecoder

DECODERS = ("attention", "transformer")


@dataclass
class CaptionModelConfig(RecurrentConfig):
    """The image encoder and the decoder (its cell, width and depth are the recurrent options)."""

    encoder: str = "resnet"
    """resnet (a small ResNet for small images, --encoder-widths), resnet18 or resnet34 (torchvision's, untrained)."""
    encoder_widths: tuple[int, ...] = (32, 64, 128, 256)
    """resnet: channels of each stage; the first three halve the grid (64x64 images -> 8x8 regions)."""
    encoder_blocks: int = 1
    """resnet: residual blocks per stage."""
    decoder: str = "attention"
    """attention (Show, Attend and Tell: a recurrent decoder with soft attention) or transformer (the baseline:
    torch.nn.TransformerDecoder, width --hidden-size, --num-layers layers)."""
    embedding_size: int = 256
    """Width of the word embeddings (attention decoder)."""
    gate: bool = True
    """attention: scale the context by the gating scalar beta_t (Xu et al. 4.2.1)."""
    attention_penalty: float = 1.0
    """attention: weight of the doubly stochastic penalty, mean_i (1 - sum_t alpha_ti)^2 (0: none)."""
    heads: int = 4
    """transformer: attention heads."""
    feedforward_size: int = 1024
    """transformer: width of each layer's feed-forward block."""
    label_smoothing: float = 0.0
    """Training loss: the probability mass spread over the other words."""

    def validate(self) -> None:
        super().validate()
        if self.encoder not in ENCODERS:
            raise UserError(f"--encoder: expected one of {', '.join(ENCODERS)}, got {self.encoder!r}")
        if self.decoder not in DECODERS:
            raise UserError(f"--decoder: expected one of {', '.join(DECODERS)}, got {self.decoder!r}")
        if not self.encoder_widths or any(width <= 0 or width % NORM_GROUPS for width in self.encoder_widths):
            raise UserError(f"--encoder-widths: expected positive multiples of {NORM_GROUPS} (the channel groups "
                            f"normalised together), got {' '.join(map(str, self.encoder_widths))}")
        if self.encoder_blocks <= 0:
            raise UserError(f"--encoder-blocks: expected a positive integer, got {self.encoder_blocks}")
        if self.bidirectional:
            raise UserError("--bidirectional: a decoder writes left to right; leave it off")
        if self.decoder == "transformer" and self.hidden_size % self.heads:
            raise UserError(f"--heads: --hidden-size ({self.hidden_size}) must be a multiple of it, got {self.heads}")
        if self.attention_penalty < 0 or not 0.0 <= self.label_smoothing <= 1.0:
            raise UserError("--attention-penalty: expected a value >= 0; --label-smoothing: a probability")


@dataclass
class CaptionState:
    """What a decoder step needs: its recurrent state and the image's annotations."""

    rnn: tuple[torch.Tensor, ...]  # each (layers, B, H)
    memory: torch.Tensor  # (L, B, D) the annotations
    keys: torch.Tensor  # (B, L, H) the annotations as the attention scores them
    attention: torch.Tensor | None = None  # (B, L) the last word's alpha

    def select(self, rows: torch.Tensor, same_images: bool = False) -> "CaptionState":
        rnn = tuple(part.index_select(1, rows) for part in self.rnn)
        attention = None if self.attention is None else self.attention.index_select(0, rows)
        if same_images:  # beam search reorders one image's hypotheses: the annotations stay as they are
            return replace(self, rnn=rnn, attention=attention)
        return CaptionState(rnn, self.memory.index_select(1, rows), self.keys.index_select(0, rows), attention)


class ShowAttendTell(nn.Module):
    def __init__(self, vocab_size: int, config: CaptionModelConfig) -> None:
        super().__init__()
        self.config = config
        hidden, width = config.hidden_size, config.embedding_size
        self.encoder = ImageEncoder(config.encoder, config.encoder_widths, config.encoder_blocks)
        regions = self.encoder.output_size
        self.embedding = nn.Embedding(vocab_size, width, padding_idx=PAD)
        self.dropout = nn.Dropout(config.dropout)
        self.attention = Attention("additive", hidden, regions)
        self.gate = nn.Linear(hidden, 1) if config.gate else None  # f_beta
        self.rnn = config.build(width + regions)
        self.initial = nn.Linear(regions, config.num_layers * len(self.rnn.state_names) * hidden)  # W_init
        self.hidden_out = nn.Linear(hidden, width)  # L_h
        self.context_out = nn.Linear(regions, width)  # L_z
        self.output = nn.Linear(width, vocab_size)  # L_o

    def start(self, memory: torch.Tensor) -> CaptionState:
        """The state before the first word: h_0 (and c_0) of every layer from the mean annotation."""
        layers, parts = self.config.num_layers, len(self.rnn.state_names)
        initial = torch.tanh(self.initial(memory.mean(dim=0)))  # (B, layers * parts * H)
        initial = initial.view(-1, parts, layers, self.config.hidden_size).permute(1, 2, 0, 3)
        return CaptionState(tuple(part.contiguous() for part in initial), memory, self.attention.prepare(memory))

    def step(self, tokens: torch.Tensor, state: CaptionState) -> tuple[torch.Tensor, CaptionState]:
        """One word: tokens (B,) ids of y_{t-1} -> logits (B, V) over y_t, and the new state (holding alpha_t)."""
        previous = state.rnn[0][-1].unsqueeze(0)  # (1, B, H) the top layer's h_{t-1}
        context, alpha = self.attention(previous, state.keys, state.memory)  # every region is real: no mask
        if self.gate is not None:
            context = torch.sigmoid(self.gate(previous)) * context  # z_t = beta_t * sum_i alpha_ti a_i, (1, B, D)
        embedded = self.dropout(self.embedding(tokens)).unsqueeze(0)  # (1, B, E)
        hidden, rnn = self.rnn(torch.cat([embedded, context], dim=-1), state.rnn)
        logits = self.output(self.dropout(embedded + self.hidden_out(hidden) + self.context_out(context)))
        return logits[0], replace(state, rnn=rnn, attention=alpha[0])

    def forward(self, inputs: torch.Tensor, state: CaptionState | None = None, *,
                lengths: torch.Tensor | None = None, targets: torch.Tensor | None = None):
        """Without a state, inputs (1, B, 3, H, W) are images: with targets (T + 1, B) = <bos> y_1 .. <eos>, then
        padding -> logits (T, B, V), the loss and the state after; without -> the annotations and the first state.
        With a state, inputs (T, B) are words continuing it -> logits (T, B, V) and the state after them."""
        if state is None:
            memory = self.encoder(inputs[0])
            state = self.start(memory)
            if targets is None:
                return memory, None, state
            inputs, targets = targets[:-1], targets[1:]
        logits, alphas = [], []
        for tokens in inputs:
            step_logits, state = self.step(tokens, state)
            logits.append(step_logits)
            alphas.append(state.attention)
        logits = torch.stack(logits)
        if targets is None:
            return logits, None, state
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]),
                               targets.masked_fill(targets == PAD, IGNORED).reshape(-1),
                               label_smoothing=self.config.label_smoothing if self.training else 0.0)
        if self.config.attention_penalty and self.training:
            loss = loss + self.config.attention_penalty * attention_penalty(torch.stack(alphas), targets != PAD)
        return logits, loss, state

    def reorder_state(self, state: CaptionState, rows: torch.Tensor, same_inputs: bool = False) -> CaptionState:
        return state.select(rows, same_images=same_inputs)


def attention_penalty(alphas: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """The doubly stochastic penalty: alphas (T, B, L) of each word, real (T, B) True at words that are not padding ->
    the mean over images and regions of (1 - sum_t alpha_ti)^2."""
    looked = (alphas * real.unsqueeze(-1)).sum(dim=0)  # (B, L)
    return ((1.0 - looked) ** 2).mean()


class ImageMemory(nn.Module):
    """The transformer baseline's source: the image encoder's annotations projected to the decoder's width, plus a
    learnt embedding of each region's place; no padding."""

    def __init__(self, encoder: ImageEncoder, regions: int, width: int) -> None:
        super().__init__()
        self.image = encoder
        self.project = nn.Linear(encoder.output_size, width)
        self.place = nn.Parameter(torch.randn(regions, 1, width) * 0.02)

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs (1, B, 3, H, W) -> memory (L, B, width), padding (B, L) all False."""
        memory = self.project(self.image(inputs[0])) + self.place
        return memory, torch.zeros(memory.shape[1], memory.shape[0], dtype=torch.bool, device=memory.device)


def build_captioner(vocab_size: int, config: CaptionModelConfig, image_size: int) -> nn.Module:
    """The model ``config.decoder`` names, for square images of ``image_size`` pixels."""
    if config.decoder == "attention":
        return ShowAttendTell(vocab_size, config)
    encoder = ImageEncoder(config.encoder, config.encoder_widths, config.encoder_blocks)
    regions = grid_side(encoder, image_size) ** 2
    return TransformerEncoderDecoder(vocab_size, config.hidden_size, config.heads, config.num_layers,
                                     config.feedforward_size, config.dropout, config.label_smoothing,
                                     encoder=ImageMemory(encoder, regions, config.hidden_size))


def image_encoder_of(model: nn.Module) -> ImageEncoder:
    """The image encoder of a model ``build_captioner`` built."""
    return model.encoder if isinstance(model, ShowAttendTell) else model.transformer.encoder.image


def attention_of(state) -> torch.Tensor | None:
    """The last word's attention over the regions (B, L), where the model has it (what search keeps per step)."""
    return getattr(state, "attention", None)
