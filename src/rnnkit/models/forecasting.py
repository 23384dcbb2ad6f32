"""A trained forecaster put to use: the forecast after the end of a series, a backtest over its test windows, and
the metrics of forecasts, in one object shared by ``rnnkit predict``/``evaluate`` and ``RecurrentForecaster``.

The model reads and writes scaled values (the run's scaler, fitted on its training rows);
this object reads files' series as training did (``SeriesLayout``: columns, scaler, calendar),
cuts them into the run's windows, and gives forecasts back in the file's own units::

    series (file units) ──scale──► windows / last input_len rows + the future calendar ──► model
    forecast parameters (scaled) ──ForecastOutput.rescale──► point forecast and interval bounds (file units)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy
import torch

from rnnkit.data.time_series import Series, calendar_features, calendar_for_step, future_times
from rnnkit.data.windows import SeriesLayout, Windows, split_windows
from rnnkit.errors import UserError
from rnnkit.metrics import central_quantiles, coverage, forecast_errors
from rnnkit.models.forecaster import Forecaster

EVALUATION_BATCH = 256
INTERVALS = (0.8, 0.9)  # the prediction intervals reported: central, so 80% spans the 0.1 and 0.9 quantiles


@dataclass
class Forecast:
    """The forecast of one series from one origin, in the file's units."""

    series: Series
    times: object  # the timestamps of the forecast steps (H,)
    values: dict[str, numpy.ndarray]  # "forecast", "lo-80", "hi-80", ... (and "actual" in a backtest): each (H, T)
    origin: int | None = None  # a backtest's row of the first forecast step


@dataclass
class Forecasting:
    """``model`` with what it needs to read series as its training did."""

    model: Forecaster
    layout: SeriesLayout
    input_len: int
    horizon: int
    borders: tuple[int, int, int] | None  # fixed split borders (ETT's); None: by the fractions
    val_fraction: float
    test_fraction: float

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def windows(self, series: list[Series]) -> dict[str, Windows]:
        """The train, validation and test windows of ``series`` (file units), scaled by the run's scaler."""
        return split_windows(self.layout.scaled(series), self.borders, self.val_fraction, self.test_fraction,
                             self.input_len, self.horizon, self.layout.targets)

    @torch.no_grad()
    def parameters(self, windows: Windows) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The forecast parameters (N, H, T, P), the actual values (N, H, T) and the targets' history (N, L, T) of
        every window, in order, in scaled units."""
        parameters, actual, history = [], [], []
        for batch in windows.batches(EVALUATION_BATCH):
            on_device = batch.to(self.device)
            outputs, _, _ = self.model(on_device.inputs, **on_device.extras)
            parameters.append(outputs.float().cpu().transpose(0, 1))
            actual.append(batch.targets.transpose(0, 1))
            history.append(batch.inputs[..., : self.layout.targets].transpose(0, 1))
        return torch.cat(parameters), torch.cat(actual), torch.cat(history)

    def intervals(self) -> tuple[float, ...]:
        """The central intervals (of ``INTERVALS``) whose bounds the model forecasts: none for a point forecast, and
        for quantiles those whose both bounds are among --quantiles."""
        return tuple(level for level in INTERVALS
                     if all(self.model.output.has_quantile(q) for q in central_quantiles(level)))

    def metrics(self, parameters: torch.Tensor, actual: torch.Tensor) -> dict[str, float]:
        """The loss, MSE and MAE of forecasts (N, H, T, P) against the actual values (N, H, T), and the coverage of
        the central intervals of a probabilistic forecast."""
        output = self.model.output
        metrics = {"loss": float(output.loss(parameters, actual)), **forecast_errors(output.point(parameters), actual)}
        for level in self.intervals():
            lower, upper = (output.quantile(parameters, q) for q in central_quantiles(level))
            metrics[f"coverage_{round(level * 100)}"] = coverage(actual, lower, upper)
        return metrics

    def after(self, series: list[Series], horizon: int = 0, option: str = "--horizon") -> list[Forecast]:
        """The next ``horizon`` steps (0: the trained horizon; ``option`` names it in errors) after the end of each
        series."""
        if not 0 <= horizon <= self.horizon:
            raise UserError(f"{option}: expected 1 to the trained horizon {self.horizon}, got {horizon}")
        horizon = horizon or self.horizon
        for one in series:
            if len(one) < self.input_len:
                raise UserError(f"{one.name}: {len(one)} rows; the model reads --input-len {self.input_len} before "
                                "forecasting, so it needs at least that many")
        layout = self.layout
        names = calendar_for_step(layout.step_seconds)
        futures = [future_times(one.times, horizon, layout.step_seconds) for one in series]
        history = torch.stack([torch.from_numpy(numpy.concatenate(
            [layout.scaler.transform(one.values[-self.input_len :]), one.calendar[-self.input_len :]], axis=1))
            for one in series], dim=1).float()
        calendar = torch.stack([torch.from_numpy(calendar_features(times, names)) for times in futures], dim=1).float()
        self.model.eval()
        with torch.no_grad():
            parameters, _, _ = self.model(history.to(self.device), future_inputs=calendar.to(self.device))
        values = self._unscaled(parameters.float().cpu())  # each (H, S, T)
        return [Forecast(one, times, {name: value[:, number].numpy() for name, value in values.items()})
                for number, (one, times) in enumerate(zip(series, futures))]

    def backtest(self, series: list[Series]) -> tuple[list[Forecast], dict[str, float]]:
        """Forecasts at every test window of ``series`` (split as in training), in the file's units, and their
        metrics in scaled units."""
        windows = self.windows(series).get("test")
        if windows is None:
            raise UserError(f"the file's test rows hold no window of --horizon {self.horizon} steps")
        self.model.eval()
        parameters, actual, _ = self.parameters(windows)  # (N, H, T, P), (N, H, T)
        values = self._unscaled(parameters)
        mean, std = self.layout.target_scaling()
        values["actual"] = actual * std + mean
        found = []
        for index, (number, first) in enumerate(windows.origins()):
            one = series[number]
            found.append(Forecast(one, one.times[first : first + self.horizon],
                                  {name: value[index].numpy() for name, value in values.items()}, origin=first))
        return found, self.metrics(parameters, actual)

    def _unscaled(self, parameters: torch.Tensor) -> dict[str, torch.Tensor]:
        """(..., T, P) parameters in scaled units -> the point forecast and the interval bounds (..., T) in the
        file's units."""
        output = self.model.output
        parameters = output.rescale(parameters.float(), *self.layout.target_scaling())
        found = {"forecast": output.point(parameters)}
        for level in self.intervals():
            lower, upper = central_quantiles(level)
            found[f"lo-{round(level * 100)}"] = output.quantile(parameters, lower)
            found[f"hi-{round(level * 100)}"] = output.quantile(parameters, upper)
        return found
