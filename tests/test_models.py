"""The model contract: ``forward(inputs, state=None, *, lengths=None, targets=None) -> (outputs, loss, state)``.

Each model owns its loss, computed here again by hand; with ``lengths`` a padded batch gives
what each sequence gives alone, and padded steps count in no loss.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rnnkit.models import LanguageModel, LanguageModelConfig, RecurrentConfig, SequenceModel

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
