"""The model contract: ``forward(inputs, state=None, *, lengths=None, targets=None, **extras) -> (outputs, loss,
state)``, held by every model class (one parametrized test over all of them), and the losses computed again by hand.

With ``lengths`` a padded batch gives what each sequence gives alone, and padded steps count in no loss.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import pytest
import torch
import torch.nn.functional as F

from rnnkit.models import LanguageModel, LanguageModelConfig, RecurrentConfig, SequenceModel
from rnnkit.models.forecaster import Forecaster, ForecasterConfig
from rnnkit.models.next_frame import NextFrameConfig, NextFrameModel
from rnnkit.models.seq2seq import EncoderDecoder, Seq2SeqConfig
from rnnkit.models.tagger import SequenceTagger, TaggerConfig
from rnnkit.models.text_classifier import TextClassifier, TextClassifierConfig
from rnnkit.models.acoustic_model import AcousticModel, AcousticModelConfig
from rnnkit.models.hred import HierarchicalEncoder
from rnnkit.models.recommender import Recommender, RecommenderConfig
from rnnkit.models.transformer_seq2seq import TransformerEncoderDecoder
from rnnkit.models.captioner import CaptionModelConfig, ShowAttendTell

T, B = 7, 3
LENGTHS = torch.tensor([7, 3, 5])


def _alone(model, inputs: torch.Tensor, index: int, length: int, **kwargs):
    """The model on sequence ``index`` alone, cut to its length."""
    return model(inputs[:length, index : index + 1], **kwargs)


@pytest.mark.parametrize("cell", ["lstm", "gru", "janet"])
def test_many_to_one_with_lengths_reads_each_sequence_alone(cell):
    torch.manual_seed(0)
    config = RecurrentConfig(cell=cell, hidden_size=6, num_layers=2, bidirectional=True)
    model = SequenceModel(4, 3, config).eval()
    inputs = torch.randn(T, B, 4)
    padded = inputs.clone()
    padded[3:, 1] = 100.0  # padding that would change the result if it were read
    targets = torch.tensor([2, 0, 1])
    outputs, loss, state = model(padded, lengths=LENGTHS, targets=targets)
    for index, length in enumerate(LENGTHS.tolist()):
        alone, _, alone_state = _alone(model, inputs, index, length)
        torch.testing.assert_close(outputs[index : index + 1], alone, atol=1e-5, rtol=1e-5)
        for part, alone_part in zip(state, alone_state):
            torch.testing.assert_close(part[:, index : index + 1], alone_part, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(loss, F.cross_entropy(outputs, targets))


def test_many_to_many_with_lengths_leaves_padding_out_of_its_loss():
    torch.manual_seed(0)
    model = SequenceModel(5, 4, RecurrentConfig(cell="gru", hidden_size=6), every_step=True, token_inputs=True).eval()
    tokens = torch.randint(0, 5, (T, B))
    targets = torch.randint(0, 4, (T, B))
    garbage = targets.clone()
    garbage[3:, 1] = 0  # targets past a length must not count
    outputs, loss, _ = model(tokens, lengths=LENGTHS, targets=garbage)
    assert outputs.shape == (T, B, 4)
    real = [(t, b) for b, length in enumerate(LENGTHS.tolist()) for t in range(length)]
    expected = torch.stack([F.cross_entropy(outputs[t, b], targets[t, b]) for t, b in real]).mean()
    torch.testing.assert_close(loss, expected)
    alone, _, _ = _alone(model, tokens, 1, 3)
    torch.testing.assert_close(outputs[:3, 1:2], alone, atol=1e-5, rtol=1e-5)
    assert (outputs[3:, 1] == model.head.bias).all()  # past its length the core outputs zero


def test_a_regression_model_owns_its_squared_error():
    torch.manual_seed(0)
    model = SequenceModel(2, 1, RecurrentConfig(cell="lstm", hidden_size=4), loss="mse")
    inputs, targets = torch.randn(T, B, 2), torch.randn(B)
    outputs, loss, _ = model(inputs, targets=targets)
    torch.testing.assert_close(loss, ((outputs.squeeze(-1) - targets) ** 2).mean())
    assert model(inputs)[1] is None  # no targets, no loss
    with pytest.raises(ValueError, match=r"loss: expected one of \['cross_entropy', 'mse'\], got 'hinge'"):
        SequenceModel(2, 1, RecurrentConfig(), loss="hinge")


def test_the_language_model_carries_its_state_and_owns_its_loss():
    torch.manual_seed(0)
    model = LanguageModel(11, LanguageModelConfig(cell="lstm", hidden_size=8, embedding_size=5)).eval()
    tokens, targets = torch.randint(0, 11, (T, B)), torch.randint(0, 11, (T, B))
    logits, loss, state = model(tokens, targets=targets)
    torch.testing.assert_close(loss, F.cross_entropy(logits.reshape(-1, 11), targets.reshape(-1)))
    first, _, carried = model(tokens[:4])
    second, _, _ = model(tokens[4:], carried)
    torch.testing.assert_close(torch.cat([first, second]), logits, atol=1e-5, rtol=1e-5)  # carrying = one sequence
    _, masked, _ = model(tokens, lengths=LENGTHS, targets=targets)
    real = [(t, b) for b, length in enumerate(LENGTHS.tolist()) for t in range(length)]
    padded_logits, _, _ = model(tokens, lengths=LENGTHS)
    expected = torch.stack([F.cross_entropy(padded_logits[t, b], targets[t, b]) for t, b in real]).mean()
    torch.testing.assert_close(masked, expected)


# ----------------------------------------------------------------------------- every model, one contract
@dataclass
class Case:
    """A model and a padded batch for it. ``alone(b)`` is sequence b's own batch (inputs, lengths, targets, extras);
    ``row(outputs, b)`` what of the batch's outputs is sequence b's, to compare with its own outputs."""

    model: torch.nn.Module
    inputs: torch.Tensor
    lengths: torch.Tensor | None
    targets: torch.Tensor
    extras: dict = field(default_factory=dict)
    per_step: bool = True  # outputs (T, B, ...) aligned with the inputs; else one per sequence (B, ...)

    def alone(self, b: int):
        length = self.inputs.shape[0] if self.lengths is None else int(self.lengths[b])
        targets = self.targets[:length, b : b + 1] if self.per_step else self.targets[b : b + 1]
        extras = {name: value[:, b : b + 1] for name, value in self.extras.items()}
        return self.inputs[:length, b : b + 1], None, targets, extras

    def row(self, outputs: torch.Tensor, b: int) -> torch.Tensor:
        if not self.per_step:
            return outputs[b : b + 1]
        length = outputs.shape[0] if self.lengths is None else int(self.lengths[b])
        return outputs[:length, b : b + 1]


def _garbage(inputs: torch.Tensor, lengths: torch.Tensor, value) -> torch.Tensor:
    """``inputs`` with every padded step set to ``value``: what a model must not read."""
    padded = inputs.clone()
    for b, length in enumerate(lengths.tolist()):
        padded[length:, b] = value
    return padded


def _word_features(vocabulary: int) -> torch.Tensor:
    return torch.randint(2, vocabulary, (T, B, 1))  # (T, B, 1): word ids only (no case, no characters)


def language_model() -> Case:
    model = LanguageModel(11, LanguageModelConfig(cell="lstm", hidden_size=6, embedding_size=5))
    return Case(model, _garbage(torch.randint(0, 11, (T, B)), LENGTHS, 3), LENGTHS, torch.randint(0, 11, (T, B)))


def sequence_model() -> Case:
    model = SequenceModel(4, 3, RecurrentConfig(cell="gru", hidden_size=6, bidirectional=True))
    return Case(model, _garbage(torch.randn(T, B, 4), LENGTHS, 100.0), LENGTHS, torch.randint(0, 3, (B,)),
                per_step=False)


def text_classifier() -> Case:
    config = TextClassifierConfig(cell="lstm", hidden_size=6, embedding_size=5, bidirectional=True, pooling="mean",
                                  char_hidden_size=0, case_embedding_size=0)
    return Case(TextClassifier(9, 3, config), _garbage(_word_features(9), LENGTHS, 4), LENGTHS,
                torch.randint(0, 3, (B,)), per_step=False)


def sequence_tagger() -> Case:
    config = TaggerConfig(cell="gru", hidden_size=6, embedding_size=5, bidirectional=True, char_hidden_size=0,
                          case_embedding_size=0)
    return Case(SequenceTagger(9, 4, config), _garbage(_word_features(9), LENGTHS, 4), LENGTHS,
                torch.randint(0, 4, (T, B)))


def next_frame_model() -> Case:
    frames = torch.rand(T, B, 6).round()
    return Case(NextFrameModel(6, NextFrameConfig(cell="lstm", hidden_size=6, output="chain")),
                _garbage(frames, LENGTHS, 1.0), LENGTHS, torch.rand(T, B, 6).round())


class ForecastCase(Case):
    """Whole windows (every sequence L steps long); forecasts and targets (H, B, ...) follow the horizon."""

    def alone(self, b: int):
        return (self.inputs[:, b : b + 1], None, self.targets[:, b : b + 1],
                {name: value[:, b : b + 1] for name, value in self.extras.items()})

    def row(self, outputs: torch.Tensor, b: int) -> torch.Tensor:
        return outputs[:, b : b + 1]


def forecaster() -> Case:
    config = ForecasterConfig(cell="gru", hidden_size=6, architecture="seq2seq", revin=True, distribution="gaussian")
    model = Forecaster(2, 1, 3, input_len=T, horizon=4, config=config)
    return ForecastCase(model, torch.randn(T, B, 2 + 3), None, torch.randn(4, B, 1),
                        {"future_inputs": torch.randn(4, B, 3)})


class TranslationCase(Case):
    """The encoder–decoder's outputs follow the targets (y_1 .. <eos>), not the source."""

    def alone(self, b: int):
        target_length = int((self.targets[:, b] != 0).sum())
        return (self.inputs[: int(self.lengths[b]), b : b + 1], None, self.targets[:target_length, b : b + 1], {})

    def row(self, outputs: torch.Tensor, b: int) -> torch.Tensor:
        return outputs[: int((self.targets[:, b] != 0).sum()) - 1, b : b + 1]


