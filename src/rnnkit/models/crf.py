"""A linear-chain conditional random field over tag sequences (Lafferty et al. 2001; Lample et al. 2016).

The score of tags y_1 .. y_L for emissions e (one score per step and tag, from the network):

    s(y) = start[y_1] + sum_t e_t[y_t] + sum_{t>1} A[y_{t-1}, y_t] + end[y_L]

    p(y | x) = exp(s(y)) / Z,      log Z = logsumexp over every tag path of s(path)

log Z comes from the forward algorithm, one step per token:

    alpha_1[j] = start[j] + e_1[j]
    alpha_t[j] = logsumexp_i (alpha_{t-1}[i] + A[i, j]) + e_t[j]
    log Z      = logsumexp_j (alpha_L[j] + end[j])

and the best path from Viterbi, the same recursion with max for logsumexp and back-pointers.
Batches are time-major, (T, B, C), with each sentence's ``lengths``: a step past a
sentence's end leaves its alpha as it was, so padding adds nothing. Transitions a tag
scheme forbids (``allowed``, from ``rnnkit.data.tag_schemes``) score ``FORBIDDEN``, are not
learnt, and are never decoded.
"""

from __future__ import annotations

import torch
from torch import nn

from rnnkit.data.tag_schemes import allowed_transition
from rnnkit.sequences import step_mask

FORBIDDEN = -1e4  # a forbidden transition's score: exp() of it is 0 in float32, and it stays finite for gradients


class LinearChainCRF(nn.Module):
    """Args:
        num_tags: C.
        allowed: optional (C + 2, C + 2) boolean matrix, [previous, following]; index C is the start, C + 1 the end.
    """

    def __init__(self, num_tags: int, allowed: torch.Tensor | None = None) -> None:
        super().__init__()
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))  # A[i, j]: score of tag j after tag i
        self.start = nn.Parameter(torch.empty(num_tags))
        self.end = nn.Parameter(torch.empty(num_tags))
        nn.init.uniform_(self.transitions, -0.1, 0.1)
        nn.init.uniform_(self.start, -0.1, 0.1)
        nn.init.uniform_(self.end, -0.1, 0.1)
        if allowed is None:
            allowed = torch.ones(num_tags + 2, num_tags + 2, dtype=torch.bool)
        self.register_buffer("allowed", allowed.clone(), persistent=False)

    def scores(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(A, start, end) with the forbidden entries set to FORBIDDEN."""
        tags, start, end = slice(0, self.num_tags), self.num_tags, self.num_tags + 1
        transitions = self.transitions.masked_fill(~self.allowed[tags, tags], FORBIDDEN)
        first = self.start.masked_fill(~self.allowed[start, tags], FORBIDDEN)
        last = self.end.masked_fill(~self.allowed[tags, end], FORBIDDEN)
        return transitions, first, last

    def path_score(self, emissions: torch.Tensor, tags: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """s(y) of the given tags: emissions (T, B, C), tags (T, B), lengths (B,) -> (B,)."""
        transitions, first, last = self.scores()
        steps, batch = tags.shape
        mask = step_mask(lengths, steps, emissions.device).to(emissions.dtype)  # (T, B)
        emitted = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)  # (T, B): e_t[y_t]
        score = first[tags[0]] + (emitted * mask).sum(0)
        score = score + (transitions[tags[:-1], tags[1:]] * mask[1:]).sum(0)  # A[y_{t-1}, y_t] for t < L
        final = tags.gather(0, (lengths.to(tags.device) - 1).unsqueeze(0)).squeeze(0)  # y_L: (B,)
        return score + last[final]

    def log_partition(self, emissions: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """log Z by the forward algorithm: emissions (T, B, C), lengths (B,) -> (B,)."""
        transitions, first, last = self.scores()
        mask = step_mask(lengths, emissions.shape[0], emissions.device)
        alpha = first + emissions[0]  # (B, C)
        for t in range(1, emissions.shape[0]):
            following = torch.logsumexp(alpha.unsqueeze(2) + transitions, dim=1) + emissions[t]  # (B, C)
            alpha = torch.where(mask[t].unsqueeze(1), following, alpha)
        return torch.logsumexp(alpha + last, dim=1)

    def forward(self, emissions: torch.Tensor, tags: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The negative log-likelihood -log p(y | x) of each sentence's tags: (B,)."""
        return self.log_partition(emissions, lengths) - self.path_score(emissions, tags, lengths)

    @torch.no_grad()
    def viterbi(self, emissions: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
        """The highest-scoring tag path of each sentence (its own length), by Viterbi."""
        transitions, first, last = self.scores()
        mask = step_mask(lengths, emissions.shape[0], emissions.device)
        best = first + emissions[0]  # (B, C): the best score of a path ending in each tag
        pointers = []
        for t in range(1, emissions.shape[0]):
            candidates = best.unsqueeze(2) + transitions  # (B, C previous, C following)
            score, previous = candidates.max(dim=1)
            pointers.append(previous)
            best = torch.where(mask[t].unsqueeze(1), score + emissions[t], best)
        final = (best + last).argmax(dim=1).tolist()
        paths = []
        for b, length in enumerate(lengths.tolist()):
            path = [final[b]]
            for t in range(length - 1, 0, -1):  # pointers[t - 1] says which tag at t - 1 led to the tag at t
                path.append(int(pointers[t - 1][b, path[-1]]))
            paths.append(path[::-1])
        return paths


def transition_constraints(tags: list[str], scheme: str) -> torch.Tensor:
    """The (C + 2, C + 2) ``allowed`` matrix of ``LinearChainCRF`` for ``tags`` under ``scheme``."""
    names: list[str | None] = [*tags, None, None]  # start, end
    size = len(tags) + 2
    allowed = torch.zeros(size, size, dtype=torch.bool)
    for i, previous in enumerate(names):
        for j, following in enumerate(names):
            if i == size - 1 or j == size - 2:
                continue  # nothing follows the end, nothing precedes the start
            if i == size - 2 and j == size - 1:
                continue  # an empty sentence
            allowed[i, j] = allowed_transition(previous, following, scheme)
    return allowed
