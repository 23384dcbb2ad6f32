"""The hand-written NumPy BPTT gives the gradients PyTorch autograd gives (float64, 1e-6)."""

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.reference import gru, loss, lstm, rnn

T, B, I, H, V = 7, 3, 4, 5, 6


def _problem():
    generator = np.random.default_rng(0)
    xs = generator.normal(size=(T, B, I))
    h0 = generator.normal(size=(B, H)) * 0.5
    c0 = generator.normal(size=(B, H)) * 0.5
    targets = generator.integers(0, V, size=(T, B))
    W_hy = generator.normal(size=(V, H))
    b_y = generator.normal(size=V)
    return xs, h0, c0, targets, W_hy, b_y


def _autograd(layer, xs, state, targets, W_hy, b_y):
    """Same loss in torch: Σ_t Σ_b cross-entropy of W_hy h_t + b_y."""
    x = torch.tensor(xs, requires_grad=True)
    state = tuple(torch.tensor(s[None], requires_grad=True) for s in state)
    W = torch.tensor(W_hy, requires_grad=True)
    b = torch.tensor(b_y, requires_grad=True)
    hs, _ = layer(x, state if len(state) > 1 else state[0])
    logits = hs @ W.T + b
    total = torch.nn.functional.cross_entropy(logits.reshape(-1, V), torch.tensor(targets).reshape(-1), reduction="sum")
    total.backward()
    params = {name.rsplit("_l0", 1)[0]: getattr(layer, name).grad.numpy() for name in layer.state_dict()}
    return total.item(), params, x.grad.numpy(), [s.grad.numpy()[0] for s in state], W.grad.numpy(), b.grad.numpy()


def _params(layer):
    """Weights by torch.nn name without the layer suffix ("weight_ih_l0" -> "weight_ih")."""
    return {name.rsplit("_l0", 1)[0]: value.numpy().copy() for name, value in layer.state_dict().items()}


def _check(reference_module, layer, forward_args, state):
    xs, h0, c0, targets, W_hy, b_y = _problem()
    params = _params(layer)
    hs, cache = reference_module.forward(params, xs, *forward_args)
    value, dhs, readout_grads = loss.softmax_cross_entropy(W_hy, b_y, hs, targets)
    grads, input_grads = reference_module.backward(params, cache, dhs)

    expected_value, expected, dx, dstate, dW_hy, db_y = _autograd(layer, xs, state, targets, W_hy, b_y)
    assert value == pytest.approx(expected_value, rel=1e-9)
    for name in expected:
        np.testing.assert_allclose(grads[name], expected[name], atol=1e-6, rtol=0, err_msg=name)
    np.testing.assert_allclose(input_grads["x"], dx, atol=1e-6, rtol=0)
    for name, d in zip(("h0", "c0"), dstate):
        np.testing.assert_allclose(input_grads[name], d, atol=1e-6, rtol=0, err_msg=name)
    np.testing.assert_allclose(readout_grads["W_hy"], dW_hy, atol=1e-6, rtol=0)
    np.testing.assert_allclose(readout_grads["b_y"], db_y, atol=1e-6, rtol=0)


def test_rnn_bptt_matches_autograd():
    _, h0, *_ = _problem()
    layer = torch.nn.RNN(I, H).double()
    _check(rnn, layer, (h0,), (h0,))


def test_lstm_bptt_matches_autograd():
    _, h0, c0, *_ = _problem()
    layer = torch.nn.LSTM(I, H).double()
    _check(lstm, layer, (h0, c0), (h0, c0))


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_bptt_matches_autograd(reset_after):
    _, h0, *_ = _problem()
    # reset_after=True is torch.nn.GRU; reset_after=False (Cho et al.) exists only in rnnkit.
    layer = torch.nn.GRU(I, H).double() if reset_after else rnnkit.GRU(I, H, reset_after=False).double()
    _check(gru, layer, (h0, reset_after), (h0,))


def test_reference_loss_is_not_trivially_zero():
    """Guard against a vacuous comparison: the gradients checked above are far from zero."""
    xs, h0, c0, targets, W_hy, b_y = _problem()
    layer = torch.nn.LSTM(I, H).double()
    hs, cache = lstm.forward(_params(layer), xs, h0, c0)
    _, dhs, _ = loss.softmax_cross_entropy(W_hy, b_y, hs, targets)
    grads, _ = lstm.backward(_params(layer), cache, dhs)
    assert all(np.abs(g).max() > 1e-2 for g in grads.values())
