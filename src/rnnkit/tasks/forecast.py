"""``forecast``: time-series forecasting (many-to-many, unaligned): read ``--input-len`` steps, forecast ``--horizon``.

Data: the standard sets by name (``--dataset etth1|etth2|airline|sunspots`` in ``--data-dir``)
or any CSV (``--data FILE --time-column C --target COL ... [--covariates COL ...]
[--series-column S]``; several series train one global model). ``--features univariate``
forecasts one column (``OT`` for ETT, the last column of your file unless ``--target``);
``multivariate`` forecasts every column. ETT follows the Informer protocol exactly (rows
[0, 8640) train, [8640, 11520) validation, [11520, 14400) test; windows read back into the
split before; ``rnnkit.data.windows``); other files split by ``--val-fraction`` and
``--test-fraction`` in time order. The scaler is fitted on the training rows only, and the
metrics (MSE, MAE) are on the scaled data, as the papers report them. The baselines of
``rnnkit.models.forecast_baselines`` are scored on the same test windows; probabilistic
models (``--distribution``) add the empirical coverage of their 80% and 90% intervals.
``rnnkit predict`` (``forecast_commands.py``) forecasts after the end of a file, or backtests.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy
import torch

from rnnkit.data.time_series import FILLS, Series, calendar_features, calendar_for_step, read_series_csv, season_for_step
from rnnkit.data.windows import (ETT_HOURLY_BORDERS, Scaler, ShuffledWindows, WindowBatch, Windows, split_ends,
                                 split_windows)
from rnnkit.errors import UserError
from rnnkit.models.forecast_baselines import LinearBaseline, naive, seasonal_naive
from rnnkit.models.forecaster import Forecaster, ForecasterConfig
from rnnkit.tasks.base import RunConfig, Task
from rnnkit.tasks.forecast_commands import COMMANDS
from rnnkit.train.config import TrainConfig
from rnnkit.train.distributed import Distributed
from rnnkit.train.session import Monitor, Session

DATA_FOLDER = "../shared/data"
EVALUATION_BATCH = 256
INTERVALS = (0.8, 0.9)  # the prediction intervals reported: central, so 80% spans the 0.1 and 0.9 quantiles


@dataclass(frozen=True)
class StandardSet:
    file: str  # in --data-dir
    time_column: str
    univariate: str  # the column --features univariate forecasts
    borders: tuple[int, int, int] | None = None  # where train, validation and test end; None: by fractions


STANDARD_SETS = {
    "etth1": StandardSet("ett-small/ETTh1.csv", "date", "OT", ETT_HOURLY_BORDERS),
    "etth2": StandardSet("ett-small/ETTh2.csv", "date", "OT", ETT_HOURLY_BORDERS),
    "airline": StandardSet("airline-passengers/airline-passengers.csv", "Month", "Passengers"),
    "sunspots": StandardSet("sunspots/monthly-sunspots.csv", "Month", "Sunspots"),
}
FEATURES = ("univariate", "multivariate")


@dataclass
class ForecastData:
    dataset: str = "etth1"
    """etth1, etth2 (Informer's split), airline or sunspots, in --data-dir; ignored with --data."""
    data_dir: str = DATA_FOLDER
    """Folder holding ett-small/, airline-passengers/ and sunspots/."""
    data: str | None = None
    """Your own CSV file: a time column and numeric columns, one row per step, oldest first."""
    time_column: str = "date"
    """--data: the column of timestamps (or of plain step numbers)."""
    target: tuple[str, ...] = ()
    """--data: the columns to forecast (default: the last column, or every column with --features multivariate)."""
    covariates: tuple[str, ...] = ()
    """--data: other columns the model reads but does not forecast (past covariates)."""
    series_column: str | None = None
    """--data: a column naming the series each row belongs to; one global model learns them all."""
    features: str = "univariate"
    """univariate (one target column) or multivariate (every column is a target)."""
    horizon: int = 24
    """Steps to forecast."""
    input_len: int = 96
    """Steps the model reads before forecasting."""
    val_fraction: float = 0.1
    """Files without a fixed split: the fraction of each series' last rows before the test rows, for validation."""
    test_fraction: float = 0.2
    """Files without a fixed split: the fraction of each series' last rows, for testing."""
    season: int = 0
    """The seasonal naive baseline's period in steps (0: 24 for hourly data, 7 for daily, 12 for monthly)."""
    fill_missing: str = "none"
    """Empty cells: none (an error naming the first), ffill (repeat the last value) or interpolate (linear)."""

    def validate(self) -> None:
        if self.data is None and self.dataset not in STANDARD_SETS:
            raise UserError(f"--dataset: expected one of {', '.join(STANDARD_SETS)}, got {self.dataset!r}")
        if self.features not in FEATURES:
            raise UserError(f"--features: expected one of {', '.join(FEATURES)}, got {self.features!r}")
        if self.fill_missing not in FILLS:
            raise UserError(f"--fill-missing: expected one of {', '.join(FILLS)}, got {self.fill_missing!r}")
        for name in ("horizon", "input_len"):
            if getattr(self, name) <= 0:
                raise UserError(f"--{name.replace('_', '-')}: expected a positive number of steps, got {getattr(self, name)}")
        if self.season < 0:
            raise UserError(f"--season: expected 0 (from the time step) or a period in steps, got {self.season}")
        if not (0 < self.val_fraction < 1 and 0 < self.test_fraction < 1 and self.val_fraction + self.test_fraction < 1):
            raise UserError("--val-fraction and --test-fraction: expected fractions in (0, 1) summing to less than 1, "
                            f"got {self.val_fraction} and {self.test_fraction}")
        if self.data is None and (self.target or self.covariates or self.series_column):
            raise UserError("--target, --covariates and --series-column describe your own --data file; give it too")
        if self.features == "univariate" and len(self.target) > 1:
            raise UserError(f"--target: --features univariate forecasts one column, got {len(self.target)}; "
                            "pass --features multivariate to forecast several")

    @property
    def standard(self) -> StandardSet | None:
        return None if self.data else STANDARD_SETS[self.dataset]

    def source(self) -> tuple[str, str, tuple[int, int, int] | None]:
        """(path, time column, fixed split borders or None) of the data."""
        if self.standard is None:
            return self.data, self.time_column, None
        return str(Path(self.data_dir) / self.standard.file), self.standard.time_column, self.standard.borders


@dataclass
class ForecastConfig(RunConfig):
    model: ForecasterConfig = field(default_factory=lambda: ForecasterConfig(
        cell="gru", hidden_size=64, num_layers=1, dropout=0.1, revin=True))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        batch_size=32, optimizer="adam", lr=1e-3, schedule="plateau", plateau_patience=2, gamma=0.5, epochs=10,
        max_minutes=10.0, eval_every=100, patience=5, clip_grad_norm=1.0, keep_best=True, precision="fp32"))
    dataset: ForecastData = field(default_factory=ForecastData)


