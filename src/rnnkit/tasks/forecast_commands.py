"""What a trained forecaster is used for: ``rnnkit predict`` (a forecast after the end of a file, or a backtest
at every test window) and ``rnnkit evaluate`` (the test metrics and baselines again).

    rnnkit predict --checkpoint RUN [--data FILE] [--horizon H] [--backtest] [--out PREFIX]

writes PREFIX.csv (one row per series, column and step: ``time``, ``forecast`` and, for
probabilistic models, ``lo-80 hi-80 lo-90 hi-90``, the names neuralforecast uses; a backtest
adds ``origin`` and ``actual``) and PREFIX.png (history, forecast and intervals), in the
file's own units, and prints both paths. The session does the forecasting
(``ForecastSession.forecast_after`` and ``backtest``); this file writes and draws.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from rnnkit.errors import UserError
from rnnkit.tasks.base import CheckpointOptions, Command
from rnnkit.train.files import atomic_write_bytes, atomic_write_text

PANELS = 6  # series x columns drawn at most
VALUES = ("forecast", "lo-80", "hi-80", "lo-90", "hi-90", "actual")  # the numbers of a row, in order


@dataclass
class ForecastOptions(CheckpointOptions):
    data: str | None = None
    """CSV file to forecast from, with the run's columns (default: the run's own data)."""
    horizon: int = 0
    """Steps to forecast, at most the trained --horizon (0: the trained horizon)."""
    backtest: bool = False
    """Forecast at every test window of the file instead (split as in training), with the actual values."""
    out: str = "forecast"
    """Prefix of the files written: PREFIX.csv and PREFIX.png."""


def run_forecast(session, options: ForecastOptions) -> None:
    out = Path(options.out)
    if not out.parent.is_dir():
        raise UserError(f"--out: the folder {out.parent} does not exist")
    series = session.read_file(options.data)
    if options.backtest:
        results, metrics = session.backtest(series)
        print(session.report(metrics, label=f"backtest of {len(results)} test windows:"))
    else:
        results = session.forecast_after(series, options.horizon)
    names = session.layout.target_names
    csv_path, png_path = out.with_name(out.name + ".csv"), out.with_name(out.name + ".png")
    atomic_write_text(csv_path, forecast_csv(forecast_rows(results, names)))
    atomic_write_bytes(png_path, forecast_png(results, names, session.config.dataset.input_len, options.backtest))
    print(f"wrote {csv_path}")
    print(f"wrote {png_path}")


def forecast_rows(results: list[dict], names: tuple[str, ...]) -> list[dict]:
    """Long format: one row per series, column and forecast step (a backtest adds ``origin`` and ``actual``)."""
    rows = []
    for result in results:
        one = result["series"]
        for column, name in enumerate(names):
            for step in range(len(result["times"])):
                row = {"series": one.name, "column": name}
                if "origin" in result:
                    row["origin"] = one.times[result["origin"]]
                row["time"] = result["times"][step]
                row.update({key: float(result[key][step, column]) for key in VALUES if key in result})
                rows.append(row)
    return rows


def forecast_csv(rows: list[dict]) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: f"{value:.6g}" if isinstance(value, float) else str(value) for key, value in row.items()})
    return text.getvalue()


def forecast_png(results: list[dict], names: tuple[str, ...], input_len: int, backtest: bool) -> bytes:
    """One panel per series and column: the history before the forecast, the forecast and its intervals.
    A backtest draws the actual test values and the forecasts of windows one horizon apart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_series = {}
    for result in results:
        by_series.setdefault(id(result["series"]), []).append(result)
    panels = [(group, column) for group in by_series.values() for column in range(len(names))][:PANELS]
    figure, axes = plt.subplots(len(panels), 1, figsize=(10, 2.8 * len(panels)), squeeze=False)
    for axis, (group, column) in zip(axes[:, 0], panels):
        one = group[0]["series"]
        if backtest:
            horizon = len(group[0]["times"])
            shown = group[::horizon]  # windows that do not overlap
            start = shown[0]["origin"] - input_len
            axis.plot(one.times[start : shown[-1]["origin"] + horizon], one.values[start : shown[-1]["origin"] + horizon,
                      column], color="black", linewidth=0.8, label="actual")
        else:
            shown = group
            axis.plot(one.times[-input_len:], one.values[-input_len:, column], color="black", linewidth=0.8,
                      label="history")
        for number, result in enumerate(shown):
            times = result["times"]
            axis.plot(times, result["forecast"][:, column], color="tab:blue", linewidth=1,
                      label="forecast" if number == 0 else None)
            for level, alpha in (("90", 0.15), ("80", 0.3)):
                if f"lo-{level}" in result:
                    axis.fill_between(times, result[f"lo-{level}"][:, column], result[f"hi-{level}"][:, column],
                                      color="tab:blue", alpha=alpha, linewidth=0,
                                      label=f"{level}% interval" if number == 0 else None)
        axis.set_title(f"{one.name}: {names[column]}", fontsize=9)
        axis.legend(loc="upper left", fontsize=7)
    figure.autofmt_xdate()
    figure.tight_layout()
    data = io.BytesIO()
    figure.savefig(data, format="png", dpi=100)
    plt.close(figure)
    return data.getvalue()


def evaluate(session, options: CheckpointOptions) -> None:
    """The metrics on the run's test windows, and the baselines on the same windows."""
    session.windows = session.windows_of(session.read_file(None))
    summary = session.test_summary()
    print(session.report(summary["test"], label="evaluation"))
    for name, metrics in summary["baselines"].items():
        print(f"baseline {name}: MSE {metrics['mse']:.4f}, MAE {metrics['mae']:.4f}")


COMMANDS = {
    "predict": Command("forecast the steps after the end of a CSV file (or backtest its test windows): CSV and PNG",
                       ForecastOptions, run_forecast),
    "evaluate": Command("MSE and MAE on the run's test windows, with the baselines", CheckpointOptions, evaluate),
}
