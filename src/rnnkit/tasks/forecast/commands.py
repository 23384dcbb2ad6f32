"""What a trained forecaster is used for: ``rnnkit predict`` (the forecast after the end of a file, or a backtest at
every test window) and ``rnnkit evaluate`` (the test metrics and baselines again).

    rnnkit predict --checkpoint RUN [FILE ...] [--data FILE] [--horizon H] [--backtest] [--out PREFIX]

Each input is a CSV file with the run's columns (default: the run's own data). Its record
holds one forecast per series and column (``times``, ``forecast`` and, for probabilistic
models, ``lo-80 hi-80 lo-90 hi-90``, the names neuralforecast uses; a backtest adds
``origin`` and ``actual``, and the metrics), in the file's own units. The command prints the
records and writes them to PREFIX.csv (one row per series, column and step) and PREFIX.png
(history, forecast and intervals; with several inputs PREFIX-1, PREFIX-2, ...).
``rnnkit.models.forecasting`` does the forecasting; this file writes and draws.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rnnkit.errors import UserError
from rnnkit.figures import forecast_png
from rnnkit.tasks.base import CheckpointOptions, Command
from rnnkit.tasks.predict import PredictOptions, Predictor, predict_inputs, print_results
from rnnkit.train.files import atomic_write_bytes, atomic_write_text

PANELS = 6  # series x columns drawn at most
VALUES = ("forecast", "lo-80", "hi-80", "lo-90", "hi-90", "actual")  # the numbers of a step, in order


@dataclass
class ForecastOptions(PredictOptions):
    data: str | None = None
    """A CSV file to forecast from, with the run's columns (as an INPUT; default: the run's own data)."""
    horizon: int = 0
    """Steps to forecast, at most the trained --horizon (0: the trained horizon)."""
    backtest: bool = False
    """Forecast at every test window of the file instead (split as in training), with the actual values."""
    out: str = "forecast"
    """Prefix of the files written: PREFIX.csv and PREFIX.png."""

    machine_only = (*PredictOptions.machine_only, "data", "out")


def _time(value):
    return value if isinstance(value, float) else str(value)  # timestamps as text; plain step numbers as numbers


def forecast_record(name: str, forecasts: list, columns: tuple[str, ...], metrics: dict | None = None) -> dict:
    """The JSON-able record of one input's forecasts (``rnnkit.models.forecasting.Forecast``), one entry per forecast
    and column; a backtest's adds its metrics."""
    entries = []
    for forecast in forecasts:
        for column, column_name in enumerate(columns):
            entry = {"series": forecast.series.name, "column": column_name}
            if forecast.origin is not None:
                entry["origin"] = _time(forecast.series.times[forecast.origin])
            entry["times"] = [_time(value) for value in forecast.times]
            entry.update({key: [float(value) for value in forecast.values[key][:, column]]
                          for key in VALUES if key in forecast.values})
            entries.append(entry)
    record = {"input": name, "forecasts": entries}
    if metrics is not None:
        record.update(windows=len(forecasts), metrics=metrics)
    return record


def forecast_rows(record: dict) -> list[dict]:
    """Long format: one row per series, column and forecast step (a backtest adds ``origin`` and ``actual``)."""
    rows = []
    for entry in record["forecasts"]:
        for step, time_value in enumerate(entry["times"]):
            row = {"series": entry["series"], "column": entry["column"]}
            if "origin" in entry:
                row["origin"] = entry["origin"]
            row["time"] = time_value
            row.update({key: entry[key][step] for key in VALUES if key in entry})
            rows.append(row)
    return rows


def forecast_csv(rows: list[dict]) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: f"{value:.6g}" if isinstance(value, float) else str(value) for key, value in row.items()})
    return text.getvalue()


