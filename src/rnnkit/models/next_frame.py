"""A next-frame model of multi-label binary frames (piano rolls): one-to-many over time.

    frame x_t (B, K) -> dropout -> Recurrent -> dropout -> linear -> K logits a_t of frame x_{t+1}

The output distribution of a frame, given the state (``--output``):

    independent  p(x_{t+1} | h_t) = prod_k Bernoulli(x_{t+1,k}; sigmoid(a_{t,k}))
                 (an 88-way sigmoid: the RNN baselines of Boulanger-Lewandowski et al. 2012, Chung et al. 2014)
    chain        p(x_{t+1} | h_t) = prod_k Bernoulli(x_{t+1,k}; sigmoid(a_{t,k} + sum_{j<k} W_kj x_{t+1,j}))
                 (each key also sees the keys below it in the same frame, through a strictly lower-triangular
                 W: a fully visible sigmoid belief net conditioned on the state, the simplest of the
                 autoregressive frame models of which RNN-NADE is the best known)

Both likelihoods are exact (``conditioned``). In training the chain reads the true frame (one masked product);
sampling and the most likely frame are drawn key by key, lowest first. The model owns its
loss: the negative log-likelihood of a frame, summed over its K keys, averaged over the real
steps (``lengths`` masks the padding), the metric the music papers report, in nats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.cells import State
from rnnkit.errors import UserError
from rnnkit.models.config import RecurrentConfig
from rnnkit.sequences import step_mask

OUTPUTS = ("independent", "chain")


@dataclass
class NextFrameConfig(RecurrentConfig):
    output: str = "independent"
    """independent (one sigmoid per key given the state) or chain (each key also sees the keys below it in its frame;
    the music task's default)."""

    def validate(self) -> None:
        super().validate()
        if self.output not in OUTPUTS:
            raise UserError(f"--output: expected one of {', '.join(OUTPUTS)}, got {self.output!r}")


def frame_nll(logits: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor | None) -> tuple[torch.Tensor, int]:
    """The summed negative log-likelihood of the real frames of (T, B, K) ``targets`` under (T, B, K) ``logits``,
    and how many frames that is: the sum over keys of the binary cross-entropy, summed over steps."""
    per_key = F.binary_cross_entropy_with_logits(logits.float(), targets.float(), reduction="none")
    per_frame = per_key.sum(-1)  # (T, B)
    if lengths is None:
        return per_frame.sum(), per_frame.numel()
    mask = step_mask(lengths, targets.shape[0], targets.device)
    return per_frame[mask].sum(), int(lengths.sum())


class NextFrameModel(nn.Module):
    def __init__(self, keys: int, config: NextFrameConfig, sequence_length: int | None = None) -> None:
        super().__init__()
        self.keys, self.config = keys, config
        self.dropout = nn.Dropout(config.dropout)
        self.rnn = config.build(keys, sequence_length)
        self.head = nn.Linear(self.rnn.cells[-1].output_size, keys)
        if config.output == "chain":
            self.chain = nn.Linear(keys, keys, bias=False)
            nn.init.zeros_(self.chain.weight)
            self.register_buffer("below", torch.ones(keys, keys).tril(-1), persistent=False)  # W_kj, j < k only

    def forward(
        self,
        inputs: torch.Tensor,
        state: State | None = None,
        *,
        lengths: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, State]:
        """frames (T, B, K) -> the state's logits a_t of the next frames (T, B, K), the mean NLL per frame against
        targets (T, B, K) if given, and the final state."""
        hidden, state = self.rnn(self.dropout(inputs), state, lengths=lengths)
        logits = self.head(self.dropout(hidden))
        if targets is None:
            return logits, None, state
        total, frames = frame_nll(self.conditioned(logits, targets), targets, lengths)
        return logits, total / frames, state

    def conditioned(self, logits: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """The logit of each key of ``frames`` (..., K) given the state's ``logits`` (..., K) and, for the chain, the
        keys below it: a_k + sum_{j<k} W_kj x_j. Their binary cross-entropy against ``frames`` is its exact NLL."""
        if self.config.output == "independent":
            return logits
        return logits + F.linear(frames.to(logits.dtype), self.chain.weight * self.below)

    def draw(self, logits: torch.Tensor, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """Frames (..., K) from the state's logits (..., K): each key drawn from Bernoulli(sigmoid(logit / temperature)),
        or, at temperature 0, on where its probability is over 1/2 (key by key, lowest first, for the chain)."""
        if self.config.output == "independent":
            return self._decide(logits.float(), temperature, generator)
        weight = self.chain.weight * self.below
        frame = torch.zeros_like(logits, dtype=torch.float32)
        for key in range(self.keys):
            logit = logits[..., key].float() + frame @ weight[key].float()
            frame[..., key] = self._decide(logit, temperature, generator)
        return frame

    @staticmethod
    def _decide(logits: torch.Tensor, temperature: float, generator: torch.Generator | None) -> torch.Tensor:
        if temperature == 0:
            return (logits > 0).float()
        probabilities = torch.sigmoid(logits / temperature)
        return torch.bernoulli(probabilities.cpu(), generator=generator).to(logits.device)

    def sample(self, prime: torch.Tensor, steps: int, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """``steps`` frames (steps, K) following ``prime`` (P >= 1, K), each drawn by ``draw`` and fed back."""
        frames = list(self.sampled_frames(prime, steps, temperature, generator))
        return torch.stack(frames) if frames else prime.new_zeros(0, self.keys)

    def sampled_frames(self, prime: torch.Tensor, steps: int, temperature: float = 1.0,
                       generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
        """``sample``'s frames (K,) one at a time, each as soon as it is drawn (for streaming)."""
        with torch.no_grad():  # held per step: a generator's caller runs between its steps
            logits, _, state = self(prime.unsqueeze(1))
            frame = None
        for _ in range(steps):
            with torch.no_grad():
                if frame is not None:
                    logits, _, state = self(frame.view(1, 1, -1), state)
                frame = self.draw(logits[-1, 0], temperature, generator)
            yield frame
