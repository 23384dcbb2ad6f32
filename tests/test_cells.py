"""Every cell computes its docstring's equations: checked against torch.nn cells where PyTorch
has them, against the equations written out independently here where it does not, and by
gradcheck in float64 for every option."""

import pytest
import torch

import rnnkit
from rnnkit.cells import NO_NOISE, RecurrentNoise

B, I, H = 3, 4, 5

# (cell class, options): every option that changes the maths at least once.
CELL_CONFIGS = [
    (rnnkit.RNNCell, {}),
    (rnnkit.RNNCell, dict(activation="relu")),
    (rnnkit.RNNCell, dict(bias=False)),
    (rnnkit.LSTMCell, {}),
    (rnnkit.LSTMCell, dict(proj_size=2)),
    (rnnkit.LSTMCell, dict(layer_norm=True)),
    (rnnkit.LSTMCell, dict(layer_norm=True, proj_size=3, bias=False)),
    (rnnkit.LSTMCell, dict(activation="relu", recurrent_activation="hard_sigmoid")),
    (rnnkit.GRUCell, {}),
    (rnnkit.GRUCell, dict(reset_after=False)),
    (rnnkit.GRUCell, dict(layer_norm=True)),
    (rnnkit.GRUCell, dict(layer_norm=True, reset_after=False)),
    (rnnkit.JANETCell, {}),
    (rnnkit.JANETCell, dict(t_max=50)),
    (rnnkit.IndRNNCell, {}),
    (rnnkit.IndRNNCell, dict(activation="tanh", t_max=10)),
    (rnnkit.IndRNNCell, dict(layer_norm=True)),
]


def config_id(config):
    cls, options = config
    return cls.__name__ + "".join(f"-{k}={v}" for k, v in options.items())


def random_state(cell, dtype=torch.float64):
    return tuple(torch.randn(B, size, dtype=dtype, requires_grad=True) for size in cell.state_sizes())


def randomise(cell):
    """Random weights everywhere, layer-norm gains included, so no term hides behind an init of 0 or 1."""
    with torch.no_grad():
        for parameter in cell.parameters():
            parameter.uniform_(-0.8, 0.8)
    return cell


# ----------------------------------------------------------------------------- gradcheck
@pytest.mark.parametrize("config", CELL_CONFIGS, ids=config_id)
def test_gradcheck(config):
    cls, options = config
    cell = randomise(cls(I, H, **options).double())
    x = torch.randn(B, I, dtype=torch.float64, requires_grad=True)
    state = random_state(cell)
    assert torch.autograd.gradcheck(lambda x, *s: cell(x, s)[1], (x, *state))


@pytest.mark.parametrize("cls", [rnnkit.RNNCell, rnnkit.LSTMCell, rnnkit.GRUCell, rnnkit.JANETCell, rnnkit.IndRNNCell])
def test_gradcheck_with_all_regularisers_in_training_mode(cls):
    """With the noise fixed (same seed at every evaluation) training-mode cells are differentiable too."""
    cell = randomise(cls(I, H, recurrent_dropout=0.3, zoneout=0.2, weight_dropout=0.4).double()).train()
    x = torch.randn(B, I, dtype=torch.float64, requires_grad=True)
    state = random_state(cell)

    def step(x, *state):
        torch.manual_seed(123)
        noise = cell.sample_noise(B, x)
        return cell(x, state, noise)[1]

    assert torch.autograd.gradcheck(step, (x, *state))


# ----------------------------------------------------------------------------- against torch.nn
@pytest.mark.parametrize(
    "ours,theirs",
    [
        (lambda: rnnkit.RNNCell(I, H), lambda: torch.nn.RNNCell(I, H)),
        (lambda: rnnkit.RNNCell(I, H, activation="relu"), lambda: torch.nn.RNNCell(I, H, nonlinearity="relu")),
        (lambda: rnnkit.LSTMCell(I, H), lambda: torch.nn.LSTMCell(I, H)),
        (lambda: rnnkit.GRUCell(I, H), lambda: torch.nn.GRUCell(I, H)),
        (lambda: rnnkit.GRUCell(I, H, bias=False), lambda: torch.nn.GRUCell(I, H, bias=False)),
    ],
)
def test_cell_matches_torch_cell(ours, theirs):
    reference, cell = theirs(), ours()
    cell.load_state_dict(reference.state_dict())  # same parameter names
    x = torch.randn(B, I)
    state = tuple(torch.randn(B, H) for _ in cell.state_names)
    expected = reference(x, state if len(state) > 1 else state[0])
    h, new_state = cell(x, state)
    expected = expected if isinstance(expected, tuple) else (expected,)
    for got, want in zip(new_state, expected):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(h, expected[0])


