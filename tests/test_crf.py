"""The linear-chain CRF against brute force: log Z and Viterbi over every tag path of tiny inputs (padded
batches included), probabilities that sum to 1, gradcheck in float64, and the tag schemes' constraints."""

from __future__ import annotations

import itertools

import pytest
import torch

from rnnkit.data.tag_schemes import allowed_transition, convert, to_bio
from rnnkit.models.crf import FORBIDDEN, LinearChainCRF, transition_constraints

TAGS = 3


def _crf(allowed=None, seed=0) -> LinearChainCRF:
    torch.manual_seed(seed)
    crf = LinearChainCRF(TAGS, allowed).double().requires_grad_(False)
    with torch.no_grad():  # scores of order 1, far from the uniform initial ones
        for parameter in crf.parameters():
            parameter.normal_()
    return crf


def _score(crf: LinearChainCRF, emissions: torch.Tensor, path: tuple[int, ...]) -> torch.Tensor:
    """s(y) of one sentence, written out term by term as the docstring's formula."""
    transitions, start, end = crf.scores()
    score = start[path[0]] + end[path[-1]]
    for t, tag in enumerate(path):
        score = score + emissions[t, tag]
        if t:
            score = score + transitions[path[t - 1], tag]
    return score


def _all_paths(length: int):
    return itertools.product(range(TAGS), repeat=length)


def _batch(lengths: list[int], seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    emissions = torch.randn(max(lengths), len(lengths), TAGS, dtype=torch.float64)
    return emissions, torch.tensor(lengths)


def test_log_partition_equals_the_logsumexp_over_every_path_with_padding():
    crf = _crf()
    emissions, lengths = _batch([4, 1, 3])
    log_z = crf.log_partition(emissions, lengths).detach()
    for b, length in enumerate(lengths.tolist()):
        scores = torch.stack([_score(crf, emissions[:length, b], path) for path in _all_paths(length)])
        assert float(log_z[b]) == pytest.approx(float(torch.logsumexp(scores, 0)), abs=1e-10)


def test_path_score_is_the_formula_and_padding_adds_nothing():
    crf = _crf()
    emissions, lengths = _batch([4, 2])
    tags = torch.tensor([[0, 2], [1, 1], [2, 0], [2, 0]])  # column 1 pads steps 2 and 3 (their tags are noise)
    scores = crf.path_score(emissions, tags, lengths)
    assert float(scores[0]) == pytest.approx(float(_score(crf, emissions[:, 0], (0, 1, 2, 2))), abs=1e-12)
    assert float(scores[1]) == pytest.approx(float(_score(crf, emissions[:2, 1], (2, 1))), abs=1e-12)


def test_probabilities_of_all_paths_sum_to_one():
    crf = _crf()
    emissions, lengths = _batch([3])
    total = 0.0
    for path in _all_paths(3):
        tags = torch.tensor(path).unsqueeze(1)
        total += float(torch.exp(-crf(emissions, tags, lengths)))
    assert total == pytest.approx(1.0, abs=1e-10)


def test_viterbi_finds_the_best_path_by_exhaustive_search():
    crf = _crf()
    emissions, lengths = _batch([4, 1, 3, 2], seed=3)
    paths = crf.viterbi(emissions, lengths)
    for b, length in enumerate(lengths.tolist()):
        best = max(_all_paths(length), key=lambda path: float(_score(crf, emissions[:length, b], path)))
        assert paths[b] == list(best)


def test_gradcheck_in_float64():
    crf = _crf()
    emissions, lengths = _batch([3, 2])
    emissions.requires_grad_(True)
    tags = torch.tensor([[0, 1], [2, 2], [1, 0]])
    parameters = tuple(p.detach().clone().requires_grad_(True) for p in (crf.transitions, crf.start, crf.end))

    def nll(emissions, transitions, start, end):
        weights = {"transitions": transitions, "start": start, "end": end}
        return torch.func.functional_call(crf, weights, (emissions, tags, lengths))

    assert torch.autograd.gradcheck(nll, (emissions, *parameters))


def test_a_padded_batch_gives_what_each_sentence_gives_alone():
    crf = _crf()
    emissions, lengths = _batch([4, 2, 3])
    tags = torch.randint(0, TAGS, (4, 3))
    together = crf(emissions, tags, lengths)
    for b, length in enumerate(lengths.tolist()):
        alone = crf(emissions[:length, b : b + 1], tags[:length, b : b + 1], lengths[b : b + 1])
        assert float(together[b]) == pytest.approx(float(alone[0]), abs=1e-10)


# ----------------------------------------------------------------------------- tag schemes and constraints
IOB1 = "I-ORG O I-PER O O I-LOC B-LOC I-LOC O I-MISC I-MISC".split()
BIO = "B-ORG O B-PER O O B-LOC B-LOC I-LOC O B-MISC I-MISC".split()
IOBES = "S-ORG O S-PER O O S-LOC B-LOC E-LOC O B-MISC E-MISC".split()


@pytest.mark.parametrize(("source", "tags"), [("iob1", IOB1), ("bio", BIO), ("iobes", IOBES)])
def test_schemes_convert_into_each_other(source, tags):
    assert to_bio(tags) == BIO
    assert convert(tags, "iob1") == IOB1
    assert convert(tags, "iobes") == IOBES


def test_an_inside_tag_that_starts_an_entity_reads_as_its_beginning():
    assert to_bio("O I-PER I-LOC I-LOC".split()) == "O B-PER B-LOC I-LOC".split()


def test_constraints_follow_each_scheme():
    assert allowed_transition("B-PER", "I-PER", "bio") and not allowed_transition("B-PER", "I-LOC", "bio")
    assert not allowed_transition(None, "I-PER", "bio") and allowed_transition("I-PER", None, "bio")
    assert not allowed_transition("B-PER", None, "iobes") and not allowed_transition("B-PER", "O", "iobes")
    assert allowed_transition("I-PER", "E-PER", "iobes") and not allowed_transition("O", "E-PER", "iobes")
    assert allowed_transition("S-PER", "B-LOC", "iobes") and not allowed_transition(None, "I-PER", "iobes")
    assert not allowed_transition(None, "B-PER", "iob1") and allowed_transition("I-PER", "B-PER", "iob1")


def test_the_constrained_crf_never_decodes_a_forbidden_path_and_normalises_over_allowed_ones():
    tags = ["O", "B-PER", "I-PER"]
    allowed = transition_constraints(tags, "bio")
    crf = _crf(allowed, seed=5)
    with torch.no_grad():
        crf.transitions[0, 2] = 10.0  # O -> I-PER, forbidden: its learnt score must not matter
        crf.start[2] = 10.0  # I-PER first, forbidden
    emissions, lengths = _batch([4], seed=6)
    emissions[:, :, 2] += 3.0  # I-PER everywhere would win without the constraints
    path = crf.viterbi(emissions, lengths)[0]
    names = [tags[i] for i in path]
    assert all(allowed_transition(a, b, "bio") for a, b in zip([None, *names], [*names, None]))
    legal = [p for p in _all_paths(4)
             if all(allowed_transition(a, b, "bio") for a, b in zip([None, *(tags[i] for i in p)], [*(tags[i] for i in p), None]))]
    best = max(legal, key=lambda p: float(_score(crf, emissions[:, 0], p)))
    assert path == list(best)
    total = sum(float(torch.exp(-crf(emissions, torch.tensor(p).unsqueeze(1), lengths))) for p in legal)
    assert total == pytest.approx(1.0, abs=1e-6)  # forbidden paths hold (almost exactly) no probability
    assert FORBIDDEN < -1e3
