"""The encoder–decoder and its search: attention masks padding, batching changes nothing, the fast teacher-forced
path equals stepping, the model contract's three calls agree (teacher forcing = reading the source then continuing),
beam search with beam 1 is greedy decoding written out here, a wide beam finds the best sequence by exhaustive
search, and the length penalty ranks as its formula says."""

from __future__ import annotations

import itertools

import pytest
import torch

from rnnkit.data.pair_batches import PairBatches, cut_by_tokens
from rnnkit.models.attention import Attention
from rnnkit.models.search import DecodingConfig, beam_search
from rnnkit.models.seq2seq import EncoderDecoder, Seq2SeqConfig, attention_of

PAD, UNK, BOS, EOS = 0, 1, 2, 3
ARCHITECTURES = [("sutskever", "additive", False), ("cho", "additive", False), ("attention", "additive", True),
                 ("attention", "dot", False), ("attention", "general", True)]


def model_of(architecture="attention", score="additive", input_feeding=True, cell="gru", bidirectional=True,
             source_vocab=9, target_vocab=8, hidden=8, seed=0, dtype=torch.float32) -> EncoderDecoder:
    torch.manual_seed(seed)
    config = Seq2SeqConfig(cell=cell, hidden_size=hidden, embedding_size=6, bidirectional=bidirectional,
                           architecture=architecture, score=score, input_feeding=input_feeding, num_layers=2)
    config.validate()
    return EncoderDecoder(source_vocab, target_vocab, config).to(dtype).eval()


def padded(sentences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(sentence) for sentence in sentences])
    source = torch.zeros(int(lengths.max()), len(sentences), dtype=torch.long)
    for column, sentence in enumerate(sentences):
        source[: len(sentence), column] = torch.tensor(sentence)
    return source, lengths


SOURCES = [[4, 5, 6, 7, 8], [5, 4], [8, 8, 6]]


def search(model, source, lengths, config: DecodingConfig, n_best: int = 1):
    """What the translate task searches: from <bos> to <eos>, never writing <pad> or <bos>."""
    return beam_search(model, source, lengths=lengths, beam_size=config.beam_size, max_lengths=config.max_lengths(lengths),
                       begin=BOS, end=EOS, never=(PAD, BOS), penalty=config.penalised, n_best=n_best,
                       attention=attention_of)


def first_state(model, source, lengths):
    """The decoder's state before the first target word: what reading the source returns."""
    return model(source, lengths=lengths)[2]


# ----------------------------------------------------------------------------- attention
@pytest.mark.parametrize("score", ["additive", "dot", "general"])
def test_attention_weights_sum_to_one_over_real_positions_and_are_zero_on_padding(score):
    torch.manual_seed(0)
    attention = Attention(score, 4, 4)
    memory = torch.randn(5, 3, 4)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False], [True, True, True, False, False]])
    context, weights = attention(torch.randn(2, 3, 4), attention.prepare(memory), memory, mask)
    assert weights.shape == (2, 3, 5) and context.shape == (2, 3, 4)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3))
    assert torch.all(weights[:, 1, 2:] == 0) and torch.all(weights[:, 2, 3:] == 0)
    assert torch.all(weights[:, 1, :2] > 0)
    # padding's memory never reaches the context
    changed = memory.clone()
    changed[2:, 1] = 100.0
    torch.testing.assert_close(attention(torch.zeros(2, 3, 4), attention.prepare(changed), changed, mask)[0][:, 1],
                               attention(torch.zeros(2, 3, 4), attention.prepare(memory), memory, mask)[0][:, 1])


@pytest.mark.parametrize("score", ["additive", "dot", "general"])
def test_attention_gradcheck(score):
    torch.manual_seed(0)
    attention = Attention(score, 3, 3).double()
    mask = torch.tensor([[True, True, False], [True, True, True]])

    def run(query, memory):
        return attention(query, attention.prepare(memory), memory, mask)

    assert torch.autograd.gradcheck(run, (torch.randn(2, 2, 3, dtype=torch.float64, requires_grad=True),
                                          torch.randn(3, 2, 3, dtype=torch.float64, requires_grad=True)))