def encoder_decoder() -> Case:
    config = Seq2SeqConfig(cell="gru", hidden_size=6, embedding_size=5, bidirectional=True, num_layers=2)
    targets = torch.tensor([[2, 2, 2], [5, 6, 7], [4, 3, 5], [3, 0, 6], [0, 0, 3]])  # <bos> ... <eos>, then padding
    return TranslationCase(EncoderDecoder(9, 8, config), _garbage(torch.randint(4, 9, (T, B)), LENGTHS, 5), LENGTHS,
                           targets)


def hierarchical_encoder_decoder() -> Case:
    """HRED: the chat task's encoder–decoder, its source cut into utterances at the markers 4 and 5."""
    config = Seq2SeqConfig(cell="lstm", hidden_size=6, embedding_size=5, bidirectional=True, num_layers=2)
    targets = torch.tensor([[2, 2, 2], [5, 6, 7], [4, 3, 5], [3, 0, 6], [0, 0, 3]])
    model = EncoderDecoder(9, 9, config, encoder=HierarchicalEncoder(9, config, markers=(4, 5)))
    return TranslationCase(model, _garbage(torch.randint(4, 9, (T, B)), LENGTHS, 5), LENGTHS, targets)


def transformer_encoder_decoder() -> Case:
    targets = torch.tensor([[2, 2, 2], [5, 6, 7], [4, 3, 5], [3, 0, 6], [0, 0, 3]])
    model = TransformerEncoderDecoder(9, width=8, heads=2, layers=1, feedforward=16, dropout=0.1)
    return TranslationCase(model, _garbage(torch.randint(4, 9, (T, B)), LENGTHS, 5), LENGTHS, targets)


