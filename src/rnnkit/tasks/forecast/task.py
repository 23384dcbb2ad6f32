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
``rnnkit predict`` (``commands.py``) forecasts after the end of a file, or backtests
(``rnnkit.models.forecasting``, which ``RecurrentForecaster`` in ``api.py`` shares).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy
import torch

from rnnkit.data.batch import Batch
from rnnkit.data.time_series import FILLS, Series, calendar_for_step, read_series_csv, read_series_frame, season_for_step
from rnnkit.data.windows import ETT_HOURLY_BORDERS, Scaler, SeriesLayout, ShuffledWindows, Windows, split_ends
from rnnkit.errors import UserError
from rnnkit.layers import Recurrent
from rnnkit.metrics import forecast_errors
from rnnkit.models.forecast_baselines import LinearBaseline, naive, seasonal_naive
from rnnkit.models.forecaster import Forecaster, ForecasterConfig
from rnnkit.models.forecasting import Forecasting
from rnnkit.tasks.base import RunConfig, Task
from rnnkit.tasks.forecast.commands import COMMANDS, ForecastOptions, forecast_record
from rnnkit.train.config import TrainConfig
from rnnkit.train.distributed import Distributed
from rnnkit.train.session import Monitor, Session

DATA_FOLDER = "../shared/data"


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


