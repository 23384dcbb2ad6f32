"""rnnkit.RNN/LSTM/GRU compute what torch.nn.RNN/LSTM/GRU compute, given the same weights.

Outputs, final states and gradients (inputs, initial states, every weight) agree to 1e-5
in float32 for 1-3 layers, uni/bidirectional, batch_first, proj_size and variable lengths,
both on the readable reference path (fast_path="off") and on the fast path ("auto").
"""

import itertools

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnkit
from rnnkit.kernels import plan_layers

T, B, I, H = 6, 4, 5, 7
LENGTHS = [4, 6, 1, 5]  # unsorted on purpose: no enforce_sorted trap
TOLERANCE = dict(atol=1e-5, rtol=1e-5)

MODES = {
    "rnn_tanh": (torch.nn.RNN, rnnkit.RNN, dict(nonlinearity="tanh")),
    "rnn_relu": (torch.nn.RNN, rnnkit.RNN, dict(nonlinearity="relu")),
    "lstm": (torch.nn.LSTM, rnnkit.LSTM, {}),
    "lstm_proj": (torch.nn.LSTM, rnnkit.LSTM, dict(proj_size=3)),
    "gru": (torch.nn.GRU, rnnkit.GRU, {}),
}


def make_pair(mode, fast_path="off", **options):
    torch_class, rnnkit_class, extra = MODES[mode]
    reference = torch_class(I, H, **extra, **options)
    ours = rnnkit_class(I, H, **extra, **options, fast_path=fast_path)
    ours.load_state_dict(reference.state_dict())  # strict: the key sets are identical
    return reference, ours


def initial_state(module, batch_first):
    rows = module.num_layers * (2 if module.bidirectional else 1)
    width = module.proj_size if getattr(module, "proj_size", 0) else H
    h0 = torch.randn(rows, B, width, requires_grad=True)
    if isinstance(module, torch.nn.LSTM):
        return (h0, torch.randn(rows, B, H, requires_grad=True))
    return h0


def run_torch(module, x, hx, lengths, batch_first):
    if lengths is None:
        return module(x, hx)
    packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False)
    output, state = module(packed, hx)
    output, _ = pad_packed_sequence(output, batch_first=batch_first, total_length=T)
    return output, state


def as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def gradients(module, x, hx, output, state):
    """Backpropagate a random (but fixed) function of every output and return all gradients."""
    generator = torch.Generator().manual_seed(1)
    total = (output * torch.randn(output.shape, generator=generator)).sum()
    for part in as_tuple(state):
        total = total + (part * torch.randn(part.shape, generator=generator)).sum()
    inputs = [x, *as_tuple(hx)]
    names = list(module.state_dict())
    weights = [getattr(module, name) for name in names]
    grads = torch.autograd.grad(total, inputs + weights)
    return dict(zip(["input", "h0", "c0"][: len(inputs)] + names, grads))


GRID = list(itertools.product(MODES, [1, 2, 3], [False, True], [False, True], [False, True], ["off", "auto"]))