# ----------------------------------------------------------------------------- the decoder's two paths
@pytest.mark.parametrize("architecture,score,feeding", ARCHITECTURES)
def test_teacher_forced_fast_path_equals_stepping(architecture, score, feeding):
    model = model_of(architecture, score, feeding)
    source, lengths = padded(SOURCES)
    previous = torch.tensor([[BOS, BOS, BOS], [4, 5, 6], [5, 7, 4], [6, 4, 4]])
    with torch.no_grad():
        fast, fast_weights, _ = model.decoder.teacher_forced(previous, first_state(model, source, lengths))
        stepped, stepped_weights, _ = model.decoder.sampled(previous, first_state(model, source, lengths), 1.0)
    torch.testing.assert_close(fast, stepped)
    if architecture == "attention":
        torch.testing.assert_close(fast_weights, stepped_weights)


@pytest.mark.parametrize("architecture,score,feeding", ARCHITECTURES)
def test_a_batch_gives_what_each_sentence_gives_alone(architecture, score, feeding):
    model = model_of(architecture, score, feeding, cell="lstm")
    source, lengths = padded(SOURCES)
    targets = torch.tensor([[BOS, BOS, BOS], [4, 5, 6], [5, EOS, 4], [EOS, PAD, EOS]])
    config = DecodingConfig(beam_size=3, max_length_extra=4)
    with torch.no_grad():
        logits, _, _ = model(source, lengths=lengths, targets=targets)
        together = search(model, source, lengths, config, n_best=3)
        for column, sentence in enumerate(SOURCES):
            alone_source, alone_lengths = padded([sentence])
            length = int((targets[:, column] != PAD).sum())
            alone_logits, _, _ = model(alone_source, lengths=alone_lengths, targets=targets[:length, column : column + 1])
            torch.testing.assert_close(logits[: length - 1, column], alone_logits[:, 0])
            alone = search(model, alone_source, alone_lengths, config, n_best=3)[0]
            assert [h.tokens for h in together[column]] == [h.tokens for h in alone]
            assert [h.score for h in together[column]] == pytest.approx([h.score for h in alone], abs=1e-5)


@pytest.mark.parametrize("architecture,score,feeding", ARCHITECTURES)
def test_teacher_forcing_is_reading_the_source_then_continuing(architecture, score, feeding):
    """model(source, targets=y) = model(source) then model(y_0 .. y_{T-1}, state); and continuing word by word from
    the returned states gives the same logits and the same final state."""
    model = model_of(architecture, score, feeding)
    source, lengths = padded(SOURCES)
    targets = torch.tensor([[BOS, BOS, BOS], [4, 5, 6], [5, EOS, 4], [EOS, PAD, EOS]])
    with torch.no_grad():
        forced, loss, forced_state = model(source, lengths=lengths, targets=targets)
        memory, none, state = model(source, lengths=lengths)
        assert none is None and memory.shape[:2] == source.shape
        continued, continued_loss, _ = model(targets[:-1], state, targets=targets[1:])
        stepped = []
        for word in targets[:-1]:
            logits, _, state = model(word.unsqueeze(0), state)
            stepped.append(logits[0])
    torch.testing.assert_close(continued, forced)
    torch.testing.assert_close(continued_loss, loss)
    torch.testing.assert_close(torch.stack(stepped), forced, atol=1e-5, rtol=1e-5)
    for part, forced_part in zip(state.rnn, forced_state.rnn):
        torch.testing.assert_close(part, forced_part, atol=1e-5, rtol=1e-5)


def test_scheduled_sampling_reads_its_own_guesses():
    model = model_of("attention")
    source, lengths = padded(SOURCES)
    previous = torch.tensor([[BOS, BOS, BOS], [4, 5, 6], [5, 7, 4]])
    with torch.no_grad():
        forced, _, _ = model.decoder.sampled(previous, first_state(model, source, lengths), 1.0)
        guessed, _, _ = model.decoder.sampled(previous, first_state(model, source, lengths), 0.0)
        # with ratio 0, step 2 reads step 1's argmax: feed those tokens explicitly and compare
        own = torch.stack([previous[0], forced[0].argmax(-1)])
        explicit, _, _ = model.decoder.sampled(own, first_state(model, source, lengths), 1.0)
    torch.testing.assert_close(guessed[:2], explicit)
    torch.testing.assert_close(guessed[0], forced[0])


