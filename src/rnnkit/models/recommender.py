"""A next-item recommender: a user's items so far -> a query vector -> a score for every item.

    items i_1 .. i_t -> embedding -> encoder -> q_t  (E wide)      score(q_t, j) = q_t . w_j + b_j

The encoder is a recurrent stack of any cell through ``Recurrent`` with ``lengths`` (GRU4Rec,
Hidasi et al. 2016; projected to the embedding width when the hidden size differs), or, as the
self-attentive baseline, SASRec's (Kang & McAuley 2018: scaled item embeddings plus learnt
positions counted back from the last item, causal self-attention blocks with the layer norm
first, a final layer norm) on ``torch.nn.TransformerEncoder``. The output matrix w is the
item embedding itself with ``tie_weights`` (GRU4Rec's constrained embeddings, SASRec's
shared embeddings). Index 0 is padding: it is never scored.

Every position predicts the next item (many-to-many): ``forward`` returns the queries (T, B, E)
(``scores`` turns them into (T, B, N + 1) scores, only where a caller wants every item) and the
loss named by ``--loss`` over the real steps (``rnnkit.models.ranking_losses``). Sampled losses
draw negatives in proportion to the training popularity raised to ``sample_alpha`` (0: uniform,
as SASRec; GRU4Rec tunes it between 0 and 1) from the global generator, which the trainer saves:
``bce`` draws ``bce_negatives`` for each target (SASRec), the others share the batch's distinct
targets and ``negatives`` more among every target of the batch (GRU4Rec's mini-batch sampling).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from rnnkit.cells import State
from rnnkit.errors import UserError
from rnnkit.models.config import RecurrentConfig
from rnnkit.models.ranking_losses import LOSS_NAMES, bce, bpr_max, full_softmax, sampled_softmax, top1_max

@dataclass
class RecommenderConfig(RecurrentConfig):
    """The recommender: item embeddings, an encoder (recurrent, or SASRec's self-attention) and a score per item."""

    architecture: str = "recurrent"
    """recurrent (any --cell) or sasrec (the self-attentive baseline: --num-layers blocks of --heads heads)."""
    embedding_size: int = 64
    """Width of the item embeddings (and of SASRec's blocks)."""
    tie_weights: bool = True
    """Score items with their input embeddings (GRU4Rec's constrained embeddings; SASRec shares them too)."""
    heads: int = 1
    """sasrec: attention heads."""
    max_length: int = 50
    """The most recent items a model reads of a history (SASRec's and S3-Rec's maxlen on Amazon data: 50)."""
    loss: str = "full_softmax"
    """full_softmax (every item), sampled_softmax (log-Q corrected), bpr_max, top1_max (GRU4Rec) or bce (SASRec)."""
    negatives: int = 512
    """sampled_softmax, bpr_max, top1_max: items drawn for each batch, besides its targets, shared by its targets."""
    bce_negatives: int = 1
    """bce: items drawn for each target (SASRec draws 1)."""
    sample_alpha: float = 0.0
    """Negatives are drawn in proportion to popularity ** alpha: 0 uniform (SASRec), 1 as popular (GRU4Rec: 0-1)."""
    bpr_regularisation: float = 1.0
    """bpr_max: lambda, the weight of the negatives' squared scores (GRU4Rec's bpreg)."""

    def validate(self) -> None:
        super().validate()
        if self.architecture not in ENCODERS:
            raise UserError(f"--architecture: expected one of {', '.join(ENCODERS)}, got {self.architecture!r}")
        if self.loss not in LOSS_NAMES:
            raise UserError(f"--loss: expected one of {', '.join(LOSS_NAMES)}, got {self.loss!r}")
        if self.bidirectional:
            raise UserError("--bidirectional: a recommender predicts the next item and must not read ahead")
        for name in ("embedding_size", "heads", "max_length", "negatives", "bce_negatives"):
            if getattr(self, name) <= 0:
                raise UserError(f"--{name.replace('_', '-')}: expected a positive integer, got {getattr(self, name)}")
        if self.architecture == "sasrec" and self.embedding_size % self.heads:
            raise UserError(f"--heads: {self.heads} heads must divide --embedding-size ({self.embedding_size})")
        if self.sample_alpha < 0:
            raise UserError(f"--sample-alpha: expected 0 or more, got {self.sample_alpha}")


class RecurrentEncoder(nn.Module):
    """dropout -> Recurrent -> dropout -> (a projection to the embedding width, where the hidden size differs)."""

    def __init__(self, config: RecommenderConfig) -> None:
        super().__init__()
        self.rnn = config.build(config.embedding_size, config.max_length)
        self.dropout = nn.Dropout(config.dropout)
        width = self.rnn.output_size
        self.projection = nn.Identity() if width == config.embedding_size else nn.Linear(width, config.embedding_size)

    def forward(self, embedded: torch.Tensor, state: State | None, lengths: torch.Tensor | None):
        hidden, state = self.rnn(self.dropout(embedded), state, lengths=lengths)  # (T, B, H)
        return self.projection(self.dropout(hidden)), state


class SelfAttentiveEncoder(nn.Module):
    """SASRec: e * sqrt(E) + position -> dropout -> causal blocks (layer norm first) -> layer norm. Positions count back
    from each history's last item (SASRec pads on the left, so its last item always sits at the last position)."""

    def __init__(self, config: RecommenderConfig) -> None:
        super().__init__()
        self.scale, self.max_length = math.sqrt(config.embedding_size), config.max_length
        self.positions = nn.Embedding(config.max_length, config.embedding_size)
        self.dropout = nn.Dropout(config.dropout)
        block = nn.TransformerEncoderLayer(config.embedding_size, config.heads, dim_feedforward=config.embedding_size,
                                           dropout=config.dropout, activation="relu", norm_first=True)
        self.blocks = nn.TransformerEncoder(block, config.num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.embedding_size)

    def forward(self, embedded: torch.Tensor, state: State | None, lengths: torch.Tensor | None):
        steps, batch = embedded.shape[:2]
        if steps > self.max_length:
            raise ValueError(f"sasrec reads at most {self.max_length} items (--max-length), got {steps}")
        lengths = torch.full((batch,), steps) if lengths is None else lengths
        back = (lengths.to(embedded.device).unsqueeze(0) - 1 - torch.arange(steps, device=embedded.device).unsqueeze(1))
        positions = (self.max_length - 1 - back).clamp(0, self.max_length - 1)  # (T, B); padding: clamped, unread
        x = self.dropout(embedded * self.scale + self.positions(positions))
        causal = nn.Transformer.generate_square_subsequent_mask(steps, device=embedded.device)
        return self.norm(self.blocks(x, mask=causal, is_causal=True)), None  # step t reads steps <= t only


ENCODERS = {"recurrent": RecurrentEncoder, "sasrec": SelfAttentiveEncoder}


class Recommender(nn.Module):
    """Args:
        items: the catalogue's size N (indices 1..N; 0 pads).
        popularity: (N + 1,) training counts of each item: what negatives are drawn by.
    """

    def __init__(self, items: int, config: RecommenderConfig, popularity: torch.Tensor | None = None) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(items + 1, config.embedding_size, padding_idx=0)
        nn.init.normal_(self.embedding.weight, std=config.embedding_size ** -0.5)
        with torch.no_grad():
            self.embedding.weight[0].zero_()
        self.encoder = ENCODERS[config.architecture](config)
        self.output = (self.embedding.weight if config.tie_weights
                       else nn.Parameter(torch.randn(items + 1, config.embedding_size) * config.embedding_size ** -0.5))
        self.bias = nn.Parameter(torch.zeros(items + 1))
        self.register_buffer("popularity", torch.ones(items + 1) if popularity is None else popularity.float())

    def forward(
        self,
        inputs: torch.Tensor,
        state: State | None = None,
        *,
        lengths: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, State | None]:
        """inputs (T, B) item indices -> queries (T, B, E), the mean loss of predicting targets (T, B) (the next item
        at every step; 0 and the steps past ``lengths`` are left out) if given, and the encoder's final state."""
        queries, state = self.encoder(self.embedding(inputs), state, lengths)
        loss = None
        if targets is not None:
            real = targets > 0
            if lengths is not None:
                real &= torch.arange(targets.shape[0], device=targets.device).unsqueeze(1) < lengths.to(targets.device)
            loss = self.loss(queries[real], targets[real])
        return queries, loss, state

    def scores(self, queries: torch.Tensor) -> torch.Tensor:
        """(..., E) queries -> (..., N + 1) scores of every item; padding (column 0) scores -inf."""
        scores = queries @ self.output.T + self.bias
        scores[..., 0] = float("-inf")
        return scores

    def score_items(self, queries: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """queries (P, E) and items (P, K) or (K,) -> their scores (P, K)."""
        if items.dim() == 1:
            return queries @ self.output[items].T + self.bias[items]
        return torch.einsum("pe,pke->pk", queries, self.output[items]) + self.bias[items]

    def draw_weights(self) -> torch.Tensor:
        """(N + 1,) how likely each item is drawn as a negative: popularity ** sample_alpha, padding never."""
        weights = self.popularity ** self.config.sample_alpha
        weights[0] = 0
        return weights / weights.sum()

    def draw(self, count: int) -> torch.Tensor:
        """``count`` item indices drawn with replacement as ``draw_weights`` says."""
        return torch.multinomial(self.draw_weights(), count, replacement=True)

    def loss(self, queries: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The configured loss of (P, E) queries predicting (P,) items."""
        config = self.config
        if config.loss == "full_softmax":
            return full_softmax(self.scores(queries), targets)
        positive = self.score_items(queries, targets.unsqueeze(1)).squeeze(1)  # (P,)
        if config.loss == "bce":
            drawn = self.draw(targets.numel() * config.bce_negatives).view(-1, config.bce_negatives)  # (P, k)
            return bce(positive, self.score_items(queries, drawn), drawn == targets.unsqueeze(1))
        candidates = torch.cat([targets.unique(), self.draw(config.negatives)])  # (C,): in-batch, then sampled
        negatives = self.score_items(queries, candidates)  # (P, C)
        hits = candidates.unsqueeze(0) == targets.unsqueeze(1)
        if config.loss == "bpr_max":
            return bpr_max(positive, negatives, hits, config.bpr_regularisation)
        if config.loss == "top1_max":
            return top1_max(positive, negatives, hits)
        # log q: how many times each item is expected among the candidates: the P targets, and the draws
        in_batch = self.popularity / self.popularity.sum()
        log_q = torch.log(targets.numel() * in_batch + config.negatives * self.draw_weights())
        return sampled_softmax(positive, negatives, hits, log_q[targets], log_q[candidates])