class AcousticCase(Case):
    """CTC: outputs follow the subsampled steps, and each transcript is its non-blank labels."""

    def alone(self, b: int):
        length, labels = int(self.lengths[b]), int((self.targets[:, b] != 0).sum())
        return self.inputs[:length, b : b + 1], None, self.targets[:labels, b : b + 1], {}

    def row(self, outputs: torch.Tensor, b: int) -> torch.Tensor:
        return outputs[: int(self.model.output_lengths(self.lengths[b : b + 1])), b : b + 1]


def acoustic_model() -> Case:
    config = AcousticModelConfig(cell="lstm", hidden_size=6, bidirectional=True, subsample=2, conv_channels=5)
    targets = torch.tensor([[1, 2, 3], [2, 2, 0], [0, 0, 0]])  # (S, B) label ids, padded with the blank 0
    return AcousticCase(AcousticModel(4, 4, config), _garbage(torch.randn(T, B, 4), LENGTHS, 100.0), LENGTHS, targets)


def recommender() -> Case:
    model = Recommender(9, RecommenderConfig(cell="gru", hidden_size=6, embedding_size=5, loss="sampled_softmax"))
    return Case(model, _garbage(torch.randint(1, 10, (T, B)), LENGTHS, 4), LENGTHS, torch.randint(1, 10, (T, B)))


