"""``rnnkit bench``: its records, its table and its errors (not its timings, which belong to benchmarks)."""

from __future__ import annotations

import json

import pytest

from cli_helpers import assert_one_line_error, rnnkit_here
from rnnkit.bench.measure import Shape, layer_flops
from rnnkit.cli import main


def test_bench_writes_one_record_per_cell_shape_and_mode(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--cells", "lstm,indrnn", "--shapes", "3x2x4,2x1x3", "--repeats", "1", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    records = data["records"]
    assert [(r["cell"], r["shape"]["T"], r["mode"]) for r in records] == [
        (cell, steps, mode) for cell in ("lstm", "indrnn") for steps in (3, 2) for mode in ("forward", "forward_backward")
    ]
    for record in records:
        seconds = record["seconds"]
        assert set(seconds) == {"rnnkit", "native", "naive", "gemm_floor"}
        assert all(seconds[name] > 0 for name in ("rnnkit", "naive", "gemm_floor"))
        assert record["speedup_over_naive"] == pytest.approx(seconds["naive"] / seconds["rnnkit"])
        assert record["fraction_of_gemm_floor"] == pytest.approx(seconds["gemm_floor"] / seconds["rnnkit"])
        if record["cell"] == "lstm":
            assert record["kernel"] == "native"
            assert record["ratio_to_native"] == pytest.approx(seconds["rnnkit"] / seconds["native"])
        else:
            assert seconds["native"] is None and record["ratio_to_native"] is None
            assert record["kernel"].startswith("loop")
        if record["mode"] == "forward_backward":
            assert record["saved_for_backward_bytes"]["rnnkit"] > 0
    assert data["machine"]["torch_threads"] >= 1
    table = capsys.readouterr().out
    assert "lstm   3x2x4" in table and "forward_backward" in table


def test_flops_count_the_recurrent_product_except_for_indrnn():
    shape = Shape(10, 2, 8)
    assert layer_flops("lstm", shape) == 2 * 20 * (8 * 32 + 8 * 32)
    assert layer_flops("indrnn", shape) == 2 * 20 * 8 * 8


@pytest.mark.parametrize(
    "arguments,message",
    [
        (["--shapes", "100x32"], "--shapes: expected TxBxH"),
        (["--shapes", "0x1x2"], "--shapes: expected TxBxH"),
        (["--cells", "lstm,transformer"], "--cells: expected names from"),
        (["--repeats", "0"], "--repeats: expected a positive integer"),
        (["--json", "/no/such/folder/out.json"], "--json: the folder"),
    ],
)
def test_bench_bad_input_is_one_line(arguments, message):
    assert_one_line_error(rnnkit_here("bench", *arguments), "rnnkit bench: error: ", message)


@pytest.mark.parametrize("cell", ["lstm", "gru", "janet"])
def test_generation_record_times_rnnkit_and_torch_nn_stepping(cell):
    import torch

    from rnnkit.bench.generation import GenerationShape, _NativeLanguageModel, generation_row, measure_generation
    from rnnkit.models.language_model import LanguageModel, LanguageModelConfig

    record = measure_generation(cell, GenerationShape(layers=2, hidden=8, characters=3), repeats=1)
    seconds = record["seconds_per_character"]
    assert record["mode"] == "generate" and record["model"] == {"layers": 2, "hidden": 8, "vocabulary": 65, "batch": 1}
    assert seconds["rnnkit"] > 0
    if cell == "janet":
        assert seconds["native"] is None and record["ratio_to_native"] is None
    else:
        assert record["ratio_to_native"] == pytest.approx(seconds["rnnkit"] / seconds["native"])
        # The twin computes what the rnnkit model computes, so the timings compare the same work.
        model = LanguageModel(65, LanguageModelConfig(cell=cell, hidden_size=8, num_layers=2)).eval()
        twin = _NativeLanguageModel(cell, model).eval()
        tokens = torch.tensor([[1], [4], [2]])
        expected, _, expected_state = model(tokens)
        got, _, state = twin(tokens)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
        for part, want in zip(state, expected_state):
            torch.testing.assert_close(part, want, atol=1e-5, rtol=1e-5)
    assert generation_row(record).startswith(cell)