def read_series(data: ForecastData, path=None,
                columns: tuple[str, ...] | None = None) -> tuple[list[Series], tuple[str, ...], int, float | None]:
    """The series of the run's data (or of ``path``, a CSV file or a pandas DataFrame, read the same way) with their
    columns ordered targets first, the column names, how many are targets, and the time step in seconds."""
    source, time_column, _ = data.source()
    if columns is None:
        targets = data.target or ((data.standard.univariate,) if data.standard and data.features == "univariate" else ())
        requested = targets + data.covariates if targets else ()
    else:
        requested, targets = columns, ()
    if path is not None and not isinstance(path, (str, Path)):  # a DataFrame
        series, names, step = read_series_frame(path, time_column, requested, data.series_column, data.fill_missing)
    else:
        series, names, step = read_series_csv(path or source, time_column, requested, data.series_column,
                                              data.fill_missing, "--data" if path or data.data else "--dataset")
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
    unit = "window"

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

    def forecasting(self, model: Forecaster | None = None) -> Forecasting:
        """The (trained) model with what it needs to read series as training did."""
        data = self.config.dataset
        return Forecasting(model or self.model, self.layout, data.input_len, data.horizon, data.source()[2],
                           data.val_fraction, data.test_fraction)

    def read_file(self, path=None) -> list[Series]:
        """The series of ``path`` (a CSV file or a DataFrame; default: the run's own data), read with the run's
        columns, in the file's units."""
        series, _, _, _ = read_series(self.config.dataset, path, self.layout.columns)
        return series

    # ----------------------------------------------------------------- evaluation
    def evaluate(self, model, windows: Windows | None = None) -> dict[str, float]:
        """Loss, MSE and MAE (and interval coverage) on ``windows`` (default: the validation windows), scaled."""
        forecasting = self.forecasting(model)
        return forecasting.metrics(*forecasting.parameters(windows or self.windows["validation"])[:2])

    def test_metrics(self, windows: dict[str, Windows]) -> dict:
        """The metrics on the test windows, and the baselines' on the same windows (the linear one fitted on the
        training windows)."""
        self.model.eval()
        forecasting = self.forecasting()
        parameters, actual, history = forecasting.parameters(windows["test"])
        return {"test": forecasting.metrics(parameters, actual),
                "baselines": self.baselines(history.transpose(0, 1), actual.transpose(0, 1), windows["train"])}

    def test_summary(self) -> dict:
        return self.test_metrics(self.windows) if "test" in self.windows else {}

    def file_test_metrics(self) -> dict:
        """``rnnkit evaluate``: the test metrics and baselines on the run's own data, read again."""
        windows = self.forecasting().windows(self.read_file(None))
        if "test" not in windows:
            raise UserError(f"the run's test rows hold no window of --horizon {self.config.dataset.horizon} steps")
        return self.test_metrics(windows)

    @staticmethod
    def training_sample(train: Windows) -> Batch:
        """At most ~20k training windows, evenly spaced: what the least-squares fits read."""
        return train.batch(range(0, len(train), max(1, len(train) // 20000)))

    def baselines(self, history: torch.Tensor, actual: torch.Tensor, train: Windows) -> dict[str, dict[str, float]]:
        """MSE and MAE of the naive, seasonal naive and linear forecasts of the targets' history (L, N, T) against the
        actual values (H, N, T), in scaled units."""
        horizon, season = self.config.dataset.horizon, self.layout.season
        results = {"naive": forecast_errors(naive(history, horizon), actual)}
        if season <= history.shape[0]:
            results[f"seasonal_naive_{season}"] = forecast_errors(seasonal_naive(history, horizon, season), actual)
        fit = self.training_sample(train)
        linear = LinearBaseline(self.config.dataset.input_len, horizon).fit(fit.inputs[..., : self.layout.targets],
                                                                            fit.targets)
        results["linear"] = forecast_errors(linear(history), actual)
        return results

    def report(self, metrics: dict[str, float], label: str = "validation") -> str:
        coverage = "".join(f", {name.split('_')[1]}% interval coverage {metrics[name]:.1%}"
                           for name in metrics if name.startswith("coverage_"))
        return f"{label} MSE {metrics['mse']:.4f}, MAE {metrics['mae']:.4f} (scaled){coverage}"

    # ----------------------------------------------------------------- rnnkit predict (rnnkit.tasks.predict.Predictor)
    def parse_input(self, text) -> tuple[str, list[Series]]:
        """An input is a file to forecast from (a CSV path; from Python also a pandas DataFrame)."""
        return (text if isinstance(text, str) else "DataFrame"), self.read_file(text)

    def input_length(self, parsed: tuple[str, list[Series]]) -> int:
        return len(parsed[1])

    def predict(self, inputs: list[tuple[str, list[Series]]], options: ForecastOptions) -> list[dict]:
        """Per input: its forecasts after the end of each series (or, with --backtest, at every test window, and
        their metrics), in the file's units."""
        forecasting, results = self.forecasting(), []
        for name, series in inputs:
            if options.backtest:
                forecasts, metrics = forecasting.backtest(series)
                results.append(forecast_record(name, forecasts, self.layout.target_names, metrics))
            else:
                forecasts = forecasting.after(series, options.horizon)
                results.append(forecast_record(name, forecasts, self.layout.target_names))
        return results

    def describe(self, result: dict) -> str:
        if "metrics" in result:
            label = f"backtest of {result['windows']} test windows:"
            return f"{result['input']}: {self.report(result['metrics'], label=label)}"
        lines = [f"{result['input']}: {one['series']} {one['column']}: {len(one['times'])} steps from {one['times'][0]}: "
                 + " ".join(f"{value:.4g}" for value in one["forecast"]) for one in result["forecasts"]]
        return "\n".join(lines)

    # ----------------------------------------------------------------- rnnkit inspect (rnnkit.inspect.source.Inspectable)
    def recurrent_layers(self) -> Recurrent:
        return self.model.window_encoder

    def inspection_batch(self, size: int, length: int | None = None) -> Batch:
        """The first ``size`` validation windows (read from the run's data when restored)."""
        windows = self.windows.get("validation") or self.forecasting().windows(self.read_file(None))["validation"]
        return windows.batch(range(min(size, len(windows))))

    def step_labels(self, batch: Batch) -> None:
        return None


class ForecastTask(Task):
    name = "forecast"
    summary = "time-series forecasting: ETTh1/ETTh2 (Informer protocol), airline, sunspots or your CSV; baselines beside"
    config_class = ForecastConfig
    session_class = ForecastSession
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
        session.windows = session.forecasting().windows(series)
        if "validation" not in session.windows:
            raise UserError(f"the validation rows hold no window of --horizon {data.horizon} steps; lower --horizon or "
                            "raise --val-fraction")
        if config.model.highway:
            sample = session.training_sample(session.windows["train"])
            session.model.start_highway(sample.inputs, sample.targets)
        session.batches = ShuffledWindows(session.windows["train"], config.train.batch_size, config.train.seed,
                                          context.rank, context.world_size)
        counts = ", ".join(f"{split} {len(windows)}" for split, windows in session.windows.items())
        print(f"forecast: {data.source()[0]}: {len(series)} series, columns {', '.join(columns)} "
              f"(forecasting {', '.join(columns[:targets])}); windows {counts}", file=sys.stderr)
        return session

    def restore(self, config: ForecastConfig, task_state: dict, device: torch.device) -> ForecastSession:
        return ForecastSession(config, SeriesLayout.from_state(task_state["layout"]), device)