@pytest.mark.parametrize("mode,num_layers,bidirectional,batch_first,with_lengths,fast_path", GRID)
def test_matches_torch_nn(mode, num_layers, bidirectional, batch_first, with_lengths, fast_path):
    reference, ours = make_pair(
        mode, fast_path, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first
    )
    assert all(choice.kernel == "native" for choice in plan_layers(ours.layers, None, ours.fast_path)) == (fast_path == "auto")
    x = torch.randn((B, T, I) if batch_first else (T, B, I), requires_grad=True)
    hx = initial_state(reference, batch_first)
    lengths = LENGTHS if with_lengths else None

    expected_output, expected_state = run_torch(reference, x, hx, lengths, batch_first)
    output, state = ours(x, hx, lengths=lengths)

    torch.testing.assert_close(output, expected_output, **TOLERANCE)
    assert type(state) is type(expected_state)
    for part, expected_part in zip(as_tuple(state), as_tuple(expected_state)):
        torch.testing.assert_close(part, expected_part, **TOLERANCE)
    expected_grads = gradients(reference, x, hx, expected_output, expected_state)
    grads = gradients(ours, x, hx, output, state)
    assert grads.keys() == expected_grads.keys()
    for name in expected_grads:
        torch.testing.assert_close(grads[name], expected_grads[name], **TOLERANCE, msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("fast_path", ["off", "auto"])
def test_packed_sequence_in_packed_sequence_out(mode, fast_path):
    reference, ours = make_pair(mode, fast_path, num_layers=2, bidirectional=True)
    x = torch.randn(T, B, I)
    packed = pack_padded_sequence(x, torch.tensor(LENGTHS), enforce_sorted=False)
    expected_output, expected_state = reference(packed)
    output, state = ours(packed)
    assert isinstance(output, torch.nn.utils.rnn.PackedSequence)
    torch.testing.assert_close(output.data, expected_output.data, **TOLERANCE)
    torch.testing.assert_close(output.batch_sizes, expected_output.batch_sizes)
    torch.testing.assert_close(output.sorted_indices, expected_output.sorted_indices)
    for part, expected_part in zip(as_tuple(state), as_tuple(expected_state)):
        torch.testing.assert_close(part, expected_part, **TOLERANCE)


@pytest.mark.parametrize("mode", ["rnn_tanh", "lstm", "gru"])
@pytest.mark.parametrize("fast_path", ["off", "auto"])
def test_unbatched_input_matches_torch_nn(mode, fast_path):
    reference, ours = make_pair(mode, fast_path, num_layers=2)
    x = torch.randn(T, I)
    hx = tuple(torch.randn(part.shape[0], part.shape[2]) for part in as_tuple(initial_state(reference, False)))
    hx = hx if len(hx) > 1 else hx[0]
    expected_output, expected_state = reference(x, hx)
    output, state = ours(x, hx)
    torch.testing.assert_close(output, expected_output, **TOLERANCE)
    for part, expected_part in zip(as_tuple(state), as_tuple(expected_state)):
        torch.testing.assert_close(part, expected_part, **TOLERANCE)


@pytest.mark.parametrize("mode", list(MODES))
def test_state_dict_round_trips_both_ways(mode):
    reference, ours = make_pair(mode, num_layers=2, bidirectional=True)
    assert list(ours.state_dict()) == list(reference.state_dict())  # same keys, same order
    back = MODES[mode][0](I, H, num_layers=2, bidirectional=True, **MODES[mode][2])
    back.load_state_dict(ours.state_dict())
    for name, value in reference.state_dict().items():
        torch.testing.assert_close(back.state_dict()[name], value, atol=0, rtol=0)


def test_torch_style_attribute_access_and_init_idioms():
    lstm = rnnkit.LSTM(I, H, num_layers=2, bidirectional=True)
    assert lstm.weight_hh_l1_reverse.shape == (4 * H, H)
    assert lstm.weight_ih_l1.shape == (4 * H, 2 * H)
    assert len(lstm.all_weights) == 4 and len(lstm.all_weights[0]) == 4
    lstm.flatten_parameters()  # called by much torch.nn code; must not fail
    # A common initialisation idiom must reach the right tensors.
    for name, parameter in lstm.named_parameters():
        if "weight_hh" in name:
            torch.nn.init.zeros_(parameter)
    assert lstm.weight_hh_l0.abs().sum() == 0
    with pytest.raises(AttributeError):
        _ = lstm.weight_ih_l2  # only two layers
    with pytest.raises(AttributeError):
        _ = rnnkit.LSTM(I, H).weight_ih_l0_reverse  # not bidirectional
    with pytest.raises(AttributeError):
        _ = rnnkit.LSTM(I, H, bias=False).bias_ih_l0  # torch.nn has no bias attribute either


def test_loading_a_mismatched_state_dict_fails_like_torch():
    ours = rnnkit.LSTM(I, H, num_layers=1)
    with pytest.raises(RuntimeError, match="weight_ih_l1"):
        ours.load_state_dict(torch.nn.LSTM(I, H, num_layers=2).state_dict())


@pytest.mark.parametrize("cls,options", [(rnnkit.JANET, dict(t_max=20)), (rnnkit.IndRNN, dict(t_max=20, nonlinearity="tanh"))])
def test_janet_and_indrnn_follow_the_same_conventions(cls, options):
    layer = cls(I, H, num_layers=2, bidirectional=True, batch_first=True, **options)
    assert list(layer.state_dict())[:4] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert "bias_hh_l1_reverse" in layer.state_dict()
    copy = cls(I, H, num_layers=2, bidirectional=True, batch_first=True, **options)
    copy.load_state_dict(layer.state_dict())
    x = torch.randn(B, T, I)
    output, h_n = copy(x, lengths=LENGTHS)
    assert isinstance(h_n, torch.Tensor) and h_n.shape == (4, B, H) and output.shape == (B, T, 2 * H)
    torch.testing.assert_close(output, layer(x, lengths=LENGTHS)[0])


def test_drop_in_argument_names_appear_in_errors():
    with pytest.raises(ValueError, match=r"nonlinearity: expected one of \['tanh', 'relu'\], got 'sigmoid'"):
        rnnkit.RNN(I, H, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match=r"proj_size: only LSTM cells have a projection"):
        rnnkit.GRU(I, H, proj_size=2)


def test_whole_module_save_and_load(tmp_path):
    """torch.save(model) users: the state-dict hooks survive a round trip through torch.save."""
    lstm = rnnkit.LSTM(I, H, num_layers=2)
    torch.save(lstm, tmp_path / "lstm.pt")
    loaded = torch.load(tmp_path / "lstm.pt", weights_only=False)
    assert list(loaded.state_dict()) == list(lstm.state_dict())
    x = torch.randn(T, B, I)
    torch.testing.assert_close(loaded(x)[0], lstm(x)[0])
