"""rnnkit.inspect: the probes measure the true ∂L/∂h_t, recording changes nothing, and the commands
write finite numbers and figures, or fail with one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from cli_helpers import TINY, assert_one_line_error, make_text, rnnkit_here
from rnnkit import Recurrent
from rnnkit.inspect import gate_statistics, record
from rnnkit.tasks import restore_session
from rnnkit.train.checkpoint import load_checkpoint, save_checkpoint

SMALL_ADDING = ["--hidden-size", "8", "--batch-size", "8", "--seq-len", "12", "--max-minutes", "0", "--max-steps", "3",
                "--eval-every", "3", "--validation-size", "16", "--test-size", "16"]


def unrolled_gradients(layer: Recurrent, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """∂L/∂h_t by stepping the cell by hand and keeping every h_t: the definition the probes must match."""
    cell = layer.cells[0]
    state = cell.initial_state(x.shape[1], dtype=x.dtype)
    hidden = []
    for x_t in x:
        _, state = cell(x_t, state)
        state[0].retain_grad()
        hidden.append(state[0])
    loss = hidden[-1].pow(2).sum() + 0.5 * hidden[len(hidden) // 2].sum()
    loss.backward()
    return loss, [h.grad for h in hidden]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "janet", "indrnn"])
def test_probes_measure_the_gradient_with_respect_to_every_hidden_state(cell):
    layer = Recurrent(cell, 3, 5).double()
    x = torch.randn(9, 2, 3, dtype=torch.float64)
    _, expected = unrolled_gradients(layer, x)
    with record(layer, probe_gradients=True) as recording:
        output, _ = layer(x)
        (output[-1].pow(2).sum() + 0.5 * output[len(x) // 2].sum()).backward()
    norms = recording.gradient_norms()  # (T, B)
    torch.testing.assert_close(norms, torch.stack([g.norm(dim=-1) for g in expected]))


@pytest.mark.parametrize("cell", ["lstm", "gru", "janet"])
def test_recording_runs_the_same_model(cell):
    layer = Recurrent(cell, 3, 6, num_layers=2)
    x = torch.randn(7, 4, 3)
    expected, _ = layer(x)
    with record(layer, layer=0) as recording:
        output, _ = layer(x)
    torch.testing.assert_close(output, expected)
    gates = recording.gate_values()
    assert set(gates) == set(layer.cells[0].gate_names) and len(recording.states) == 7
    for values in gates.values():
        assert values.shape == (7, 4, 6) and ((values > 0) & (values < 1)).all()
    assert all(cell.gate_observer is None for cell in layer.cells)  # the hooks are gone afterwards
    assert all(sub.step_hook is None for sub in layer.layers)


def test_gate_statistics_count_saturation():
    gates = {"forget": torch.tensor([0.05, 0.5, 0.95, 0.99]).view(4, 1, 1)}
    stats = gate_statistics(gates)["forget"]
    assert stats["fraction_below_0.1"] == 0.25 and stats["fraction_above_0.9"] == 0.5
    assert sum(stats["histogram"]) == pytest.approx(1.0) and len(stats["mean_over_time"]) == 4


def test_gradients_of_a_saturated_tanh_rnn_vanish_with_distance():
    torch.manual_seed(0)
    layer = Recurrent("rnn", 2, 16)
    with torch.no_grad():
        layer.cells[0].weight_ih.mul_(40)  # large pre-activations: tanh saturated, tanh' ~ 0
    x = torch.rand(30, 8, 2)
    with record(layer, probe_gradients=True) as recording:
        output, _ = layer(x)
        output[-1].sum().backward()
    norms = recording.gradient_norms().mean(1)
    assert torch.isfinite(norms).all()
    assert float(norms[-5]) < 1e-2 * float(norms[-1])
    assert float(norms[0]) < 1e-6 * float(norms[-1])


# ----------------------------------------------------------------------------- the commands
@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("inspect")
    made = {}
    for cell in ("lstm", "rnn"):
        made[cell] = root / cell
        result = rnnkit_here("train", "adding", "--cell", cell, *SMALL_ADDING, "--out", made[cell])
        assert result.returncode == 0, result.stderr
    made["charlm"] = root / "charlm"
    text = make_text(root / "sonnet.txt")
    result = rnnkit_here("train", "--data", text, *TINY, "--max-steps", "2", "--eval-every", "2", "--out", made["charlm"])
    assert result.returncode == 0, result.stderr
    return made


def test_grad_flow_compares_checkpoints_and_fresh_cells(runs, tmp_path):
    out = tmp_path / "flow"
    result = rnnkit_here("inspect", "grad-flow", "--checkpoint", runs["lstm"], runs["rnn"], "--cells", "gru", "indrnn",
                    "--task", "adding", "--seq-len", "20", "--batch-size", "4", "--out", out)
    assert result.returncode == 0, result.stderr
    assert (out / "grad_flow.png").stat().st_size > 1000
    data = json.loads((out / "grad_flow.json").read_text())
    lengths = [len(model["norms"]) for model in data["models"]]
    assert lengths == [12, 12, 20, 20]
    assert all(value >= 0 and value == value for model in data["models"] for value in model["norms"])
    rows = (out / "grad_flow.csv").read_text().splitlines()
    assert len(rows) == 21 and rows[0].startswith("step,lstm")


def _lstm_gates_by_hand(cell, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
    """i, f, o of an LSTM cell over (T, B, I) inputs, from its weights and equations, without the cell's step."""
    h = torch.zeros(inputs.shape[1], cell.hidden_size)
    c = torch.zeros_like(h)
    gates = {"input": [], "forget": [], "output": []}
    for x_t in inputs:
        i, f, g, o = (x_t @ cell.weight_ih.t() + cell.bias_ih + h @ cell.weight_hh.t() + cell.bias_hh).chunk(4, dim=1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g
        h = o * torch.tanh(c)
        for name, value in (("input", i), ("forget", f), ("output", o)):
            gates[name].append(value)
    return {name: torch.stack(values) for name, values in gates.items()}  # (T, B, H)


def test_gates_of_a_trained_lstm(runs, tmp_path):
    # A copy of the trained run with sharper gates: after 3 steps they sit near 0.5, where a wrong
    # saturation threshold would still count nothing and pass.
    run = tmp_path / "sharp"
    shutil.copytree(runs["lstm"], run)
    checkpoint = load_checkpoint(run)
    for name in ("rnn.layers.0.cell.weight_ih", "rnn.layers.0.cell.weight_hh"):
        checkpoint.model[name] = checkpoint.model[name] * 6
    save_checkpoint(run, checkpoint)
    result = rnnkit_here("inspect", "gates", "--checkpoint", run, "--batch-size", "4", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "gates.json").read_text())
    _, session = restore_session(str(run))
    with torch.no_grad():  # the first 4 test sequences, which the command reads
        expected = _lstm_gates_by_hand(session.model.rnn.cells[0], session.inspection_batch(4).inputs)
    assert set(data["gates"]) == set(expected)
    everything = torch.cat([values.flatten() for values in expected.values()])
    assert 0.01 < float((everything < 0.1).float().mean()) and 0.01 < float((everything > 0.9).float().mean())
    for name, values in expected.items():
        stats = data["gates"][name]
        assert stats["fraction_below_0.1"] == pytest.approx(float((values < 0.1).float().mean()), abs=1e-6)
        assert stats["fraction_above_0.9"] == pytest.approx(float((values > 0.9).float().mean()), abs=1e-6)
        assert stats["mean_over_time"] == pytest.approx(values.mean(dim=(1, 2)).tolist(), abs=1e-5)
    assert (tmp_path / "gates.png").is_file() and not (tmp_path / "unit.png").exists()


