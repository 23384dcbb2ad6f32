"""Sampling from a language model against what it promises (beam search: test_search.py)."""

from __future__ import annotations

import itertools

import pytest
import torch

from rnnkit.models import LanguageModel, LanguageModelConfig, sample

VOCABULARY, LENGTH = 3, 4
PRIME = torch.tensor([1, 0])


def _model(seed: int) -> LanguageModel:
    torch.manual_seed(seed)
    model = LanguageModel(VOCABULARY, LanguageModelConfig(cell="gru", hidden_size=5, embedding_size=4)).eval()
    with torch.no_grad():  # sharper distributions than at initialisation
        model.head.weight.mul_(8)
    return model


@torch.no_grad()
def _log_probability(model, continuation: list[int]) -> float:
    tokens = torch.cat([PRIME, torch.tensor(continuation)])
    logits, _, _ = model(tokens[:-1].view(-1, 1))
    log_probs = torch.log_softmax(logits[:, 0].double(), dim=-1)
    steps = range(len(PRIME) - 1, len(tokens) - 1)
    return sum(float(log_probs[t, tokens[t + 1]]) for t in steps)


def _best_by_exhaustive_search(model) -> list[int]:
    every = [list(tokens) for tokens in itertools.product(range(VOCABULARY), repeat=LENGTH)]
    return max(every, key=lambda continuation: _log_probability(model, continuation))


@pytest.fixture(scope="module")
def model() -> LanguageModel:
    """The first seed's model on which greedy decoding misses the best continuation, so that a search
    that returned the greedy path (or the worst beam) could not pass."""
    for seed in range(100):
        model = _model(seed)
        if sample(model, PRIME, LENGTH, temperature=0) != _best_by_exhaustive_search(model):
            return model
    raise AssertionError("no seed gave a model on which greedy decoding is not optimal")


def test_top_1_sampling_is_greedy_and_sampling_follows_the_seed(model):
    greedy = sample(model, PRIME, LENGTH, temperature=0)
    top_1 = sample(model, PRIME, LENGTH, temperature=1.0, top_k=1, generator=torch.Generator().manual_seed(5))
    assert top_1 == greedy
    draws = [sample(model, PRIME, 12, generator=torch.Generator().manual_seed(seed)) for seed in (1, 1, 2)]
    assert draws[0] == draws[1] and draws[0] != draws[2]