@dataclass
class SeriesLayout:
    """What the checkpoint keeps to read a file the way training read it: columns, scaler, calendar, season."""

    columns: tuple[str, ...]  # targets first, then covariates
    targets: int
    scaler: Scaler
    step_seconds: float | None
    season: int

    def to_state(self) -> dict:
        return {"columns": list(self.columns), "targets": self.targets, "scaler": self.scaler.to_state(),
                "step_seconds": self.step_seconds, "season": self.season}

    @classmethod
    def from_state(cls, state: dict) -> SeriesLayout:
        return cls(tuple(state["columns"]), int(state["targets"]), Scaler.from_state(state["scaler"]),
                   state["step_seconds"], int(state["season"]))

    @property
    def target_names(self) -> tuple[str, ...]:
        return self.columns[: self.targets]


def read_series(data: ForecastData, path: str | None = None,
                columns: tuple[str, ...] | None = None) -> tuple[list[Series], tuple[str, ...], int, float | None]:
    """The series of the run's data (or of ``path``, read the same way) with their columns ordered targets first,
    the column names, how many are targets, and the time step in seconds."""
    source, time_column, _ = data.source()
    if columns is None:
        targets = data.target or ((data.standard.univariate,) if data.standard and data.features == "univariate" else ())
        requested = targets + data.covariates if targets else ()
    else:
        requested, targets = columns, ()
    series, names, step = read_series_csv(path or source, time_column, requested, data.series_column, data.fill_missing,
                                          "--data" if path or data.data else "--dataset")
    if columns is not None:
        return series, names, 0, step
    if not targets:  # every column but the covariates (multivariate), or the last one (univariate)
        free = [name for name in names if name not in data.covariates]
        targets = tuple(free) if data.features == "multivariate" else (free[-1],)
        order = [names.index(name) for name in targets + data.covariates]
        for one in series:
            one.values = one.values[:, order]
        names = targets + data.covariates
    return series, names, len(targets), step