def test_gates_of_a_char_lm_also_draw_a_unit_over_text(runs, tmp_path):
    result = rnnkit_here("inspect", "gates", "--checkpoint", runs["charlm"], "--length", "50", "--unit", "3", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    unit = json.loads((tmp_path / "unit.json").read_text())
    assert unit["unit"] == 3 and len(unit["text"]) == len(unit["values"]) == 50
    assert (tmp_path / "unit.png").stat().st_size > 1000


@pytest.mark.parametrize("arguments, fragments", [
    (["gates", "--checkpoint", "{rnn}"], ("no gates", "lstm, gru or janet")),
    (["grad-flow", "--cells", "transformer"], ("--cells", "unknown cell 'transformer'")),
    (["grad-flow"], ("--checkpoint", "--cells")),
    (["grad-flow", "--cells", "lstm", "--task", "charlm", "--seq-len", "5"], ("--seq-len", "charlm")),
    (["gates", "--checkpoint", "{lstm}", "--layer", "3"], ("--layer", "1 recurrent layer")),
    (["gates", "--checkpoint", "{charlm}", "--unit", "99"], ("--unit", "16 hidden units")),
    (["views"], ("unknown view 'views'",)),
])
def test_inspect_rejects_bad_input_in_one_line(runs, tmp_path, arguments, fragments):
    arguments = [a.format(**{name: str(path) for name, path in runs.items()}) for a in arguments]
    result = rnnkit_here("inspect", *arguments, "--out", tmp_path) if arguments[0] != "views" else rnnkit_here("inspect", *arguments)
    assert_one_line_error(result, *fragments)