def forecast_panels(record: dict, series: list, input_len: int) -> list[dict]:
    """What ``rnnkit.figures.forecast_png`` draws of a record: per series and column, the history before the forecast
    (a backtest: the actual values over its windows) and the forecasts (a backtest: windows one horizon apart)."""
    by_series = {one.name: one for one in series}
    groups: dict[tuple[str, str], list[dict]] = {}
    for entry in record["forecasts"]:
        groups.setdefault((entry["series"], entry["column"]), []).append(entry)
    panels = []
    for (name, column_name), entries in list(groups.items())[:PANELS]:
        one, horizon = by_series[name], len(entries[0]["times"])
        column = [c for (n, c) in groups if n == name].index(column_name)
        if "origin" in entries[0]:
            shown = entries[::horizon]  # windows that do not overlap
            origins = [list(map(_time, one.times)).index(entry["origin"]) for entry in (shown[0], shown[-1])]
            rows = slice(origins[0] - input_len, origins[1] + horizon)
            history, label = (one.times[rows], one.values[rows, column]), "actual"
        else:
            shown = entries
            history, label = (one.times[-input_len:], one.values[-input_len:, column]), "history"
        panels.append({"title": f"{name}: {column_name}", "history": history, "history_label": label,
                       "forecasts": [_drawn(entry) for entry in shown]})
    return panels


def _drawn(entry: dict) -> dict:
    """An entry's numbers, its times as matplotlib reads them (timestamps back from their text)."""
    times = entry["times"]
    if not isinstance(times[0], float):
        import pandas

        times = pandas.DatetimeIndex(times)
    return {"times": times, **{key: entry[key] for key in VALUES if key in entry and key != "actual"}}


class ForecastPredictor(Predictor, Protocol):
    """What ``rnnkit predict`` needs from a forecasting session: a predictor whose inputs are files."""

    def read_file(self, path=None) -> list: ...


def run_forecast(session: ForecastPredictor, options: ForecastOptions) -> None:
    options.validate()
    out = Path(options.out)
    if not out.parent.is_dir():
        raise UserError(f"--out: the folder {out.parent} does not exist")
    files = list(options.inputs) + ([options.data] if options.data else [])
    texts = files or [session.config.dataset.source()[0]]  # the run's own data
    started = time.perf_counter()
    results = predict_inputs(session, texts, options)
    seconds = time.perf_counter() - started
    readable = [(text, result) for text, result in zip(texts, results) if "error" not in result]
    for number, (text, record) in enumerate(readable, start=1):
        prefix = out if len(readable) == 1 else out.with_name(f"{out.name}-{number}")
        csv_path, png_path = prefix.with_name(prefix.name + ".csv"), prefix.with_name(prefix.name + ".png")
        atomic_write_text(csv_path, forecast_csv(forecast_rows(record)))
        panels = forecast_panels(record, session.read_file(text), session.config.dataset.input_len)
        atomic_write_bytes(png_path, forecast_png(panels))
        print(f"wrote {csv_path}", file=sys.stderr)
        print(f"wrote {png_path}", file=sys.stderr)
    print_results(session, results, options, seconds)


class TestEvaluator(Protocol):
    """What ``rnnkit evaluate`` needs from a forecasting session."""

    def file_test_metrics(self) -> dict: ...

    def report(self, metrics: dict, label: str) -> str: ...


def evaluate(session: TestEvaluator, options: CheckpointOptions) -> None:
    """The metrics on the run's test windows, and the baselines on the same windows."""
    summary = session.file_test_metrics()
    print(session.report(summary["test"], label="evaluation"))
    for name, metrics in summary["baselines"].items():
        print(f"baseline {name}: MSE {metrics['mse']:.4f}, MAE {metrics['mae']:.4f}")


COMMANDS = {
    "predict": Command("forecast the steps after the end of a CSV file (or backtest its test windows): CSV and PNG",
                       ForecastOptions, run_forecast, ForecastPredictor, records=predict_inputs, inputs="file"),
    "evaluate": Command("MSE and MAE on the run's test windows, with the baselines", CheckpointOptions, evaluate,
                        TestEvaluator),
}