# ----------------------------------------------------------------------------- search
@torch.no_grad()
def greedy(model, sentence: list[int], limit: int) -> tuple[list[int], float, torch.Tensor | None]:
    """The best next word at every step until <eos> or the limit, through the model contract, one sentence:
    the words written, log P of them (and of <eos> if it ended), and each step's attention weights."""
    source, lengths = padded([sentence])
    _, _, state = model(source, lengths=lengths)
    token, written, log_prob, weights = BOS, [], 0.0, []
    for _ in range(limit):
        logits, _, state = model(torch.tensor([[token]]), state)
        log_probs = torch.log_softmax(logits[0, 0].float(), -1)
        log_probs[[PAD, BOS]] = float("-inf")
        token = int(log_probs.argmax())
        log_prob += float(log_probs[token])
        weights.append(state.attention)
        if token == EOS:
            break
        written.append(token)
    return written, log_prob, None if weights[0] is None else torch.cat(weights)


@pytest.mark.parametrize("architecture,score,feeding", ARCHITECTURES)
def test_beam_of_one_is_greedy(architecture, score, feeding):
    model = model_of(architecture, score, feeding, seed=3)
    source, lengths = padded(SOURCES)
    config = DecodingConfig(beam_size=1, max_length_extra=6, length_penalty="gnmt")
    limits = config.max_lengths(lengths).tolist()
    for sentence, limit, [by_beam] in zip(SOURCES, limits, search(model, source, lengths, config)):
        tokens, log_prob, attention = greedy(model, sentence, limit)
        assert by_beam.tokens == tokens
        assert by_beam.log_prob == pytest.approx(log_prob, abs=1e-5)
        if architecture == "attention":  # the batch's rows are as wide as its longest source; the padding gets 0
            torch.testing.assert_close(by_beam.attention[:, : len(sentence)], attention)
            assert not by_beam.attention[:, len(sentence) :].any()


def sequence_log_prob(model, source, lengths, tokens: list[int], ended: bool) -> float:
    """log P(tokens [, <eos>]) by teacher forcing the tiny model."""
    previous = torch.tensor([BOS, *tokens] if ended else [BOS, *tokens[:-1]]).unsqueeze(1)
    following = [*tokens, EOS] if ended else tokens
    with torch.no_grad():
        logits, _, _ = model(previous, first_state(model, source, lengths))  # continuing: the same as teacher forcing
    log_probs = torch.log_softmax(logits.float()[:, 0], dim=-1)
    log_probs[:, [PAD, BOS]] = float("-inf")
    return float(sum(log_probs[step, token] for step, token in enumerate(following)))


@pytest.mark.parametrize("penalty", ["none", "average", "gnmt"])
def test_a_wide_beam_finds_the_best_sequence_of_exhaustive_search(penalty):
    """Target vocabulary {<pad>, <unk>, <bos>, <eos>, 4}: writable words <unk>, 4 and <eos>; at most 3 steps.
    Every sequence: up to 2 words then <eos>, or 3 words cut at the limit: 1 + 2 + 4 + 8 = 15."""
    model = model_of("attention", target_vocab=5, seed=1)
    source, lengths = padded([[4, 6, 5]])
    config = DecodingConfig(beam_size=60, length_penalty=penalty, alpha=1.0, max_length_ratio=0.0, max_length_extra=3)
    words = [UNK, 4]
    candidates = []
    for size in range(0, 3):
        for tokens in itertools.product(words, repeat=size):
            candidates.append((list(tokens), True))
    candidates += [(list(tokens), False) for tokens in itertools.product(words, repeat=3)]
    scored = sorted(((config.penalised(sequence_log_prob(model, source, lengths, tokens, ended),
                                       len(tokens) + ended), tokens) for tokens, ended in candidates), reverse=True)
    found = search(model, source, lengths, config, n_best=len(candidates))[0]
    assert len(found) == len(candidates) == 15  # every sequence, each once
    assert found[0].tokens == scored[0][1]
    assert [h.score for h in found] == pytest.approx([score for score, _ in scored], abs=1e-4)