class ForecastSession(Session):
    monitor = Monitor("mse", "min")

    def __init__(self, config: ForecastConfig, layout: SeriesLayout, device: torch.device) -> None:
        self.config, self.layout, self.device = config, layout, device
        data = config.dataset
        calendar = len(calendar_for_step(layout.step_seconds))
        self.model = Forecaster(len(layout.columns), layout.targets, calendar, data.input_len, data.horizon,
                                config.model).to(device)
        self.batches = None
        self.windows: dict[str, Windows] = {}

    def task_state(self) -> dict:
        return {"layout": self.layout.to_state()}

    def training_step(self, network, batch, state):
        batch = batch.to(self.device)
        _, loss, _ = network(batch.history, batch.future_calendar, targets=batch.targets)
        return loss, None, batch.size

    def forecasts(self, model, windows: Windows) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The forecast parameters (N, H, T, P), the actual values (N, H, T) and the targets' history (N, L, T) of
        every window, in order, in scaled units."""
        parameters, actual, history = [], [], []
        for batch in windows.batches(EVALUATION_BATCH):
            outputs, _, _ = model(batch.history.to(self.device), batch.future_calendar.to(self.device))
            parameters.append(outputs.float().cpu().transpose(0, 1))
            actual.append(batch.targets.transpose(0, 1))
            history.append(batch.history[..., : self.layout.targets].transpose(0, 1))
        return torch.cat(parameters), torch.cat(actual), torch.cat(history)

    def evaluate(self, model, split: str = "validation") -> dict[str, float]:
        parameters, actual, _ = self.forecasts(model, self.windows[split])
        return self.metrics(parameters, actual)

    def metrics(self, parameters: torch.Tensor, actual: torch.Tensor) -> dict[str, float]:
        """The loss, MSE and MAE of forecasts (N, H, T, P) against the actual values (N, H, T), and the coverage of
        the central intervals of a probabilistic forecast."""
        output = self.model.output
        metrics = {"loss": float(output.loss(parameters, actual)), **errors(output.point(parameters), actual)}
        for level in self.intervals():
            lower, upper = (output.quantile(parameters, q) for q in central_quantiles(level))
            metrics[f"coverage_{round(level * 100)}"] = float(((actual >= lower) & (actual <= upper)).float().mean())
        return metrics

    def intervals(self) -> tuple[float, ...]:
        """The central intervals (of ``INTERVALS``) whose bounds the model forecasts: none for a point forecast, and
        for quantiles those whose both bounds are among --quantiles."""
        return tuple(level for level in INTERVALS
                     if all(self.model.output.has_quantile(q) for q in central_quantiles(level)))

    def test_summary(self) -> dict:
        self.model.eval()
        summary = {}
        with torch.no_grad():
            summary["validation"] = self.evaluate(self.model, "validation")
            if "test" in self.windows:
                parameters, actual, history = self.forecasts(self.model, self.windows["test"])
                summary["test"] = self.metrics(parameters, actual)
                summary["baselines"] = self.baselines(history.transpose(0, 1), actual.transpose(0, 1))
        return summary

    def training_sample(self) -> WindowBatch:
        """At most ~20k training windows, evenly spaced: what the least-squares fits read."""
        train = self.windows["train"]
        return train.batch(range(0, len(train), max(1, len(train) // 20000)))

    def baselines(self, history: torch.Tensor, actual: torch.Tensor) -> dict[str, dict[str, float]]:
        """MSE and MAE of the naive, seasonal naive and linear forecasts of the targets' history (L, N, T) against the
        actual values (H, N, T), in scaled units."""
        horizon, season = self.config.dataset.horizon, self.layout.season
        results = {"naive": errors(naive(history, horizon), actual)}
        if season <= history.shape[0]:
            results[f"seasonal_naive_{season}"] = errors(seasonal_naive(history, horizon, season), actual)
        fit = self.training_sample()
        linear = LinearBaseline(self.config.dataset.input_len, horizon).fit(fit.history[..., : self.layout.targets],
                                                                            fit.targets)
        results["linear"] = errors(linear(history), actual)
        return results

    def windows_of(self, series: list[Series]) -> dict[str, Windows]:
        """The train, validation and test windows of ``series`` (unscaled), scaled by the run's scaler."""
        data = self.config.dataset
        return split_windows(scale_series(series, self.layout.scaler), data.source()[2], data.val_fraction,
                             data.test_fraction, data.input_len, data.horizon, self.layout.targets)

    # ----------------------------------------------------------------- rnnkit predict (forecast_commands.py)
    def read_file(self, path: str | None) -> list[Series]:
        """The series of ``path`` (default: the run's own data), read with the run's columns, unscaled."""
        series, _, _, _ = read_series(self.config.dataset, path, self.layout.columns)
        return series

    def _target_scaling(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The scaler's mean and standard deviation (T,) of the target columns: scaled x -> x * std + mean."""
        scaler, targets = self.layout.scaler, self.layout.targets
        return tuple(torch.tensor(values[:targets], dtype=torch.float32) for values in (scaler.mean, scaler.std))

    def _in_units(self, parameters: torch.Tensor) -> torch.Tensor:
        """Forecast parameters (..., T, P) in the scaled units -> in the file's units."""
        return self.model.output.rescale(parameters.float(), *self._target_scaling())

    def _summaries(self, parameters: torch.Tensor) -> dict[str, torch.Tensor]:
        """(..., T, P) parameters in the file's units -> the point forecast and the interval bounds, each (..., T)."""
        output = self.model.output
        found = {"forecast": output.point(parameters)}
        for level in self.intervals():
            lower, upper = central_quantiles(level)
            found[f"lo-{round(level * 100)}"] = output.quantile(parameters, lower)
            found[f"hi-{round(level * 100)}"] = output.quantile(parameters, upper)
        return found

    def forecast_after(self, series: list[Series], horizon: int = 0, option: str = "--horizon") -> list[dict]:
        """The next ``horizon`` steps (0: the trained horizon; ``option`` names it in errors) after the end of each
        series: per series its future times and the point forecast and interval bounds (H, T), in the file's units."""
        data, layout = self.config.dataset, self.layout
        if not 0 <= horizon <= data.horizon:
            raise UserError(f"{option}: expected 1 to the trained horizon {data.horizon}, got {horizon}")
        horizon = horizon or data.horizon
        for one in series:
            if len(one) < data.input_len:
                raise UserError(f"{one.name}: {len(one)} rows; the model reads --input-len {data.input_len} before "
                                "forecasting, so it needs at least that many")
        names = calendar_for_step(layout.step_seconds)
        futures = [future_times(one.times, horizon, layout.step_seconds) for one in series]
        history = torch.stack([torch.from_numpy(numpy.concatenate(
            [layout.scaler.transform(one.values[-data.input_len :]), one.calendar[-data.input_len :]], axis=1))
            for one in series], dim=1).float()
        calendar = torch.stack([torch.from_numpy(calendar_features(times, names)) for times in futures], dim=1).float()
        self.model.eval()
        with torch.no_grad():
            parameters, _, _ = self.model(history.to(self.device), calendar.to(self.device))
        summaries = self._summaries(self._in_units(parameters.float().cpu()))  # each (H, S, T)
        return [{"series": one, "times": times, **{name: values[:, number] for name, values in summaries.items()}}
                for number, (one, times) in enumerate(zip(series, futures))]

    def backtest(self, series: list[Series]) -> tuple[list[dict], dict[str, float]]:
        """Forecasts at every test window of ``series`` (split as in training), in the file's units, and their
        metrics (``metrics``) in scaled units."""
        data = self.config.dataset
        windows = self.windows_of(series).get("test")
        if windows is None:
            raise UserError(f"the file's test rows hold no window of --horizon {data.horizon} steps")
        self.model.eval()
        with torch.no_grad():
            parameters, actual, _ = self.forecasts(self.model, windows)  # (N, H, T, P), (N, H, T)
        metrics = self.metrics(parameters, actual)
        summaries = self._summaries(self._in_units(parameters))
        mean, std = self._target_scaling()
        actual_units = actual * std + mean
        results = []
        for index, (number, first) in enumerate(windows.origins()):
            one = series[number]
            results.append({"series": one, "origin": first, "times": one.times[first : first + data.horizon],
                            "actual": actual_units[index],
                            **{name: values[index] for name, values in summaries.items()}})
        return results, metrics

    def report(self, metrics: dict[str, float], label: str = "validation") -> str:
        coverage = "".join(f", {name.split('_')[1]}% interval coverage {metrics[name]:.1%}"
                           for name in metrics if name.startswith("coverage_"))
        return f"{label} MSE {metrics['mse']:.4f}, MAE {metrics['mae']:.4f} (scaled){coverage}"


def errors(point: torch.Tensor, actual: torch.Tensor) -> dict[str, float]:
    """Mean squared and mean absolute error over every window, step and column."""
    difference = point.float() - actual.float()
    return {"mse": float(difference.square().mean()), "mae": float(difference.abs().mean())}


def central_quantiles(level: float) -> tuple[float, float]:
    """The quantiles bounding the central ``level`` interval: 0.8 -> (0.1, 0.9)."""
    return round((1 - level) / 2, 6), round(1 - (1 - level) / 2, 6)


def future_times(times, horizon: int, step_seconds: float | None):
    """The ``horizon`` timestamps after the last of ``times``, a time step apart (calendar months for monthly data)."""
    import pandas

    if step_seconds is None:
        step = float(numpy.median(numpy.diff(times))) if len(times) > 1 else 1.0
        return times[-1] + step * numpy.arange(1, horizon + 1)
    days = step_seconds / 86400
    step = pandas.DateOffset(months=1) if 28 <= days <= 31 else pandas.DateOffset(years=1) if 365 <= days <= 366 \
        else pandas.Timedelta(seconds=step_seconds)
    return pandas.DatetimeIndex([times[-1] + step * k for k in range(1, horizon + 1)])


def scale_series(series: list[Series], scaler: Scaler) -> list[Series]:
    return [Series(one.name, one.times, scaler.transform(one.values), one.calendar) for one in series]


class ForecastTask(Task):
    name = "forecast"
    summary = "time-series forecasting: ETTh1/ETTh2 (Informer protocol), airline, sunspots or your CSV; baselines beside"
    config_class = ForecastConfig
    unit = "window"

    commands = COMMANDS

    def start(self, config: ForecastConfig, context: Distributed, device: torch.device) -> ForecastSession:
        data = config.dataset
        series, columns, targets, step = read_series(data)
        _, _, borders = data.source()
        train_rows = [one.values[: split_ends(len(one), borders, data.val_fraction, data.test_fraction)[0]]
                      for one in series]
        scaler = Scaler.fit(numpy.concatenate(train_rows))
        season = data.season or season_for_step(step)
        layout = SeriesLayout(columns, targets, scaler, step, season)
        session = ForecastSession(config, layout, device)
        session.windows = session.windows_of(series)
        if "validation" not in session.windows:
            raise UserError(f"the validation rows hold no window of --horizon {data.horizon} steps; lower --horizon or "
                            "raise --val-fraction")
        if config.model.highway:
            sample = session.training_sample()
            session.model.start_highway(sample.history, sample.targets)
        session.batches = ShuffledWindows(session.windows["train"], config.train.batch_size, config.train.seed,
                                          context.rank, context.world_size)
        counts = ", ".join(f"{split} {len(windows)}" for split, windows in session.windows.items())
        print(f"forecast: {data.source()[0]}: {len(series)} series, columns {', '.join(columns)} "
              f"(forecasting {', '.join(columns[:targets])}); windows {counts}", file=sys.stderr)
        return session

    def restore(self, config: ForecastConfig, task_state: dict, device: torch.device) -> ForecastSession:
        return ForecastSession(config, SeriesLayout.from_state(task_state["layout"]), device)
