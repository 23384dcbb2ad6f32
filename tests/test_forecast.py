"""The forecast task: window slicing and the Informer split on synthetic rows whose values are their row numbers,
the scaler fitted on training rows only, the baselines and output distributions by hand, RevIN's invariance,
the decoder's two paths, bad CSV input, and the task end to end through the CLI on a noiseless sine wave."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import replace

import numpy
import pandas
import pytest
import torch

from cli_helpers import assert_one_line_error, rnnkit_here
from rnnkit.data.time_series import Series, read_series_csv
from rnnkit.data.windows import fraction_borders, split_windows
from rnnkit.errors import UserError
from rnnkit.models.forecast_baselines import LinearBaseline, naive, seasonal_naive
from rnnkit.models.forecast_outputs import ForecastOutput
from rnnkit.models.forecaster import Forecaster, ForecasterConfig

SMALL = ["--hidden-size", "32", "--batch-size", "16", "--lr", "0.01", "--dropout", "0", "--schedule", "constant",
         "--eval-every", "100", "--max-minutes", "0", "--epochs", "0", "--patience", "0", "--log-every", "20"]


def numbered(rows: int, columns: int = 1) -> Series:
    """A series whose value in column c of row r is r + 1000 c; no calendar."""
    values = numpy.arange(rows)[:, None] + 1000.0 * numpy.arange(columns)[None]
    return Series("numbered", numpy.arange(rows, dtype=float), values.astype(numpy.float32), numpy.zeros((rows, 0)))


def test_windows_forecast_only_their_split_and_read_back_into_the_one_before():
    windows = split_windows([numbered(50)], (20, 30, 40), 0, 0, input_len=4, horizon=2, targets=1)
    train, validation, test = windows["train"], windows["validation"], windows["test"]
    assert len(train) == 20 - 4 - 2 + 1  # Informer: len(rows) - seq_len - pred_len + 1, reading from row 0
    assert len(validation) == len(test) == 10 - 2 + 1  # forecasts start at rows 20..28 (30..38)
    first, last = test.batch([0]), test.batch([len(test) - 1])
    assert first.inputs[:, 0, 0].tolist() == [26, 27, 28, 29] and first.targets[:, 0, 0].tolist() == [30, 31]
    assert last.targets[:, 0, 0].tolist() == [38, 39]  # row 40 on is unused, as ETT's rows after 14,400
    assert [row for _, row in validation.origins()] == list(range(20, 29))
    every_train_target = torch.cat([b.targets.flatten() for b in train.batches(4)])
    assert every_train_target.max() == 19  # no training window forecasts a validation row


def test_several_series_split_each_on_its_own_and_no_window_crosses_them():
    one, two = numbered(30), numbered(20, 2)
    two.values = two.values[:, :1] + 500
    windows = split_windows([one, two], None, 0.2, 0.2, input_len=3, horizon=2, targets=1)
    assert fraction_borders(30, 0.2, 0.2) == (18, 24, 30) and fraction_borders(20, 0.2, 0.2) == (12, 16, 20)
    for split in ("train", "validation", "test"):
        for batch in windows[split].batches(100):
            rows = torch.cat([batch.inputs[..., 0], batch.targets[..., 0]])  # (L + H, B)
            assert ((rows[1:] - rows[:-1]) == 1).all()  # consecutive rows of one series, never a jump between series
    assert {number for number, _ in windows["test"].origins()} == {0, 1}


def write_csv(path, rows: list[list], header=("date", "value")):
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def hours(count: int, start: str = "2020-01-01") -> list[str]:
    return [str(time) for time in pandas.date_range(start, periods=count, freq="h")]


def test_the_scaler_sees_only_the_training_rows(tmp_path):
    from rnnkit.tasks import TASKS

    values = numpy.concatenate([numpy.arange(60.0), 1000 + numpy.arange(40.0)])  # validation and test far above
    path = write_csv(tmp_path / "series.csv", [[t, v] for t, v in zip(hours(100), values)])
    config = TASKS["forecast"].default_config()
    config.dataset.data, config.dataset.input_len, config.dataset.horizon = str(path), 4, 2
    config.train.batch_size = 4
    session = TASKS["forecast"].start(config, _single(), torch.device("cpu"))
    assert config.dataset.val_fraction == 0.1 and config.dataset.test_fraction == 0.2  # train = rows [0, 70)
    train_rows = values[:70]
    assert session.layout.scaler.mean[0] == pytest.approx(train_rows.mean())
    assert session.layout.scaler.std[0] == pytest.approx(train_rows.std())
    test_batch = session.windows["test"].batch([0])
    expected = (values[80 - 4 : 80] - train_rows.mean()) / train_rows.std()
    numpy.testing.assert_allclose(test_batch.inputs[:, 0, 0].numpy(), expected, rtol=1e-5)


def _single():
    from rnnkit.train.distributed import SINGLE_PROCESS

    return SINGLE_PROCESS


def test_baselines_by_hand():
    history = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).view(6, 1, 1)
    assert naive(history, 3).flatten().tolist() == [6, 6, 6]
    assert seasonal_naive(history, 5, season=2).flatten().tolist() == [5, 6, 5, 6, 5]
    with pytest.raises(ValueError, match="season of 7"):
        seasonal_naive(history, 2, 7)
    # A straight line continues straight: the least-squares map learns it from windows of lines of any level and slope.
    levels, slopes = torch.randn(50) * 5, torch.randn(50)
    lines = (levels[None, :] + torch.arange(9.0)[:, None] * slopes[None, :]).unsqueeze(-1)  # (L + H = 9, N, 1)
    linear = LinearBaseline(6, 3).fit(lines[:6], lines[6:])
    torch.testing.assert_close(linear(history), torch.tensor([7.0, 8.0, 9.0]).view(3, 1, 1), atol=1e-3, rtol=0)


def test_interval_coverage_of_a_known_distribution_is_its_level():
    from rnnkit.metrics import central_quantiles

    actual = torch.randn(200_000)
    for kind, parameters in [("gaussian", torch.tensor([0.0, 1.0])), ("student_t", torch.tensor([0.0, 1.0, 1e6]))]:
        output = ForecastOutput(kind)
        for level in (0.8, 0.9):
            lower, upper = (output.quantile(parameters.expand(actual.shape[0], -1), q) for q in central_quantiles(level))
            coverage = float(((actual >= lower) & (actual <= upper)).float().mean())
            assert coverage == pytest.approx(level, abs=0.005), (kind, level)
    t = ForecastOutput("student_t")
    assert float(t.quantile(torch.tensor([1.0, 2.0, 3.0]), 0.9)) == pytest.approx(1 + 2 * 1.637744, rel=1e-5)


def test_losses_by_hand_and_units_move_every_parameter():
    quantile = ForecastOutput("quantile", (0.1, 0.5, 0.9))
    parameters = torch.tensor([[-1.0, 0.0, 2.0]])
    # y = 1: errors 2, 1, -1 -> 0.1*2 + 0.5*1 + max(0.9*-1, -0.1*-1) = 0.2 + 0.5 + 0.1
    assert float(quantile.loss(parameters, torch.tensor([1.0]))) == pytest.approx(0.8)
    gaussian = ForecastOutput("gaussian")
    assert float(gaussian.loss(torch.tensor([[1.0, 2.0]]), torch.tensor([3.0]))) == pytest.approx(
        0.5 * math.log(2 * math.pi * 4) + 0.5)
    ordered = quantile.parameters(torch.randn(100, 3))
    assert (ordered[:, 1:] >= ordered[:, :-1]).all()  # no crossing quantiles
    mean, std = torch.tensor([10.0]), torch.tensor([3.0])
    for output, raw in [(gaussian, torch.tensor([[0.5, 0.2]])), (ForecastOutput("student_t"), torch.tensor([[0.5, 0.2, 1.0]])),
                        (quantile, torch.tensor([[-1.0, 0.0, 2.0]]))]:
        parameters = output.parameters(raw)
        moved = output.rescale(parameters, mean, std)
        for level in (0.1, 0.9):
            torch.testing.assert_close(output.quantile(moved, level), output.quantile(parameters, level) * std + mean)
        torch.testing.assert_close(output.point(moved), output.point(parameters) * std + mean)


@pytest.mark.parametrize("architecture, highway", [("direct", False), ("seq2seq", False), ("direct", True)])
@pytest.mark.parametrize("distribution", ["point", "gaussian"])
def test_revin_makes_the_forecast_follow_the_level_and_scale_of_the_window(architecture, highway, distribution):
    config = ForecasterConfig(cell="gru", hidden_size=8, revin=True, architecture=architecture, distribution=distribution,
                              highway=highway)
    model = Forecaster(columns=2, targets=1, calendar=1, input_len=10, horizon=3, config=config).eval()
    with torch.no_grad():
        for parameter in model.head.parameters():  # the highway starts it at zero; any weights will do here
            parameter.normal_()
        model.revin_weight.uniform_(0.5, 1.5)
        model.revin_bias.uniform_(-0.5, 0.5)
    history, calendar = torch.randn(10, 4, 3), torch.randn(3, 4, 1)
    moved = history.clone()
    moved[..., :2] = history[..., :2] * 5 + 7  # the columns only; the calendar stays
    before, _, _ = model(history, future_inputs=calendar)
    after, _, _ = model(moved, future_inputs=calendar)
    output = model.output
    torch.testing.assert_close(output.point(after), output.point(before) * 5 + 7, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("architecture", ["direct", "seq2seq", "segrnn"])
@pytest.mark.parametrize("revin, subtract_last", [(True, False), (True, True), (False, True)])
def test_a_normalised_model_is_the_plain_model_on_the_normalised_window(architecture, revin, subtract_last):
    """RevIN (its affine map the identity) centres on the window's mean, --subtract-last on its last value, and only
    RevIN divides by the standard deviation: the forecast is the plain model's on the normalised window, moved back."""
    torch.manual_seed(0)
    shape = dict(columns=2, targets=2, calendar=1, input_len=8, horizon=4)
    config = ForecasterConfig(cell="gru", hidden_size=8, architecture=architecture, segment_length=4, highway=True,
                              revin=revin, subtract_last=subtract_last)
    model = Forecaster(**shape, config=config).eval()
    plain = Forecaster(**shape, config=replace(config, revin=False, subtract_last=False)).eval()
    with torch.no_grad():
        for parameter in model.parameters():  # the highway and the read-out start at zero; any weights will do here
            parameter.normal_(0, 0.3)
        if revin:
            model.revin_weight.fill_(1)
            model.revin_bias.zero_()
        plain.load_state_dict(model.state_dict(), strict=False)
        history, calendar = torch.randn(8, 3, 3) * 4 + 2, torch.randn(4, 3, 1)
        values = history[..., :2]
        centre = values[-1:] if subtract_last else values.mean(0, keepdim=True)
        scale = values.std(0, unbiased=False, keepdim=True) if revin else torch.ones_like(centre)
        normalised = torch.cat([(values - centre) / scale, history[..., 2:]], dim=-1)
        expected = plain.output.point(plain(normalised, future_inputs=calendar)[0]) * scale + centre
        forecast = model.output.point(model(history, future_inputs=calendar)[0])
    torch.testing.assert_close(forecast, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("revin", [False, True])
@pytest.mark.parametrize("channel_independent", [False, True])
def test_the_highway_starts_at_the_least_squares_linear_forecast(revin, channel_independent):
    """Windows of straight lines of any level and slope: the least-squares highway continues them exactly,
    so with the recurrent read-out silenced the model's forecast is the line's continuation."""
    config = ForecasterConfig(cell="gru", hidden_size=8, highway=True, revin=revin,
                              channel_independent=channel_independent)
    model = Forecaster(columns=2, targets=2, calendar=0, input_len=6, horizon=3, config=config).eval()
    levels, slopes = torch.randn(2, 60, 2) * 3
    lines = levels + torch.arange(9.0).view(9, 1, 1) * slopes  # (L + H, N, 2)
    model.start_highway(lines[:6], lines[6:])
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
    forecast, _, _ = model(lines[:6, :5], future_inputs=torch.zeros(3, 5, 0))
    torch.testing.assert_close(model.output.point(forecast), lines[6:, :5], atol=2e-3, rtol=1e-3)


@pytest.mark.parametrize("cell, highway", [("lstm", False), ("gru", False), ("gru", True)])
def test_the_teacher_forced_decoder_equals_the_autoregressive_one_fed_its_own_forecasts(cell, highway):
    config = ForecasterConfig(cell=cell, hidden_size=8, num_layers=2, architecture="seq2seq", revin=True, highway=highway)
    model = Forecaster(columns=3, targets=2, calendar=2, input_len=7, horizon=5, config=config)
    with torch.no_grad():
        for parameter in model.head.parameters():  # the highway starts the read-out at zero; any weights will do here
            parameter.normal_()
    history, calendar = torch.randn(7, 4, 5), torch.randn(5, 4, 2)
    model.eval()
    free_running, _, _ = model(history, future_inputs=calendar)
    model.train()  # dropout is 0: train mode only switches the decoder to teacher forcing
    forced, _, _ = model(history, future_inputs=calendar, targets=free_running.squeeze(-1).detach())
    torch.testing.assert_close(forced, free_running, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- reading CSV files
@pytest.mark.parametrize("rows, message", [
    ([["2020-01-01 00:00:00", "1"], ["2020-01-01 01:00:00", ""]], "line 3, column 'value': the value is missing; fill the gaps with --fill-missing"),
    ([["2020-01-01 00:00:00", "1"], ["2020-01-01 01:00:00", "n/a"]], "line 3, column 'value': 'n/a' is not a number"),
    ([["2020-01-01 00:00:00", "1"], ["2020-01-01 00:00:00", "2"]], "line 3, column 'date': 2020-01-01 00:00:00 repeats the time before it"),
    ([["2020-01-01 01:00:00", "1"], ["2020-01-01 00:00:00", "2"]], "line 3, column 'date': 2020-01-01 00:00:00 is earlier than the row before it"),
    ([["2020-01-01 00:00:00", "1"], ["yesterday", "2"]], "line 3, column 'date': 'yesterday' is not a date"),
])
def test_bad_csv_cells_are_named_by_line_and_column(tmp_path, rows, message):
    path = write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        read_series_csv(str(path), "date", ("value",))


def test_unknown_columns_list_the_ones_that_exist_and_gaps_fill_only_when_asked(tmp_path):
    path = write_csv(tmp_path / "gaps.csv", [[t, v] for t, v in zip(hours(4), ["1", "", "", "4"])])
    with pytest.raises(UserError, match="has no column 'load'; its columns are date, value"):
        read_series_csv(str(path), "date", ("load",))
    (series,), _, step = read_series_csv(str(path), "date", ("value",), fill="interpolate")
    assert series.values[:, 0].tolist() == [1, 2, 3, 4] and step == 3600
    (series,), _, _ = read_series_csv(str(path), "date", ("value",), fill="ffill")
    assert series.values[:, 0].tolist() == [1, 1, 1, 4]


def sine_csv(path, rows: int = 600, period: int = 24, series: int = 1):
    """A noiseless sine wave of ``period`` hours (with --series-column data, ``series`` phase-shifted copies)."""
    lines = []
    for number in range(series):
        for t, time in enumerate(hours(rows)):
            lines.append([time, f"{math.sin(2 * math.pi * t / period + number):.6f}"] + ([f"s{number}"] if series > 1 else []))
    return write_csv(path, lines, ("date", "value", "id") if series > 1 else ("date", "value"))


@pytest.fixture(scope="module")
def sine_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sine")
    run = folder / "run"
    result = rnnkit_here("train", "forecast", "--data", sine_csv(folder / "sine.csv"), "--time-column", "date",
                    "--input-len", "24", "--horizon", "12", "--distribution", "gaussian", *SMALL, "--max-steps", "300",
                    "--out", run, threads=1)
    assert result.returncode == 0, result.stderr
    return folder


def test_a_noiseless_sine_wave_is_forecast_closely_and_beats_every_baseline_but_its_season(sine_run):
    summary = json.loads((sine_run / "run" / "summary.json").read_text())
    assert summary["test"]["mse"] < 0.01, summary["test"]
    assert summary["baselines"]["naive"]["mse"] > 0.5 and summary["baselines"]["linear"]["mse"] < 1e-4
    assert summary["baselines"]["seasonal_naive_24"]["mse"] < 1e-8  # the wave repeats every 24 hours exactly
    assert {"coverage_80", "coverage_90"} <= summary["test"].keys()


def test_predict_forecasts_after_the_end_of_the_file_with_intervals(sine_run, tmp_path):
    result = rnnkit_here("predict", "--checkpoint", sine_run / "run", "--horizon", "6", "--out", tmp_path / "next")
    assert result.returncode == 0, result.stderr
    assert f"wrote {tmp_path / 'next.csv'}" in result.stderr and f"wrote {tmp_path / 'next.png'}" in result.stderr
    assert result.stdout.startswith(f"{sine_run / 'sine.csv'}: sine.csv value: 6 steps from {hours(601)[600]}: ")
    rows = list(csv.DictReader(open(tmp_path / "next.csv")))
    assert [row["time"] for row in rows] == hours(606)[600:]
    truth = [math.sin(2 * math.pi * t / 24) for t in range(600, 606)]
    assert max(abs(float(row["forecast"]) - value) for row, value in zip(rows, truth)) < 0.2
    assert all(float(r["lo-90"]) <= float(r["lo-80"]) <= float(r["forecast"]) <= float(r["hi-80"]) <= float(r["hi-90"])
               for r in rows)
    assert (tmp_path / "next.png").read_bytes()[:4] == b"\x89PNG"


def test_backtest_and_evaluate_reproduce_the_test_metrics(sine_run, tmp_path):
    summary = json.loads((sine_run / "run" / "summary.json").read_text())
    result = rnnkit_here("predict", "--checkpoint", sine_run / "run", "--backtest", "--out", tmp_path / "bt")
    assert result.returncode == 0, result.stderr
    assert f"MSE {summary['test']['mse']:.4f}" in result.stdout
    rows = list(csv.DictReader(open(tmp_path / "bt.csv")))
    assert len(rows) == 12 * (120 - 12 + 1)  # every test window (the last 120 rows) times the horizon
    squared = [(float(r["forecast"]) - float(r["actual"])) ** 2 for r in rows]
    assert sum(squared) / len(squared) < 0.01
    result = rnnkit_here("evaluate", "--checkpoint", sine_run / "run")
    assert f"evaluation MSE {summary['test']['mse']:.4f}" in result.stdout
    assert "baseline linear: MSE" in result.stdout


def test_one_global_model_learns_several_series(tmp_path):
    path = sine_csv(tmp_path / "many.csv", rows=200, series=3)
    result = rnnkit_here("train", "forecast", "--data", path, "--series-column", "id", "--input-len", "24", "--horizon", "6",
                    *SMALL, "--max-steps", "10", "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    assert "3 series" in result.stderr
    result = rnnkit_here("predict", "--checkpoint", tmp_path / "run", "--out", tmp_path / "next")
    rows = list(csv.DictReader(open(tmp_path / "next.csv")))
    assert [row["series"] for row in rows] == ["s0"] * 6 + ["s1"] * 6 + ["s2"] * 6


@pytest.mark.parametrize("arguments, message", [
    (["--dataset", "ettm1"], "--dataset: expected one of etth1, etth2, airline, sunspots, got 'ettm1'"),
    (["--target", "OT"], "--target, --covariates and --series-column describe your own --data file"),
    (["--data", "{csv}", "--target", "load"], "--target/--covariates: {csv} has no column 'load'; its columns are date, value"),
    (["--data", "{csv}", "--input-len", "500"], "hold no window of --input-len 500 + --horizon 24 = 524 rows"),
    (["--distribution", "poisson"], "--distribution: expected one of point, gaussian, student_t, quantile"),
    (["--data", "{missing}"], "--data: {missing}: no such file"),
])
def test_bad_options_are_one_line(tmp_path, arguments, message):
    paths = {"csv": sine_csv(tmp_path / "sine.csv", rows=100), "missing": tmp_path / "missing.csv"}
    arguments = [str(a).format(**paths) for a in arguments]
    result = rnnkit_here("train", "forecast", *arguments, "--out", tmp_path / "run")
    assert_one_line_error(result, message.format(**paths))
    assert not (tmp_path / "run").exists()


def test_the_python_api_fits_a_dataframe_and_predicts_like_the_command(tmp_path):
    from rnnkit.tasks.forecast import RecurrentForecaster

    frame = pandas.read_csv(sine_csv(tmp_path / "sine.csv", rows=300))
    model = RecurrentForecaster(input_len=24, horizon=6, hidden_size=16, max_steps=150, max_minutes=0.0, epochs=0.0,
                                lr=0.01, dropout=0.0, eval_every=50, work_dir=str(tmp_path / "work"))
    model.fit(frame, time_column="date", target="value")
    assert model.summary["test"]["mse"] < model.summary["baselines"]["naive"]["mse"]
    forecast = model.predict(4)
    assert list(forecast.columns) == ["series", "column", "time", "forecast"] and len(forecast) == 4
    assert [str(time) for time in forecast["time"]] == hours(304)[300:]
    loaded = RecurrentForecaster.load(str(tmp_path / "work" / "run"))
    pandas.testing.assert_frame_equal(loaded.predict(4), forecast, check_exact=False, atol=1e-6)
    backtest, metrics = loaded.backtest()
    assert metrics["mse"] == pytest.approx(model.summary["test"]["mse"], rel=1e-5)
    assert len(backtest) == 6 * (60 - 6 + 1) and "actual" in backtest.columns
    with pytest.raises(UserError, match="n: expected 1 to the trained horizon 6, got 7"):
        model.predict(7)
    with pytest.raises(UserError, match="hiden_size: not an option"):
        RecurrentForecaster(hiden_size=3)


def test_quantile_models_report_only_the_intervals_their_levels_bound(tmp_path):
    result = rnnkit_here("train", "forecast", "--data", sine_csv(tmp_path / "sine.csv", rows=200), "--input-len", "24",
                    "--horizon", "6", "--distribution", "quantile", "--quantiles", "0.1", "0.5", "0.9", *SMALL,
                    "--max-steps", "5", "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    test = json.loads((tmp_path / "run" / "summary.json").read_text())["test"]
    assert "coverage_80" in test and "coverage_90" not in test  # 0.05 and 0.95 were not trained
    result = rnnkit_here("predict", "--checkpoint", tmp_path / "run", "--out", tmp_path / "next")
    assert result.returncode == 0, result.stderr
    assert open(tmp_path / "next.csv").readline().strip() == "series,column,time,forecast,lo-80,hi-80"
    assert ForecastOutput("quantile", (0.5,)).has_quantile(0.5) and not ForecastOutput("point").has_quantile(0.5)


def test_predict_from_python_gives_the_commands_records(sine_run):
    from rnnkit.tasks import load_run

    model = load_run(str(sine_run / "run"))
    [record] = model.predict([str(sine_run / "sine.csv")], horizon=3)
    [forecast] = record["forecasts"]
    assert forecast["series"] == "sine.csv" and forecast["times"] == hours(603)[600:]
    assert {"forecast", "lo-80", "hi-80", "lo-90", "hi-90"} <= forecast.keys() and len(forecast["forecast"]) == 3
    [backtest] = model.predict([str(sine_run / "sine.csv")], backtest=True)
    assert backtest["windows"] == 120 - 12 + 1 and backtest["metrics"]["mse"] < 0.01
    [missing] = model.predict(["no-such.csv"])
    assert missing == {"error": "input 1: --data: no-such.csv: no such file"}


def test_the_python_api_leaves_no_temporary_folder_and_reads_frames_without_files(tmp_path, monkeypatch):
    import tempfile

    from rnnkit.tasks.forecast import RecurrentForecaster

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # every temporary folder goes here, to be counted
    frame = pandas.read_csv(sine_csv(tmp_path / "sine.csv", rows=120))
    model = RecurrentForecaster(input_len=12, horizon=3, hidden_size=8, max_steps=3, max_minutes=0.0, epochs=0.0,
                                eval_every=3)
    model.fit(frame, time_column="date", target="value")
    assert len(model.predict(3)) == 3 and len(model.backtest(frame)[0]) > 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["sine.csv"]


def test_the_old_import_still_works_with_a_warning():
    import rnnkit

    with pytest.warns(DeprecationWarning, match="import it from rnnkit.tasks.forecast"):
        old = rnnkit.RecurrentForecaster
    from rnnkit.tasks.forecast import RecurrentForecaster

    assert old is RecurrentForecaster and "RecurrentForecaster" not in rnnkit.__all__


# ----------------------------------------------------------------------------- SegRNN
def _segment_model(cell: str = "gru"):
    from rnnkit.models.segment_rnn import SegmentRecurrent

    torch.manual_seed(0)
    config = ForecasterConfig(cell=cell, hidden_size=6, num_layers=1)
    return SegmentRecurrent(config, input_len=8, horizon=6, segment_length=2, channels=3, width=1).eval()


@pytest.mark.parametrize("cell", ["gru", "lstm", "indrnn"])
def test_segments_in_and_parallel_decoding_equal_stepping_the_cell_by_hand(cell):
    """Each row read two steps at a time (4 segments), then each of the 3 horizon segments decoded on its own from
    the final state: the same forecast as the batched, parallel forward."""
    model = _segment_model(cell)
    values, channels = torch.randn(8, 6), torch.tensor([0, 1, 2, 0, 1, 2])  # 2 windows of 3 channels
    with torch.no_grad():
        forecast, _ = model(values)  # (6, 6, 1)
        step = model.rnn.cells[0]
        for row in range(6):
            state = None
            for n in range(4):
                segment = values[2 * n : 2 * n + 2, row].view(1, 2)
                _, state = step(model.embed(segment), state)  # a cell step: (h_t, the new state)
            for m in range(3):
                decoder_input = torch.cat([model.position[m], model.channel[channels[row]]]).view(1, -1)
                hidden, _ = step(decoder_input, state)
                torch.testing.assert_close(model.head(hidden).view(2), forecast[2 * m : 2 * m + 2, row, 0],
                                           atol=1e-5, rtol=1e-5)


def test_segrnn_reads_each_column_on_its_own_with_one_set_of_weights():
    torch.manual_seed(0)
    config = ForecasterConfig(cell="gru", hidden_size=8, architecture="segrnn", segment_length=4, highway=False, revin=True)
    model = Forecaster(columns=3, targets=3, calendar=2, input_len=12, horizon=8, config=config).eval()
    history, calendar = torch.randn(12, 4, 5), torch.randn(8, 4, 2)
    with torch.no_grad():
        forecast, _, _ = model(history, future_inputs=calendar)  # (8, 4, 3, 1)
        changed = history.clone()
        changed[:, :, 2] = 50 * torch.randn(12, 4)  # another column 2: columns 0 and 1 forecast what they did
        moved, _, _ = model(changed, future_inputs=calendar)
        torch.testing.assert_close(moved[:, :, :2], forecast[:, :, :2])
        assert not torch.allclose(moved[:, :, 2], forecast[:, :, 2])
        order = [2, 0, 1]  # columns permuted, and their channel embeddings with them: forecasts permuted
        model.segments.channel.copy_(model.segments.channel[order])
        permuted, _, _ = model(torch.cat([history[..., order], history[..., 3:]], dim=-1), future_inputs=calendar)
        torch.testing.assert_close(permuted, forecast[:, :, order])


def test_a_segment_length_that_does_not_divide_the_window_is_one_line(tmp_path):
    path = sine_csv(tmp_path / "sine.csv", rows=200)
    result = rnnkit_here("train", "forecast", "--data", path, "--architecture", "segrnn", "--input-len", "20",
                         "--horizon", "12", "--segment-length", "8", "--out", tmp_path / "run")
    assert_one_line_error(result, "--segment-length: 8 must divide --input-len (20) and --horizon (12)")
    assert not (tmp_path / "run").exists()


def test_segrnn_learns_a_seasonal_series_far_better_than_naive(tmp_path):
    run = tmp_path / "run"
    result = rnnkit_here("train", "forecast", "--data", sine_csv(tmp_path / "sine.csv", rows=400), "--input-len", "24",
                    "--horizon", "12", "--architecture", "segrnn", "--segment-length", "6", "--no-highway", *SMALL,
                    "--max-steps", "200", "--out", run, threads=1)
    assert result.returncode == 0, result.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test"]["mse"] < 0.05 < summary["baselines"]["naive"]["mse"] / 10