def test_projected_lstm_cell_matches_one_step_of_torch_lstm():
    reference = torch.nn.LSTM(I, H, proj_size=2)
    cell = rnnkit.LSTMCell(I, H, proj_size=2)
    cell.load_state_dict({name[: -len("_l0")]: value for name, value in reference.state_dict().items()})
    x, h0, c0 = torch.randn(B, I), torch.randn(B, 2), torch.randn(B, H)
    output, (h1, c1) = reference(x[None], (h0[None], c0[None]))
    h, (h_state, c_state) = cell(x, (h0, c0))
    torch.testing.assert_close(h, h1[0])
    torch.testing.assert_close(c_state, c1[0])


# ----------------------------------------------------------------------------- equations written out
def test_gru_reset_before_follows_cho_et_al():
    cell = randomise(rnnkit.GRUCell(I, H, reset_after=False))
    x, h = torch.randn(B, I), torch.randn(B, H)
    W_ir, W_iz, W_in = cell.weight_ih.chunk(3)
    W_hr, W_hz, W_hn = cell.weight_hh.chunk(3)
    b_ir, b_iz, b_in = cell.bias_ih.chunk(3)
    b_hr, b_hz, b_hn = cell.bias_hh.chunk(3)
    r = torch.sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
    z = torch.sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
    n = torch.tanh(x @ W_in.T + b_in + (r * h) @ W_hn.T + b_hn)
    expected = z * h + (1 - z) * n
    torch.testing.assert_close(cell(x, h)[0], expected)
    # ... and differs from the reset-after variant with the same weights.
    after = rnnkit.GRUCell(I, H)
    after.load_state_dict(cell.state_dict())
    assert not torch.allclose(after(x, h)[0], expected, atol=1e-4)


def test_janet_follows_van_der_westhuizen_and_lasenby():
    cell = randomise(rnnkit.JANETCell(I, H))
    x, c_prev = torch.randn(B, I), torch.randn(B, H)
    W_f, W_c = cell.weight_ih.chunk(2)
    U_f, U_c = cell.weight_hh.chunk(2)
    b_f = cell.bias_ih[:H] + cell.bias_hh[:H]
    b_c = cell.bias_ih[H:] + cell.bias_hh[H:]
    s = U_f @ c_prev.T + (W_f @ x.T) + b_f[:, None]  # column-vector form of the paper
    c_tilde = torch.tanh(U_c @ c_prev.T + W_c @ x.T + b_c[:, None])
    c = torch.sigmoid(s) * c_prev.T + (1 - torch.sigmoid(s - 1.0)) * c_tilde
    h, (state,) = cell(x, c_prev)
    torch.testing.assert_close(h, c.T)
    torch.testing.assert_close(state, c.T)


def test_janet_chrono_initialisation():
    t_max = 100
    cell = rnnkit.JANETCell(I, 2000, t_max=t_max)
    b_f = cell.bias_ih[:2000]
    assert b_f.min() >= 0.0 and b_f.max() <= torch.log(torch.tensor(t_max - 1.0)) + 1e-6
    assert b_f.std() > 0.5  # spread over spans 1..t_max, not a constant
    torch.testing.assert_close(cell.bias_ih[2000:], torch.zeros(2000))
    assert torch.all(rnnkit.JANETCell(I, H).bias_ih[:H] == 1.0)