def self_attentive_recommender() -> Case:
    model = Recommender(9, RecommenderConfig(architecture="sasrec", embedding_size=4, heads=2, max_length=T))
    return Case(model, _garbage(torch.randint(1, 10, (T, B)), LENGTHS, 4), LENGTHS, torch.randint(1, 10, (T, B)))


class CaptionCase(TranslationCase):
    """The source is an image, a sequence of one step (1, B, 3, H, W): nothing to pad, so no lengths."""

    def alone(self, b: int):
        target_length = int((self.targets[:, b] != 0).sum())
        return self.inputs[:, b : b + 1], None, self.targets[:target_length, b : b + 1], {}


def show_attend_tell() -> Case:
    config = CaptionModelConfig(cell="gru", hidden_size=6, embedding_size=5, encoder_widths=(8, 8), num_layers=2)
    targets = torch.tensor([[2, 2, 2], [5, 6, 7], [4, 3, 5], [3, 0, 6], [0, 0, 3]])
    images = torch.randint(0, 256, (1, B, 3, 8, 8), dtype=torch.uint8)
    return CaptionCase(ShowAttendTell(9, config), images, None, targets)


CASES = [language_model, sequence_model, text_classifier, sequence_tagger, next_frame_model, forecaster,
         encoder_decoder, hierarchical_encoder_decoder, transformer_encoder_decoder, acoustic_model, recommender,
         self_attentive_recommender, show_attend_tell]


def test_every_model_class_is_listed_here():
    """A model added to rnnkit.models must join CASES (each is a class with a forward that owns a loss)."""
    import rnnkit.models as models
    import pkgutil

    found = set()
    for module in pkgutil.iter_modules(models.__path__):
        namespace = __import__(f"rnnkit.models.{module.name}", fromlist=["_"])
        for value in vars(namespace).values():
            if (inspect.isclass(value) and issubclass(value, torch.nn.Module) and value.__module__ == namespace.__name__
                    and "targets" in inspect.signature(value.forward).parameters):
                found.add(value)
    torch.manual_seed(0)
    assert found == {type(case().model) for case in CASES}  # hred's model is an EncoderDecoder: listed for its encoder


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_the_forward_signature_is_the_contracts(case):
    parameters = list(inspect.signature(type(case().model).forward).parameters.values())
    assert [p.name for p in parameters[:5]] == ["self", "inputs", "state", "lengths", "targets"]
    assert parameters[2].default is None  # state
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is None for p in parameters[3:])


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_the_loss_is_none_without_targets_and_a_scalar_with_them(case):
    torch.manual_seed(0)
    case = case()
    model = case.model.eval()
    outputs, loss, _ = model(case.inputs, None, lengths=case.lengths, **case.extras)
    assert loss is None and isinstance(outputs, torch.Tensor)
    _, loss, _ = model(case.inputs, None, lengths=case.lengths, targets=case.targets, **case.extras)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()  # the model owns a loss that trains it
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_a_padded_batch_gives_each_sequence_what_it_gives_alone(case):
    torch.manual_seed(0)
    case = case()
    model = case.model.eval()
    with torch.no_grad():
        outputs, _, _ = model(case.inputs, None, lengths=case.lengths, targets=case.targets, **case.extras)
        for b in range(B):
            inputs, lengths, targets, extras = case.alone(b)
            alone, _, _ = model(inputs, None, lengths=lengths, targets=targets, **extras)
            torch.testing.assert_close(case.row(outputs, b), alone, atol=1e-5, rtol=1e-5)
