"""``Recurrent`` wires cells into deep, bidirectional, residual and dense layers correctly."""

import itertools

import pytest
import torch

import rnnkit
from rnnkit.sequences import reverse_padded

T, B, I, H = 5, 3, 4, 3
LENGTHS = [3, 5, 1]
MERGES = ["concat", "sum", "ave", "mul", "max", None]


def double_layer(cell_type="lstm", **options):
    """A float64 layer with weights large enough that every term matters."""
    layer = rnnkit.Recurrent(cell_type, I, H, **options).double()
    with torch.no_grad():
        for parameter in layer.parameters():
            parameter.uniform_(-0.7, 0.7)
    return layer.eval()


# ----------------------------------------------------------------------------- gradcheck grid
# The grid checks the wiring (depth x direction x merge x lengths x kernel), so it uses gradcheck's fast mode: one
# random projection of the Jacobian, which a wrong or missing term fails but a small error in one entry may pass.
# The whole Jacobian of every cell, deep, bidirectional and with lengths, is checked below (and in test_cells.py).
DIRECTIONS = [(False, "concat")] + [(True, merge) for merge in MERGES]
GRID = list(itertools.product([1, 2], DIRECTIONS, [False, True], ["off", "auto"]))


@pytest.mark.parametrize("num_layers,direction,with_lengths,fast_path", GRID)
def test_gradcheck_grid(num_layers, direction, with_lengths, fast_path):
    bidirectional, merge_mode = direction
    layer = double_layer(num_layers=num_layers, bidirectional=bidirectional, merge_mode=merge_mode, fast_path=fast_path)
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    rows = num_layers * (2 if bidirectional else 1)
    h0 = torch.randn(rows, B, H, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(rows, B, H, dtype=torch.float64, requires_grad=True)
    lengths = LENGTHS if with_lengths else None

    def run(x, h0, c0):
        output, (h_n, c_n) = layer(x, (h0, c0), lengths=lengths)
        return output, h_n, c_n

    assert torch.autograd.gradcheck(run, (x, h0, c0), fast_mode=True)


@pytest.mark.parametrize("cell_type", list(rnnkit.CELLS))
@pytest.mark.parametrize("connection", [{}, dict(residual=True), dict(dense=True)])
def test_gradcheck_every_cell_deep_bidirectional_with_lengths(cell_type, connection):
    options = dict(layer_norm=True) if cell_type in ("lstm", "gru", "indrnn") else {}
    layer = rnnkit.Recurrent(cell_type, H, H, num_layers=2, bidirectional=True, merge_mode="sum", **connection, **options)
    layer = layer.double().eval()
    x = torch.randn(T, B, H, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: layer(x, lengths=LENGTHS)[0], (x,))


# ----------------------------------------------------------------------------- variable lengths
@pytest.mark.parametrize("cell_type", list(rnnkit.CELLS))
@pytest.mark.parametrize("options", [dict(bidirectional=True), dict(bidirectional=True, residual=True, merge_mode="ave"),
                                     dict(bidirectional=True, dense=True, merge_mode=None), dict(batch_first=True)])
def test_each_sequence_of_a_padded_batch_equals_running_it_alone(cell_type, options):
    layer = rnnkit.Recurrent(cell_type, H, H, num_layers=2, **options).eval()
    batch_first = options.get("batch_first", False)
    x = torch.randn(B, T, H) if batch_first else torch.randn(T, B, H)
    output, state = layer(x, lengths=LENGTHS)
    for b, length in enumerate(LENGTHS):
        alone = x[b : b + 1, :length] if batch_first else x[:length, b : b + 1]
        alone_output, alone_state = layer(alone)
        ours = output[b : b + 1, :length] if batch_first else output[:length, b : b + 1]
        torch.testing.assert_close(ours, alone_output, atol=1e-6, rtol=1e-5)
        padding = output[b, length:] if batch_first else output[length:, b]
        assert torch.all(padding == 0), "outputs past a sequence's length must be zero"
        for part, alone_part in zip(state, alone_state):
            torch.testing.assert_close(part[:, b : b + 1], alone_part, atol=1e-6, rtol=1e-5)


def test_padding_values_never_leak_into_real_steps():
    layer = rnnkit.Recurrent("gru", I, H, bidirectional=True).eval()
    x = torch.randn(T, B, I)
    garbage = x.clone()
    for b, length in enumerate(LENGTHS):
        garbage[length:, b] = 1e3
    for a, b in zip(layer(x, lengths=LENGTHS), layer(garbage, lengths=LENGTHS)):
        a, b = (a, b) if isinstance(a, torch.Tensor) else (a[0], b[0])
        torch.testing.assert_close(a, b)


def test_lengths_accept_list_tuple_and_tensor_in_any_order():
    layer = rnnkit.Recurrent("lstm", I, H).eval()
    x = torch.randn(T, B, I)
    outputs = [layer(x, lengths=lengths)[0] for lengths in (LENGTHS, tuple(LENGTHS), torch.tensor(LENGTHS))]
    for other in outputs[1:]:
        torch.testing.assert_close(outputs[0], other)


def test_reverse_padded_keeps_padding_at_the_end_and_is_its_own_inverse():
    x = torch.arange(1.0, 5.0).reshape(4, 1, 1).repeat(1, 2, 1)  # (T=4, B=2, 1): 1 2 3 4
    flipped = reverse_padded(x, torch.tensor([3, 4]))
    assert flipped[:, 0, 0].tolist() == [3.0, 2.0, 1.0, 4.0]
    assert flipped[:, 1, 0].tolist() == [4.0, 3.0, 2.0, 1.0]
    torch.testing.assert_close(reverse_padded(flipped, torch.tensor([3, 4])), x)


# ----------------------------------------------------------------------------- state across batches
@pytest.mark.parametrize("cell_type", list(rnnkit.CELLS))
def test_carrying_state_across_batches_equals_one_long_sequence(cell_type):
    layer = rnnkit.Recurrent(cell_type, I, H, num_layers=2).eval()
    x = torch.randn(2 * T, B, I)
    whole, whole_state = layer(x)
    first, state = layer(x[:T])
    second, final = layer(x[T:], rnnkit.detach_state(state))
    torch.testing.assert_close(torch.cat([first, second]), whole)
    for part, expected in zip(final, whole_state):
        torch.testing.assert_close(part, expected)


def test_detach_state_cuts_the_graph_and_keeps_values():
    h = torch.randn(2, 3, requires_grad=True) * 2
    state = (h, (h + 1,))
    detached = rnnkit.detach_state(state)
    assert not detached[0].requires_grad and not detached[1][0].requires_grad
    torch.testing.assert_close(detached[0], h)
    assert rnnkit.detach_state(None) is None
    with pytest.raises(TypeError, match="state: expected a tensor or a tuple of tensors, got str"):
        rnnkit.detach_state("h")


# ----------------------------------------------------------------------------- topologies
def test_merge_modes_combine_the_two_directions():
    x = torch.randn(T, B, I)
    both = rnnkit.Recurrent("gru", I, H, bidirectional=True, merge_mode=None).eval()
    separate, _ = both(x, lengths=LENGTHS)
    assert separate.shape == (T, B, 2, H)
    forward, backward = separate[..., 0, :], separate[..., 1, :]
    expected = {
        "concat": torch.cat([forward, backward], -1),
        "sum": forward + backward,
        "ave": (forward + backward) / 2,
        "mul": forward * backward,
        "max": torch.maximum(forward, backward),
    }
    for mode, want in expected.items():
        layer = rnnkit.Recurrent("gru", I, H, bidirectional=True, merge_mode=mode).eval()
        layer.load_state_dict(both.state_dict())
        got, _ = layer(x, lengths=LENGTHS)
        torch.testing.assert_close(got, want, msg=mode)
        assert layer.output_size == want.shape[-1]


def test_backward_direction_reads_the_sequence_from_its_end():
    layer = rnnkit.Recurrent("rnn", I, H, bidirectional=True, merge_mode=None).eval()
    x = torch.randn(T, 1, I)
    output, _ = layer(x)
    backward_cell = layer.layers[0].backward_layer.cell
    h, expected = None, []
    for x_t in x.flip(0):
        out, h = backward_cell(x_t, h)
        expected.append(out)
    torch.testing.assert_close(output[:, :, 1], torch.stack(expected).flip(0))


def test_residual_adds_each_equal_width_layer_input_to_its_output():
    layer = rnnkit.Recurrent("indrnn", I, H, num_layers=3, residual=True).eval()
    assert layer._residual_at == [False, True, True]  # layer 0 maps 4 -> 3 units: no skip
    x = torch.randn(T, B, I)
    y0, _ = layer.layers[0](x)
    y1, _ = layer.layers[1](y0)
    y1 = y1 + y0
    y2, _ = layer.layers[2](y1)
    torch.testing.assert_close(layer(x)[0], y2 + y1)


def test_dense_layers_read_the_input_and_every_lower_output():
    layer = rnnkit.Recurrent("lstm", I, H, num_layers=3, dense=True, bidirectional=True).eval()
    assert [sub.forward_layer.cell.input_size for sub in layer.layers] == [I, I + 2 * H, I + 4 * H]
    x = torch.randn(T, B, I)
    y0, _ = layer.layers[0](x)
    y1, _ = layer.layers[1](torch.cat([x, y0], -1))
    y2, _ = layer.layers[2](torch.cat([x, y0, y1], -1))
    torch.testing.assert_close(layer(x)[0], y2)


STEP_CELLS = [("rnn", {}), ("lstm", dict(layer_norm=True)), ("lstm", dict(proj_size=2)), ("gru", dict(layer_norm=True)),
              ("gru", dict(reset_after=False, layer_norm=True)), ("janet", {}), ("indrnn", dict(layer_norm=True))]


@pytest.mark.parametrize("cell_type,options", STEP_CELLS)
@pytest.mark.parametrize("connection", [{}, dict(residual=True), dict(dense=True)])
def test_a_step_on_broadcast_batches_equals_a_forward_step_on_every_pair(cell_type, options, connection):
    """Inputs (C, M, I) and states (layers, B, C, 1, H) broadcast to B*C*M rows: each row's output and state are those
    of a one-step forward on that row's own input and state (SegRNN's parallel decoding), and so are the gradients."""
    layer = double_layer(cell_type, num_layers=3, **options, **connection)
    Bw, C, M = 2, 3, 4
    inputs = torch.randn(C, M, layer.input_size, dtype=torch.float64, requires_grad=True)
    sizes = layer.layers[0].cell.state_sizes()
    state = tuple(torch.randn(3, Bw, C, 1, size, dtype=torch.float64, requires_grad=True) for size in sizes)
    output, new_state = layer.step(inputs, state)
    assert output.shape[:3] == (Bw, C, M) and all(part.shape[:4] == (3, Bw, C, M) for part in new_state)
    rows = inputs.expand(Bw, C, M, -1).reshape(1, Bw * C * M, -1)  # every pair, copied: what SegRNN's code runs
    copied = tuple(part.expand(-1, -1, -1, M, -1).reshape(3, Bw * C * M, -1) for part in state)
    expected, expected_state = layer(rows, copied)
    torch.testing.assert_close(output.reshape(Bw * C * M, -1), expected[0])
    for part, expected_part in zip(new_state, expected_state):
        torch.testing.assert_close(part.reshape(3, Bw * C * M, -1), expected_part)
    weights = torch.randn_like(output)
    gradients = torch.autograd.grad((output * weights).sum(), (inputs, *state))
    expected_gradients = torch.autograd.grad((expected[0] * weights.reshape(-1, weights.shape[-1])).sum(), (inputs, *state))
    for got, want in zip(gradients, expected_gradients):
        torch.testing.assert_close(got, want)


def test_a_step_with_recurrent_dropout_draws_a_mask_per_broadcast_row():
    """The same input and state at all 4 positions: only masks drawn per row of the broadcast batch tell them apart."""
    layer = rnnkit.Recurrent("gru", I, H, recurrent_dropout=0.5).train()
    output, _ = layer.step(torch.randn(3, 1, I).expand(3, 4, I), torch.randn(1, 2, 3, 1, H))
    assert output.shape == (2, 3, 4, H)
    assert not torch.allclose(output[:, :, 0], output[:, :, 1])
    layer.eval()
    output, _ = layer.step(torch.randn(3, 1, I).expand(3, 4, I), torch.randn(1, 2, 3, 1, H))
    torch.testing.assert_close(output[:, :, 0], output[:, :, 1])


def test_a_bidirectional_stack_cannot_step():
    with pytest.raises(rnnkit.ArgumentError, match="step: a bidirectional stack"):
        rnnkit.Recurrent("gru", I, H, bidirectional=True).step(torch.randn(2, I), torch.zeros(2, 2, H))


def test_a_step_names_the_state_that_does_not_fit():
    layer = rnnkit.Recurrent("lstm", I, H, num_layers=2)
    with pytest.raises(rnnkit.ArgumentError, match=r"state.c: expected shape \(num_layers=2, ..., 3\), got \(1, 5, 3\)"):
        layer.step(torch.randn(5, I), (torch.zeros(2, 5, H), torch.zeros(1, 5, H)))
    with pytest.raises(rnnkit.ArgumentError, match=r"input: expected shape \(..., 4\)"):
        layer.step(torch.randn(5, H), (torch.zeros(2, 5, H), torch.zeros(2, 5, H)))


def test_dropout_between_layers_only_in_training():
    layer = rnnkit.Recurrent("gru", I, H, num_layers=2, dropout=0.5)
    x = torch.randn(T, B, I)
    layer.eval()
    torch.testing.assert_close(layer(x)[0], layer(x)[0])
    layer.train()
    assert not torch.allclose(layer(x)[0], layer(x)[0])


def test_dropout_with_one_layer_warns_like_torch():
    with pytest.warns(UserWarning, match="num_layers=1"):
        rnnkit.Recurrent("lstm", I, H, dropout=0.2)


def test_state_layout_is_layer_major_then_direction():
    layer = rnnkit.Recurrent("gru", I, H, num_layers=2, bidirectional=True).eval()
    x = torch.randn(T, B, I)
    _, (h_n,) = layer(x)
    assert h_n.shape == (4, B, H)
    # Row 3 is layer 1, reverse; its final state is its state after reading x_0.
    layer1_input = layer.layers[0](x)[0]
    _, (expected,) = layer.layers[1].backward_layer(layer1_input)
    torch.testing.assert_close(h_n[3], expected)


def test_custom_cell_class_plugs_in():
    class Leaky(rnnkit.RNNCell):
        def step(self, x_t, state, noise):
            (h,) = super().step(x_t, state, noise)
            return (0.5 * h + 0.5 * state[0],)

    layer = rnnkit.Recurrent(Leaky, I, H, num_layers=2, bidirectional=True)
    x = torch.randn(T, B, I)
    output, (h_n,) = layer(x)
    assert output.shape == (T, B, 2 * H) and h_n.shape == (4, B, H)

    def by_hand(cell, sequence):  # the leaky equation itself, not the cell's step
        h, outputs = torch.zeros(B, H), []
        for x_t in sequence:
            h = 0.5 * torch.tanh(x_t @ cell.weight_ih.t() + cell.bias_ih + h @ cell.weight_hh.t() + cell.bias_hh) + 0.5 * h
            outputs.append(h)
        return torch.stack(outputs)

    forward_cell, backward_cell = layer.layers[0].direction_cells
    below = torch.cat([by_hand(forward_cell, x), by_hand(backward_cell, x.flip(0)).flip(0)], dim=-1)
    forward_cell, backward_cell = layer.layers[1].direction_cells
    expected = torch.cat([by_hand(forward_cell, below), by_hand(backward_cell, below.flip(0)).flip(0)], dim=-1)
    torch.testing.assert_close(output, expected)
    torch.testing.assert_close(h_n[2], expected[-1, :, :H])  # layer 1 forward: after the last step
    assert layer.kernel_plan(x)[0].kernel == "reference"  # a subclass may change step(): no kernel runs it


# ----------------------------------------------------------------------------- bad input
def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match=r"cell_type: expected one of \['rnn', 'lstm', 'gru', 'janet', 'indrnn'\]"):
        rnnkit.Recurrent("transformer", I, H)
    with pytest.raises(ValueError, match=r"merge_mode: expected one of \['concat', 'sum', 'ave', 'mul', 'max', None\], got 'avg'"):
        rnnkit.Recurrent("lstm", I, H, bidirectional=True, merge_mode="avg")
    with pytest.raises(ValueError, match=r"proj_size: only LSTM cells have a projection, got cell_type='gru'"):
        rnnkit.Recurrent("gru", I, H, proj_size=2)
    with pytest.raises(ValueError, match=r"activation: expected one of \['tanh', 'relu'\], got 'swish'"):
        rnnkit.Recurrent("rnn", I, H, activation="swish")
    with pytest.raises(ValueError, match=r"num_layers: expected a positive int, got 0"):
        rnnkit.Recurrent("lstm", I, H, num_layers=0)
    with pytest.raises(ValueError, match=r"residual: no layer has equal input and output widths"):
        rnnkit.Recurrent("lstm", I, H, residual=True)
    with pytest.raises(ValueError, match=r"residual, dense"):
        rnnkit.Recurrent("lstm", H, H, num_layers=2, residual=True, dense=True)
    with pytest.raises(ValueError, match=r"dropout: expected a float in \[0, 1\], got 1.5"):
        rnnkit.Recurrent("lstm", I, H, num_layers=2, dropout=1.5)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'hiden'"):
        rnnkit.Recurrent("lstm", I, H, hiden=3)


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda m: m(torch.randn(T, B, I + 1)), ValueError, r"input: expected shape \(T, B, 4\) or unbatched \(T, 4\), got \(5, 3, 5\)"),
        (lambda m: m(torch.randn(T, B, I, 1)), ValueError, r"input: expected shape .* got \(5, 3, 4, 1\)"),
        (lambda m: m(torch.randn(T, B, I).long()), TypeError, r"input: expected a floating-point tensor, got dtype torch.int64"),
        (lambda m: m(torch.randn(T, B, I), (torch.zeros(2, B, H), torch.zeros(1, B, H))), ValueError,
         r"state.c: expected shape \(num_layers\*num_directions=2, B=3, 3\), got \(1, 3, 3\)"),
        (lambda m: m(torch.randn(T, B, I), torch.zeros(2, B, H)), ValueError, r"state: expected a tuple of 2 tensors \('h', 'c'\)"),
        (lambda m: m(torch.randn(T, B, I), lengths=[3, 0, 2]), ValueError, r"lengths: every length must be in \[1, T=5\], got values from 0 to 3"),
        (lambda m: m(torch.randn(T, B, I), lengths=[3, 6, 2]), ValueError, r"lengths: every length must be in \[1, T=5\], got values from 2 to 6"),
        (lambda m: m(torch.randn(T, B, I), lengths=[3, 2]), ValueError, r"lengths: expected shape \(B=3,\), got \(2,\)"),
        (lambda m: m(torch.randn(T, B, I), lengths=[3.0, 2.0, 1.0]), TypeError, r"lengths: expected integer lengths, got dtype torch.float32"),
    ],
)
def test_bad_forward_arguments_name_argument_expected_and_received(call, error, match):
    layer = rnnkit.Recurrent("lstm", I, H, num_layers=2)
    with pytest.raises(error, match=match):
        call(layer)


def test_bad_input_message_mentions_batch_first_layout():
    layer = rnnkit.Recurrent("gru", I, H, batch_first=True)
    with pytest.raises(ValueError, match=r"input: expected shape \(B, T, 4\)"):
        layer(torch.randn(B, T, 2))


def test_packed_input_with_lengths_is_rejected():
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.randn(T, B, I), LENGTHS, enforce_sorted=False)
    with pytest.raises(ValueError, match="lengths: must be None when input is a PackedSequence"):
        rnnkit.Recurrent("gru", I, H)(packed, lengths=LENGTHS)
