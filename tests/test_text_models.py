"""The text models: pooling and the classifier read only the valid steps (a padded batch gives what each
sentence gives alone), the character encoder, word dropout, the tagger's two outputs, and the transfer of a
language model's weights."""

from __future__ import annotations

import pytest
import torch

from rnnkit.data.token_features import TokenFeatures, pad_sentences
from rnnkit.data.vocabulary import TokenVocabulary
from rnnkit.models.pooling import POOLINGS, Pooling
from rnnkit.models.tagger import SequenceTagger, TaggerConfig
from rnnkit.models.text_classifier import TextClassifier, TextClassifierConfig
from rnnkit.models.word_features import WordFeatures, WordFeaturesConfig

WORDS = TokenVocabulary(("<pad>", "<unk>", *"a b c d e f".split()))
CHARACTERS = TokenVocabulary(("<pad>", "<unk>", *"abcdef"))
SENTENCES = [["a", "b", "c", "d"], ["e"], ["f", "a", "b"]]


def _batch(case: bool = True, characters: bool = True):
    features = TokenFeatures(WORDS, False, CHARACTERS if characters else None, case)
    encoded = [features.encode(sentence) for sentence in SENTENCES]
    return encoded, *pad_sentences(encoded)


@pytest.mark.parametrize("mode", POOLINGS)
def test_pooling_ignores_the_padding(mode):
    torch.manual_seed(0)
    pooling = Pooling(mode, width=5)
    hidden = torch.randn(4, 3, 5)
    lengths = torch.tensor([4, 1, 3])
    final = torch.randn(3, 5)
    together = pooling(hidden, lengths, final)
    garbage = hidden.clone()
    garbage[1:, 1] = 1e3  # what sits in the padding must not matter
    garbage[3:, 2] = -1e3
    assert torch.allclose(pooling(garbage, lengths, final), together)
    for b, length in enumerate(lengths.tolist()):
        alone = pooling(hidden[:length, b : b + 1], None, final[b : b + 1])
        assert torch.allclose(together[b], alone[0], atol=1e-6)
    if mode == "mean":
        assert torch.allclose(together[2], hidden[:3, 2].mean(0))
    if mode == "max":
        assert torch.allclose(together[0], hidden[:, 0].amax(0))


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize(("cell", "merge_mode"), [("lstm", "concat"), ("gru", "sum"), ("janet", "none")])
def test_the_classifier_gives_a_padded_batch_what_it_gives_each_sentence_alone(pooling, cell, merge_mode):
    torch.manual_seed(0)
    config = TextClassifierConfig(cell=cell, hidden_size=6, bidirectional=True, merge_mode=merge_mode, num_layers=2,
                                  embedding_size=5, char_hidden_size=3, char_embedding_size=4, case_embedding_size=2,
                                  pooling=pooling)
    model = TextClassifier(len(WORDS), 3, config, len(CHARACTERS)).eval()
    encoded, inputs, lengths = _batch()
    together, _, _ = model(inputs, lengths=lengths)
    for b, sentence in enumerate(encoded):
        alone, _, _ = model(sentence.unsqueeze(1), lengths=torch.tensor([sentence.shape[0]]))
        assert torch.allclose(together[b], alone[0], atol=1e-5), (b, together[b], alone[0])


def test_the_classifier_loss_is_the_mean_cross_entropy_of_its_logits():
    torch.manual_seed(0)
    model = TextClassifier(len(WORDS), 2, TextClassifierConfig(hidden_size=4, embedding_size=3)).eval()
    _, inputs, lengths = _batch(case=False, characters=False)
    targets = torch.tensor([1, 0, 1])
    logits, loss, _ = model(inputs, lengths=lengths, targets=targets)
    assert float(loss.detach()) == pytest.approx(float(torch.nn.functional.cross_entropy(logits.detach(), targets)), abs=1e-6)


def test_characters_give_unknown_words_different_features_and_padding_none():
    torch.manual_seed(0)
    config = WordFeaturesConfig(embedding_size=4, char_hidden_size=3, char_embedding_size=2)
    features = WordFeatures(len(WORDS), config, len(CHARACTERS)).eval()
    encoder = TokenFeatures(WORDS, False, CHARACTERS)
    out = features(pad_sentences([encoder.encode(["ab", "fed"])])[0])  # both words <unk>, spelled differently
    assert out.shape == (2, 1, 4 + 2 * 3)
    assert torch.equal(out[0, 0, :4], out[1, 0, :4]) and not torch.allclose(out[0, 0, 4:], out[1, 0, 4:])
    padded = features(pad_sentences([encoder.encode(["ab", "fed"]), encoder.encode(["a"])])[0])
    assert torch.equal(padded[1, 1, 4:], torch.zeros(6))  # a padded token has no characters to read
    assert torch.allclose(padded[:, 0], out[:, 0])


def test_word_dropout_reads_words_as_unk_in_training_only():
    config = WordFeaturesConfig(embedding_size=4, word_dropout=0.5)
    features = WordFeatures(len(WORDS), config)
    inputs = torch.full((200, 1, 1), 3)
    torch.manual_seed(0)
    dropped = (features(inputs) == features.embedding.weight[1]).all(-1).float().mean()
    assert 0.4 < float(dropped) < 0.6
    assert torch.equal(features.eval()(inputs)[:, 0], features.embedding.weight[3].expand(200, 4))


@pytest.mark.parametrize("output", ["crf", "softmax"])
def test_the_tagger_decodes_a_padded_batch_as_each_sentence_alone(output):
    torch.manual_seed(0)
    config = TaggerConfig(hidden_size=5, bidirectional=True, embedding_size=4, char_hidden_size=2, output=output)
    model = SequenceTagger(len(WORDS), 4, config, len(CHARACTERS)).eval()
    encoded, inputs, lengths = _batch(case=False)
    emissions, _, _ = model(inputs, lengths=lengths)
    paths = model.decode(emissions, lengths)
    assert [len(path) for path in paths] == [4, 1, 3]
    for b, sentence in enumerate(encoded):
        alone, _, _ = model(sentence.unsqueeze(1), lengths=torch.tensor([sentence.shape[0]]))
        assert model.decode(alone, torch.tensor([sentence.shape[0]]))[0] == paths[b]
    targets = torch.zeros(4, 3, dtype=torch.long)
    _, loss, _ = model(inputs, lengths=lengths, targets=targets)
    if output == "softmax":  # per-token cross-entropy over the real tokens only
        real = torch.cat([emissions[:length, b] for b, length in enumerate(lengths.tolist())])
        expected = torch.nn.functional.cross_entropy(real, torch.zeros(8, dtype=torch.long))
    else:  # the mean over sentences of the CRF's negative log-likelihood
        expected = model.crf(emissions, targets, lengths).mean()
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), abs=1e-5)
