"""The losses of next-item recommenders, on scores: each target's score r_i against its negatives' scores r_j.

Every sampled loss reads ``positive`` (P,) = r_i, ``negatives`` (P, K) = r_j and ``hits`` (P, K),
True where a sampled negative is the target itself (an accidental hit, left out), and returns
the mean over the P targets:

    sampled_softmax  -log( e^(r_i - log q_i) / (e^(r_i - log q_i) + sum_j e^(r_j - log q_j)) )
                     (Jean et al. 2015; the log-Q correction of Yi et al. 2019: q is how often each
                     candidate is drawn, so a popular item is not punished for being drawn often)
    bpr_max          -log sum_j s_j sigmoid(r_i - r_j) + lambda sum_j s_j r_j^2
    top1_max         sum_j s_j (sigmoid(r_j - r_i) + sigmoid(r_j^2))
                     with s = softmax over the negatives' scores (Hidasi & Karatzoglou 2018, GRU4Rec)
    bce              -log sigmoid(r_i) - sum_j log(1 - sigmoid(r_j))   (SASRec, k negatives a target)

and ``full_softmax`` is the cross-entropy over every item: sampled softmax with every item a
negative and a uniform q.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSS_NAMES = ("full_softmax", "sampled_softmax", "bpr_max", "top1_max", "bce")
TINY = 1e-24  # inside bpr-max's log: a sum of sigmoids that underflows to 0 (GRU4Rec adds the same)


def full_softmax(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of (P, N) scores over every item against (P,) target columns."""
    return F.cross_entropy(scores.float(), targets)


def sampled_softmax(positive: torch.Tensor, negatives: torch.Tensor, hits: torch.Tensor,
                    log_q_positive: torch.Tensor, log_q_negatives: torch.Tensor) -> torch.Tensor:
    """log_q_positive (P,), log_q_negatives (P, K) or (K,): the log of how often each candidate is drawn."""
    logits = torch.cat([(positive - log_q_positive).unsqueeze(1),
                        (negatives - log_q_negatives).masked_fill(hits, float("-inf"))], dim=1)  # (P, 1 + K)
    return F.cross_entropy(logits.float(), torch.zeros_like(positive, dtype=torch.long))


def _negative_weights(negatives: torch.Tensor, hits: torch.Tensor) -> torch.Tensor:
    """s_j: the softmax over each target's negatives, accidental hits left out (weight 0)."""
    return torch.softmax(negatives.masked_fill(hits, float("-inf")), dim=1)


def bpr_max(positive: torch.Tensor, negatives: torch.Tensor, hits: torch.Tensor,
            regularisation: float = 1.0) -> torch.Tensor:
    weights = _negative_weights(negatives, hits)
    ranked_above = (weights * torch.sigmoid(positive.unsqueeze(1) - negatives)).sum(1)
    return (-torch.log(ranked_above + TINY) + regularisation * (weights * negatives ** 2).sum(1)).mean()


def top1_max(positive: torch.Tensor, negatives: torch.Tensor, hits: torch.Tensor) -> torch.Tensor:
    weights = _negative_weights(negatives, hits)
    return (weights * (torch.sigmoid(negatives - positive.unsqueeze(1)) + torch.sigmoid(negatives ** 2))).sum(1).mean()


def bce(positive: torch.Tensor, negatives: torch.Tensor, hits: torch.Tensor) -> torch.Tensor:
    negative_terms = F.softplus(negatives).masked_fill(hits, 0.0).sum(1)  # -log(1 - sigmoid(r)) = softplus(r)
    return (F.softplus(-positive) + negative_terms).mean()  # -log sigmoid(r) = softplus(-r)
