"""The one beam search (``rnnkit.models.search``) against what it promises: hand-traced results at beams 2 and 3 on a
bigram model whose probabilities are written here (finished hypotheses and length penalties interacting), a
readable reference search at a realistic width, exhaustive search on a language model, greedy = beam 1, and a
batch of inputs = each input alone; and sampling (``rnnkit.models.sample``) beside it. The encoder–decoder's
search is tested in test_seq2seq.py."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from rnnkit.models import LanguageModel, LanguageModelConfig, beam_search, sample
from rnnkit.models.search import DecodingConfig, last_steps

EOS, A, B, BOS = 0, 1, 2, 3
TABLE = {BOS: {A: 0.5, B: 0.4, EOS: 0.1}, A: {EOS: 0.6, B: 0.3, A: 0.1}, B: {A: 0.5, B: 0.3, EOS: 0.2}}


class Bigram(torch.nn.Module):
    """A model whose next-token distribution is a fixed table row of the current token, on the model contract."""

    def __init__(self, probabilities: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("log_table", probabilities.log())

    def forward(self, inputs, state=None, *, lengths=None, targets=None):
        logits = self.log_table[inputs]  # (T, B, V): log P(next | this token)
        return logits, None, (last_steps(inputs.unsqueeze(-1), lengths),)  # the state: each row's last token

    def reorder_state(self, state, rows, same_inputs=False):
        return (state[0].index_select(0, rows),)


def table_model(table: dict[int, dict[int, float]], size: int) -> Bigram:
    probabilities = torch.full((size, size), 1e-30, dtype=torch.float64)
    for token, row in table.items():
        for following, p in row.items():
            probabilities[token, following] = p
    return Bigram(probabilities)


def search(model, beam: int, limit: int, penalty, n_best: int, inputs=None):
    inputs = torch.tensor([[0]]) if inputs is None else inputs  # the source is not read: <bos> starts every output
    return beam_search(model, inputs, beam_size=beam, max_lengths=torch.full((inputs.shape[1],), limit), begin=BOS,
                       end=EOS, never=(BOS,), penalty=penalty, n_best=n_best)


def ln(*probabilities: float) -> float:
    return sum(math.log(p) for p in probabilities)


# ----------------------------------------------------------------------------- hand-traced
def test_beam_2_traced_by_hand():
    """Beam 2, at most 3 tokens, no penalty. Each step looks at the best 4 extensions:
    step 1: a -0.69, b -0.92, <eos> -2.30 (3rd: outside the first 2, so it neither finishes nor continues)
    step 2: a <eos> -1.20 (1st: finishes "a"), b a -1.61, a b -1.90, b b -2.12; b a and a b continue
    step 3 (the limit): b a <eos> -2.12 and a b a -2.59 are the first 2: "b a" ends, "a b a" is cut at the limit.
    """
    found = search(table_model(TABLE, 4), beam=2, limit=3, penalty=lambda log_prob, length: log_prob, n_best=5)[0]
    assert [h.tokens for h in found] == [[A], [B, A], [A, B, A]]
    assert [h.log_prob for h in found] == pytest.approx([ln(.5, .6), ln(.4, .5, .6), ln(.5, .3, .5)])
    assert [h.score for h in found] == [h.log_prob for h in found]


def test_beam_3_finished_hypotheses_and_the_length_penalty():
    """Beam 3 looks at the best 6. Step 1: <eos> is 3rd, so the empty output finishes (-2.30, 1 token).
    Step 2: "a <eos>" finishes (-1.20); "b <eos>" (-2.53) is 5th, outside the first 3: dropped; b a, a b, b b go on.
    Step 3 (the limit): b a <eos> -2.12, a b a -2.59, b a b -2.81 finish. Five in all, ranked by the penalty:
    with none the empty output is 3rd; per token (average: -2.30 / 1) it is last."""
    model = table_model(TABLE, 4)
    none = search(model, beam=3, limit=3, penalty=lambda log_prob, length: log_prob, n_best=10)[0]
    assert [h.tokens for h in none] == [[A], [B, A], [], [A, B, A], [B, A, B]]
    assert [h.log_prob for h in none] == pytest.approx([ln(.5, .6), ln(.4, .5, .6), ln(.1), ln(.5, .3, .5),
                                                        ln(.4, .5, .3)])
    average = DecodingConfig(length_penalty="average")
    ranked = search(model, beam=3, limit=3, penalty=average.penalised, n_best=10)[0]
    assert [h.tokens for h in ranked] == [[A], [B, A], [A, B, A], [B, A, B], []]
    assert [h.score for h in ranked] == pytest.approx([ln(.5, .6) / 2, ln(.4, .5, .6) / 3, ln(.5, .3, .5) / 3,
                                                       ln(.4, .5, .3) / 3, ln(.1) / 1])
    assert [h.tokens for h in search(model, 3, 3, average.penalised, n_best=2)[0]] == [[A], [B, A]]


def test_an_input_is_done_once_beam_hypotheses_have_finished():
    """Beam 2 where "a <eos>" and "b <eos>" are the two best at step 2: both finish and the search stops there,
    although longer outputs would be allowed."""
    table = {BOS: {A: 0.5, B: 0.5}, A: {EOS: 0.9, A: 0.1}, B: {EOS: 0.8, B: 0.2}}
    found = search(table_model(table, 4), beam=2, limit=10, penalty=lambda log_prob, length: log_prob, n_best=5)[0]
    assert [h.tokens for h in found] == [[A], [B]]
    assert [h.log_prob for h in found] == pytest.approx([ln(.5, .9), ln(.5, .8)])


# ----------------------------------------------------------------------------- against a readable reference
def reference_beam_search(table: torch.Tensor, beam: int, limit: int, penalty) -> list[tuple[float, list[int]]]:
    """The search as the module docstring states it, one input, in plain Python."""
    live, finished = [((), 0.0)], []
    for t in range(limit):
        candidates = sorted(((score + math.log(float(table[sequence[-1] if sequence else BOS, token])), sequence + (token,))
                             for sequence, score in live for token in range(table.shape[0]) if token != BOS),
                            key=lambda candidate: -candidate[0])[: 2 * beam]
        for score, sequence in candidates[:beam]:
            if sequence[-1] == EOS or t + 1 == limit:
                written = list(sequence[:-1] if sequence[-1] == EOS else sequence)
                finished.append((penalty(score, t + 1), written))
        if len(finished) >= beam or t + 1 == limit:
            break
        live = [(sequence, score) for score, sequence in candidates if sequence[-1] != EOS][:beam]
    return sorted(finished, key=lambda found: -found[0])


@pytest.mark.parametrize("penalty", ["none", "average", "gnmt"])
def test_a_realistic_beam_prunes_as_the_reference_does(penalty):
    """Beam 5 over 12 tokens, 8 steps, on 6 random tables at once (one per input, through the batch)."""
    generator = torch.Generator().manual_seed(0)
    size, config = 12, DecodingConfig(length_penalty=penalty, alpha=1.0)
    tables = [torch.softmax(3 * torch.randn(size, size, generator=generator, dtype=torch.float64), -1)
              for _ in range(6)]
    for table in tables:
        table[:, BOS] = 1e-30  # never written
        table /= table.sum(-1, keepdim=True)  # the log-probabilities the search computes (log-softmax)

    class Tables(Bigram):  # input b reads table b (its rows stacked as one (B * V, V) table); the state says which
        def forward(self, inputs, state=None, *, lengths=None, targets=None):
            which = torch.arange(inputs.shape[1]) if state is None else state[1]
            logits, _, (last,) = super().forward(inputs + which * size, lengths=lengths)
            return logits, None, (last - which * size, which)

        def reorder_state(self, state, rows, same_inputs=False):
            return tuple(part.index_select(0, rows) for part in state)

    model = Tables(torch.cat(tables))
    found = beam_search(model, torch.zeros(1, 6, dtype=torch.long), beam_size=5, max_lengths=torch.full((6,), 8),
                        begin=BOS, end=EOS, never=(BOS,), penalty=config.penalised, n_best=20)
    for table, hypotheses in zip(tables, found):
        expected = reference_beam_search(table, 5, 8, config.penalised)
        assert [h.score for h in hypotheses] == pytest.approx([score for score, _ in expected], abs=1e-5)
        # A bigram model gives two sequences of the same bigrams in another order the same score exactly: such
        # ties may come in either order.
        assert sorted((round(h.score, 4), h.tokens) for h in hypotheses) == sorted(
            (round(score, 4), tokens) for score, tokens in expected)


# ----------------------------------------------------------------------------- a language model
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


def continue_prime(model, beam: int, prime: torch.Tensor = PRIME, length: int = LENGTH) -> list[int]:
    return beam_search(model, prime.view(-1, 1), beam_size=beam, max_lengths=torch.tensor([length]))[0][0].tokens


def test_a_beam_of_one_is_greedy_decoding(model):
    assert continue_prime(model, 1) == sample(model, PRIME, LENGTH, temperature=0)


def test_a_wide_beam_finds_the_best_continuation_that_exhaustive_search_finds(model):
    # Keeping V^(L-1) beams keeps every prefix, so the search is exact.
    assert continue_prime(model, VOCABULARY ** (LENGTH - 1)) == _best_by_exhaustive_search(model)


def test_primes_of_different_lengths_in_one_batch_continue_as_each_alone(model):
    primes = [torch.tensor([1, 0, 2, 2]), torch.tensor([2]), torch.tensor([0, 1])]
    padded = torch.nn.utils.rnn.pad_sequence(primes)  # (4, 3)
    lengths = torch.tensor([len(prime) for prime in primes])
    together = beam_search(model, padded, lengths=lengths, beam_size=3, max_lengths=torch.full((3,), 5), n_best=3)
    for prime, hypotheses in zip(primes, together):
        alone = beam_search(model, prime.view(-1, 1), beam_size=3, max_lengths=torch.tensor([5]), n_best=3)[0]
        assert [h.tokens for h in hypotheses] == [h.tokens for h in alone]
        assert [h.score for h in hypotheses] == pytest.approx([h.score for h in alone], abs=1e-5)


# ----------------------------------------------------------------------------- sampling, beside search
def test_top_1_sampling_is_greedy_and_sampling_follows_the_seed(model):
    greedy = sample(model, PRIME, LENGTH, temperature=0)
    top_1 = sample(model, PRIME, LENGTH, temperature=1.0, top_k=1, generator=torch.Generator().manual_seed(5))
    assert top_1 == greedy
    draws = [sample(model, PRIME, 12, generator=torch.Generator().manual_seed(seed)) for seed in (1, 1, 2)]
    assert draws[0] == draws[1] and draws[0] != draws[2]