def test_the_length_penalty_ranks_as_its_formula_says():
    config = DecodingConfig(length_penalty="gnmt", alpha=0.6)
    assert config.penalised(-6.0, 7) == pytest.approx(-6.0 / ((5 + 7) / 6) ** 0.6)
    assert DecodingConfig(length_penalty="average").penalised(-6.0, 3) == -2.0
    assert DecodingConfig(length_penalty="none").penalised(-6.0, 3) == -6.0
    # a longer hypothesis with a lower log-probability wins under length normalisation only
    short, long = (-2.0, 2), (-3.0, 6)
    assert DecodingConfig(length_penalty="none").penalised(*short) > DecodingConfig(length_penalty="none").penalised(*long)
    assert DecodingConfig(length_penalty="average").penalised(*short) < DecodingConfig(length_penalty="average").penalised(*long)
    # and beam search's n-best list follows the penalised score, not the log-probability
    model = model_of("attention", target_vocab=6, seed=2)
    source, lengths = padded([[4, 5]])
    for penalty in ("none", "average"):
        config = DecodingConfig(beam_size=8, length_penalty=penalty, max_length_extra=4, max_length_ratio=0)
        found = search(model, source, lengths, config, n_best=8)[0]
        scores = [h.score for h in found]
        assert scores == sorted(scores, reverse=True)
        for hypothesis in found:
            length = len(hypothesis.tokens) + (len(hypothesis.tokens) < 4)  # ended with <eos> before the limit
            assert hypothesis.score == pytest.approx(config.penalised(hypothesis.log_prob, length))


def test_translations_respect_the_length_limit():
    model = model_of("sutskever", seed=4)
    source, lengths = padded(SOURCES)
    config = DecodingConfig(beam_size=2, max_length_ratio=0.5, max_length_extra=1)
    limits = config.max_lengths(lengths)
    for hypotheses, limit in zip(search(model, source, lengths, config, n_best=2), limits):
        assert all(len(h.tokens) <= int(limit) for h in hypotheses)
    for [hypothesis], limit in zip(search(model, source, lengths, DecodingConfig(beam_size=1, max_length_ratio=0.5,
                                                                                max_length_extra=1)), limits):
        assert len(hypothesis.tokens) <= int(limit)


# ----------------------------------------------------------------------------- the loss
def test_loss_is_the_mean_cross_entropy_of_the_real_target_words():
    model = model_of("attention")
    source, lengths = padded(SOURCES[:2])
    targets = torch.tensor([[BOS, BOS], [4, 5], [EOS, EOS], [PAD, PAD]])
    targets[3, 0] = PAD
    logits, loss, _ = model(source, lengths=lengths, targets=targets)
    log_probs = torch.log_softmax(logits, -1)
    expected = -(log_probs[0, 0, 4] + log_probs[1, 0, EOS] + log_probs[0, 1, 5] + log_probs[1, 1, EOS]) / 4
    torch.testing.assert_close(loss, expected)


def test_tied_embeddings_share_one_matrix():
    config = Seq2SeqConfig(hidden_size=6, embedding_size=6, tie_embeddings=True)
    model = EncoderDecoder(5, 7, config)
    assert model.decoder.output.weight is model.decoder.embedding.weight


# ----------------------------------------------------------------------------- batches
def test_batches_are_cut_by_tokens_and_sentences():
    assert cut_by_tokens([2, 2, 3, 3, 9], max_tokens=8, max_sentences=10) == [[0, 1], [2, 3], [4]]
    assert cut_by_tokens([1] * 5, max_tokens=100, max_sentences=2) == [[0, 1], [2, 3], [4]]
    sources = [torch.ones(n, dtype=torch.long) for n in (3, 5, 2, 7, 4, 4, 6, 1)]
    targets = [torch.ones(n + 2, dtype=torch.long) for n in (4, 4, 2, 6, 5, 3, 6, 2)]
    batches = PairBatches(sources, targets, max_tokens=20, max_sentences=3, seed=0)
    seen = []
    for _ in range(batches.batches_per_epoch):
        batch = batches.next_batch()
        assert batch.size <= 3 and batch.size * max(batch.inputs.shape[0], batch.targets.shape[0]) <= 20
        seen += [int(length) for length in batch.lengths]
    assert sorted(seen) == sorted(len(source) for source in sources) and batches.epoch == 1