def test_indrnn_recurrence_is_elementwise():
    cell = randomise(rnnkit.IndRNNCell(I, H, activation="tanh"))
    x, h = torch.randn(B, I), torch.randn(B, H)
    expected = torch.tanh(x @ cell.weight_ih.T + cell.bias_ih + cell.weight_hh * h + cell.bias_hh)
    torch.testing.assert_close(cell(x, h)[0], expected)
    # Unit j of h_t depends on unit j of h_{t-1} only.
    jacobian = torch.autograd.functional.jacobian(lambda h: cell(x, h)[0], h)  # (B, H, B, H)
    off_diagonal = jacobian[0, :, 0, :] * (1 - torch.eye(H))
    assert off_diagonal.abs().max() == 0


def test_indrnn_constraint_and_initialisation():
    cell = rnnkit.IndRNNCell(I, 1000, t_max=20)
    bound = 2 ** (1 / 20)
    assert cell.weight_hh.min() >= 0 and cell.weight_hh.max() <= bound  # u ~ U(0, 2^(1/t_max))
    assert cell.weight_hh.max() > 1.0  # ... reaching past 1, where the bound allows it
    assert rnnkit.IndRNNCell(I, 1000).weight_hh.max() <= 1.0  # U(0, 1) without t_max
    with torch.no_grad():
        cell.weight_hh.mul_(5.0).sub_(2.0)  # as if an optimiser step had pushed |u| past the bound
    model = torch.nn.Sequential(torch.nn.Linear(2, I), cell)
    rnnkit.apply_constraints(model)
    assert cell.weight_hh.abs().max() <= bound + 1e-7
    assert cell.weight_hh.abs().max() > bound - 1e-3  # clamped to the bound, not beyond it


def test_lstm_forget_bias_and_default_initialisation():
    cell = rnnkit.LSTMCell(I, H, forget_bias=1.0)
    total = cell.bias_ih + cell.bias_hh
    torch.testing.assert_close(total[H : 2 * H], torch.ones(H))
    torch.testing.assert_close(total[:H], torch.zeros(H))
    assert cell.weight_ih.abs().max() <= 1 / H**0.5


def test_layer_norm_makes_lstm_gates_invariant_to_input_scale():
    """With layer norm, scaling W_ih by a constant leaves the input contribution unchanged."""
    cell = randomise(rnnkit.LSTMCell(I, H, layer_norm=True))
    x, state = torch.randn(B, I), (torch.randn(B, H), torch.randn(B, H))
    before = cell(x, state)[0]
    with torch.no_grad():
        cell.weight_ih.mul_(7.0)
    torch.testing.assert_close(cell(x, state)[0], before, atol=1e-4, rtol=1e-4)


# ----------------------------------------------------------------------------- regularisers
@pytest.mark.parametrize("cls", [rnnkit.RNNCell, rnnkit.LSTMCell, rnnkit.GRUCell, rnnkit.JANETCell, rnnkit.IndRNNCell])
def test_dropout_regularisers_are_identity_in_eval_mode(cls):
    plain = cls(I, H)
    regularised = cls(I, H, recurrent_dropout=0.5, weight_dropout=0.5).eval()
    regularised.load_state_dict(plain.state_dict())
    x, state = torch.randn(B, I), random_state(plain, torch.float32)
    torch.testing.assert_close(regularised(x, state)[0], plain(x, state)[0])
    assert regularised.sample_noise(B, x) is NO_NOISE


@pytest.mark.parametrize("cls", [rnnkit.RNNCell, rnnkit.LSTMCell, rnnkit.GRUCell, rnnkit.JANETCell, rnnkit.IndRNNCell])
def test_regularisers_change_training_outputs(cls):
    plain = cls(I, H)
    for option in ("recurrent_dropout", "weight_dropout", "zoneout"):
        regularised = cls(I, H, **{option: 0.5}).train()
        regularised.load_state_dict(plain.state_dict())
        x, state = torch.randn(B, I), random_state(plain, torch.float32)
        assert not torch.allclose(regularised(x, state)[0], plain(x, state)[0]), option


def test_variational_noise_is_drawn_once_per_sequence():
    layer = rnnkit.Recurrent("lstm", I, H, recurrent_dropout=0.5, weight_dropout=0.5).train()
    cell = layer.layers[0].cell
    draws = []
    original = cell.sample_noise
    cell.sample_noise = lambda *args: draws.append(original(*args)) or draws[-1]
    layer(torch.randn(9, B, I))
    assert len(draws) == 1  # nine steps, one mask and one dropped W_hh
    noise = draws[0]
    assert set(noise.hidden_mask.unique().tolist()) <= {0.0, 2.0}
    assert (noise.weight_hh == 0).any() and noise.weight_hh.shape == cell.weight_hh.shape


