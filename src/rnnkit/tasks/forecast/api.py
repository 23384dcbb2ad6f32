"""Forecasting from Python, in the style darts users know: ``fit(series)``, then ``predict(n)``.

    from rnnkit.tasks.forecast import RecurrentForecaster
    model = RecurrentForecaster(input_len=48, horizon=12, cell="lstm", distribution="gaussian", max_minutes=2)
    model.fit(frame, time_column="date", target="load")       # a pandas DataFrame, or a CSV path
    model.predict(12)                                          # DataFrame: series, column, time, forecast, lo-80, ...
    model.backtest()                                           # every test window, with the actual values
    RecurrentForecaster.load("runs/forecast-...").predict(12)  # a run trained by 'rnnkit train forecast'

It is the ``forecast`` task underneath (the same configuration, run folder, checkpoints and
summary.json as ``rnnkit train forecast``), so keyword options are that command's options
by their Python names (``hidden_size``, ``revin``, ``lr``, ``max_minutes``, ...), and the
forecasts are ``rnnkit predict``'s (``rnnkit.models.forecasting``). With ``work_dir`` the run
folder is kept there; without, training runs in a temporary folder that is removed when it
ends, and the trained model lives in this object.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from rnnkit.errors import UserError
from rnnkit.tasks.forecast.commands import forecast_record, forecast_rows
from rnnkit.tasks.forecast.task import ForecastConfig, ForecastSession, ForecastTask
from rnnkit.tasks.runs import read_trained_run


def _set_options(config: ForecastConfig, options: dict) -> None:
    """Set each option on the group (model, train, dataset) that has a field of its name."""
    groups = [getattr(config, group) for group in config.GROUPS]
    for name, value in options.items():
        owner = next((group for group in groups if name in {f.name for f in dataclasses.fields(group)}), None)
        if owner is None:
            raise UserError(f"{name}: not an option of 'rnnkit train forecast' (see its --help)")
        setattr(owner, name, tuple(value) if isinstance(value, list) else value)


class RecurrentForecaster:
    def __init__(self, input_len: int = 96, horizon: int = 24, *, work_dir: str | None = None, **options) -> None:
        """A model of the ``forecast`` task; ``work_dir`` keeps the run folder (default: a temporary one, removed)."""
        self.config = ForecastTask().default_config()
        _set_options(self.config, {"input_len": input_len, "horizon": horizon, **options})
        self.work_dir = Path(work_dir) if work_dir else None
        self.session: ForecastSession | None = None
        self.summary: dict = {}
        self.history = None  # what predict and backtest forecast from by default: the training data

    def fit(self, series, time_column: str = "date", target: str | tuple[str, ...] = (),
            covariates: tuple[str, ...] = (), series_column: str | None = None) -> RecurrentForecaster:
        """Train on ``series``: a pandas DataFrame with a time column, or the path of a CSV file.
        ``summary`` then holds the validation and test metrics and the baselines."""
        data = self.config.dataset
        data.time_column, data.covariates, data.series_column = time_column, tuple(covariates), series_column
        data.target = (target,) if isinstance(target, str) else tuple(target)
        if len(data.target) > 1:
            data.features = "multivariate"
        if self.work_dir is not None:
            self._train(series, self.work_dir)
            self.history = None  # the run's own data file, kept: as a loaded run reads it
        else:
            with tempfile.TemporaryDirectory(prefix="rnnkit-forecast-") as folder:
                self._train(series, Path(folder))
            self.history = series  # the data file went with the folder
        return self

    def _train(self, series, folder: Path) -> None:
        from rnnkit.tasks.training import train_task  # the trainer, only when training

        folder.mkdir(parents=True, exist_ok=True)
        if isinstance(series, (str, Path)):
            self.config.dataset.data = str(series)
        else:  # the task reads a file: the run's config.yaml names it, and a resumed run reads it again
            series.to_csv(folder / "data.csv", index=False)
            self.config.dataset.data = str(folder / "data.csv")
        self.config.out, self.config.overwrite = str(folder / "run"), True
        self.config.validate()
        _, self.summary, self.session = train_task(ForecastTask(), self.config)

    @classmethod
    def load(cls, run: str) -> RecurrentForecaster:
        """The trained model of a run folder written by ``rnnkit train forecast`` (or by ``fit`` with a work_dir)."""
        trained = read_trained_run(run)
        if trained.task.name != "forecast":
            raise UserError(f"{run}: a {trained.task.name} run, not a forecast one")
        model = cls.__new__(cls)
        model.config, model.work_dir, model.summary, model.history = trained.config, Path(run), {}, None
        model.session = trained.session()
        return model

    def predict(self, n: int | None = None, series=None):
        """A DataFrame of the ``n`` steps (at most the trained horizon) after the end of ``series`` (a DataFrame or a
        CSV path; default: the training data): one row per series, column and step, with the interval bounds of
        probabilistic models."""
        import pandas

        session = self._trained()
        forecasts = session.forecasting().after(self._series(series), n or 0, option="n")
        return pandas.DataFrame(forecast_rows(forecast_record("", forecasts, session.layout.target_names)))

    def backtest(self, series=None):
        """A DataFrame of the forecasts at every test window of ``series`` (default: the training data), with the
        actual values, and their MSE and MAE in the scaler's units."""
        import pandas

        session = self._trained()
        forecasts, metrics = session.forecasting().backtest(self._series(series))
        return pandas.DataFrame(forecast_rows(forecast_record("", forecasts, session.layout.target_names))), metrics

    def _trained(self) -> ForecastSession:
        if self.session is None:
            raise UserError("the model is not trained: call fit(series) first, or RecurrentForecaster.load(run)")
        return self.session

    def _series(self, series):
        return self._trained().read_file(series if series is not None else self.history)