def test_layer_equals_stepping_the_cell_by_hand_with_the_same_noise():
    layer = rnnkit.Recurrent("gru", I, H, recurrent_dropout=0.4, weight_dropout=0.3).train()
    cell = layer.layers[0].cell
    x = torch.randn(6, B, I)
    torch.manual_seed(5)
    output, _ = layer(x)
    torch.manual_seed(5)
    noise = cell.sample_noise(B, x)
    state, steps = None, []
    for x_t in x:
        h, state = cell(x_t, state, noise)
        steps.append(h)
    torch.testing.assert_close(output, torch.stack(steps))


def test_zoneout_keeps_previous_values_in_training_and_averages_in_eval():
    cell = rnnkit.GRUCell(I, 4000, zoneout=0.3)
    x, h = torch.randn(B, I), torch.randn(B, 4000)
    proposed = rnnkit.GRUCell(I, 4000)
    proposed.load_state_dict(cell.state_dict())
    new = proposed(x, h)[0]
    kept = (cell.train()(x, h)[0] == h).float().mean()
    assert abs(kept.item() - 0.3) < 0.02
    torch.testing.assert_close(cell.eval()(x, h)[0], 0.3 * h + 0.7 * new)


def test_noise_drop_hidden():
    mask = torch.tensor([[0.0, 2.0]])
    assert torch.equal(RecurrentNoise(hidden_mask=mask).drop_hidden(torch.ones(1, 2)), mask)
    assert torch.equal(NO_NOISE.drop_hidden(torch.ones(1, 2)), torch.ones(1, 2))


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: rnnkit.RNNCell(I, H, activation="sigmoid"), r"activation: expected one of \['tanh', 'relu'\], got 'sigmoid'"),
        (lambda: rnnkit.LSTMCell(I, H, recurrent_activation="nope"), r"recurrent_activation: expected one of"),
        (lambda: rnnkit.IndRNNCell(I, H, activation="gelu"), r"activation: expected one of \['relu', 'tanh'\]"),
        (lambda: rnnkit.LSTMCell(I, H, proj_size=H), r"proj_size: expected 0 or a value below hidden_size=5, got 5"),
        (lambda: rnnkit.GRUCell(I, 0), r"hidden_size: expected a positive int, got 0"),
        (lambda: rnnkit.LSTMCell(I, H, zoneout=1.0), r"zoneout: expected a float in \[0, 1\), got 1.0"),
        (lambda: rnnkit.RNNCell(I, H, layer_norm=True), r"layer_norm: not supported by RNNCell"),
        (lambda: rnnkit.JANETCell(I, H, layer_norm=True), r"layer_norm: not supported by JANETCell"),
        (lambda: rnnkit.JANETCell(I, H, t_max=1), r"t_max: expected a number above 2"),
    ],
)
def test_bad_constructor_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_step_inputs_name_argument_expected_and_received_shapes():
    cell = rnnkit.LSTMCell(I, H)
    with pytest.raises(ValueError, match=r"x_t: expected shape \(B, 4\), got \(3, 7\)"):
        cell(torch.randn(B, 7))
    with pytest.raises(ValueError, match=r"x_t: expected shape \(B, 4\), got \(2, 3, 4\)"):
        cell(torch.randn(2, B, I))
    with pytest.raises(ValueError, match=r"state.c: expected shape \(B=3, 5\), got \(3, 6\)"):
        cell(torch.randn(B, I), (torch.randn(B, H), torch.randn(B, 6)))
    with pytest.raises(ValueError, match=r"state: expected a tuple of 2 tensors \('h', 'c'\)"):
        cell(torch.randn(B, I), torch.randn(B, H))
    with pytest.raises(TypeError, match="x_t: expected a torch.Tensor, got list"):
        cell([[1.0] * I])


def test_every_registered_cell_is_covered_here():
    covered = {cls for cls, _ in CELL_CONFIGS}
    assert covered == set(rnnkit.CELLS.values())
