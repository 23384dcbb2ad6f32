"""Forecasting windows: chronological splits, a scaler fitted on the training rows, and (input, horizon) windows.

A window reads ``L`` rows and forecasts the ``H`` after them. Its split is where its forecast
falls: the windows of a split forecast only that split's rows, but may read back up to ``L``
rows into the split before it (Informer's data loader does this: ``border1 = border - seq_len``)::

    rows:        0 ............ 8640 ............ 11520 ............ 14400
    split:       [ train        )[ validation     )[ test             )
    a test window:                        [ L rows )[ H rows ) ...
                                           reads     forecasts

The scaler (mean and standard deviation per column, as scikit-learn's StandardScaler) is
fitted on the training rows only, so no window of the validation or test period sees a
statistic of it. Several series (``--series-column``) are split each on its own, and no
window crosses from one series into another.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy
import torch

from rnnkit.data.batch import Batch
from rnnkit.data.splits import SPLITS
from rnnkit.data.time_series import Series
from rnnkit.data.whole_sequences import ShuffledRows
from rnnkit.errors import UserError

ETT_HOURLY_BORDERS = (8640, 11520, 14400)  # Informer: 12, 4 and 4 months of hours; the rows after 14,400 are unused


def fraction_borders(rows: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """Where train, validation and test end: the last fractions of the rows, in time order."""
    test_start = rows - round(rows * test_fraction)
    validation_start = test_start - round(rows * val_fraction)
    return validation_start, test_start, rows


def split_ends(rows: int, borders: tuple[int, int, int] | None, val_fraction: float,
               test_fraction: float) -> tuple[int, int, int]:
    """Where train, validation and test end in a series of ``rows`` rows: the fixed ``borders`` (ETT's), or by
    fractions."""
    return borders or fraction_borders(rows, val_fraction, test_fraction)


@dataclass
class Scaler:
    """Per-column standardisation: (x - mean) / std, with the statistics of the training rows."""

    mean: numpy.ndarray  # (C,)
    std: numpy.ndarray  # (C,)

    @classmethod
    def fit(cls, rows: numpy.ndarray) -> Scaler:
        std = rows.std(axis=0)
        return cls(rows.mean(axis=0), numpy.where(std > 0, std, 1.0))

    def transform(self, values: numpy.ndarray) -> numpy.ndarray:
        return ((values - self.mean) / self.std).astype(numpy.float32)

    def to_state(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_state(cls, state: dict) -> Scaler:
        return cls(numpy.array(state["mean"]), numpy.array(state["std"]))


@dataclass
class SeriesLayout:
    """How a run reads a file: its columns (targets first, then covariates), the scaler fitted on its training
    rows, the time step (for the calendar features) and the season of the seasonal baseline; kept in the
    checkpoint, so that a trained model reads a new file the way training read its own."""

    columns: tuple[str, ...]
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

    def target_scaling(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The scaler's mean and standard deviation (T,) of the target columns: scaled x -> x * std + mean."""
        return tuple(torch.tensor(values[: self.targets], dtype=torch.float32)
                     for values in (self.scaler.mean, self.scaler.std))

    def scaled(self, series: list[Series]) -> list[Series]:
        return [Series(one.name, one.times, self.scaler.transform(one.values), one.calendar) for one in series]


class Windows:
    """Every (L + H)-row window of ``series`` whose forecast falls in rows [start, end) of its series.

    ``series`` hold scaled values (N, C), targets in their first ``targets`` columns.
    """

    def __init__(self, series: list[Series], spans: list[tuple[int, int]], input_len: int, horizon: int,
                 targets: int) -> None:
        self.series, self.input_len, self.horizon, self.targets = series, input_len, horizon, targets
        self.tables = [torch.from_numpy(numpy.concatenate([one.values, one.calendar], axis=1)).float() for one in series]
        self.calendar_width = series[0].calendar.shape[1]
        self.index = []  # (series number, first row of the window)
        for number, (start, end) in enumerate(spans):
            first = max(start - input_len, 0)
            self.index += [(number, row) for row in range(first, end - input_len - horizon + 1)]

    def __len__(self) -> int:
        return len(self.index)

    def batch(self, positions) -> Batch:
        """Windows, time-major: inputs (L, B, C + F) the columns (targets first) then the calendar features;
        ``future_inputs`` (H, B, F) the calendar of the forecast steps; targets (H, B, T) the values to forecast."""
        windows = torch.stack([self.tables[number][row : row + self.input_len + self.horizon]
                               for number, row in (self.index[int(p)] for p in positions)], dim=1)  # (L + H, B, C + F)
        history, future = windows[: self.input_len], windows[self.input_len :]
        calendar = future[..., future.shape[-1] - self.calendar_width :]
        return Batch(history, future[..., : self.targets], starts_epoch=True, extras={"future_inputs": calendar})

    def batches(self, size: int):
        """Every window once, in order, ``size`` at a time."""
        for start in range(0, len(self), size):
            yield self.batch(range(start, min(start + size, len(self))))

    def origins(self) -> list[tuple[int, int]]:
        """(series number, row of the first forecast step) of every window, in order."""
        return [(number, row + self.input_len) for number, row in self.index]


def split_windows(series: list[Series], borders: tuple[int, int, int] | None, val_fraction: float,
                  test_fraction: float, input_len: int, horizon: int, targets: int) -> dict[str, Windows]:
    """The train, validation and test windows (a split without any is left out; train must have one)."""
    spans = {split: [] for split in SPLITS}
    for one in series:
        ends = split_ends(len(one), borders, val_fraction, test_fraction)
        if ends[-1] > len(one):
            raise UserError(f"{one.name}: the split needs {ends[-1]} rows, the series has {len(one)}")
        for split, start, end in zip(SPLITS, (0, *ends[:2]), ends):
            spans[split].append((start, end))
    windows = {split: Windows(series, spans[split], input_len, horizon, targets) for split in SPLITS}
    if len(windows["train"]) == 0:
        shortest = min(end for _, end in spans["train"])
        raise UserError(f"the training rows ({shortest} in the shortest series) hold no window of --input-len "
                        f"{input_len} + --horizon {horizon} = {input_len + horizon} rows; lower them or give more rows")
    return {split: found for split, found in windows.items() if len(found)}


class ShuffledWindows(ShuffledRows):
    """Training epochs over ``windows`` in a new random order each time (``ShuffledRows``)."""

    def __init__(self, windows: Windows, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        if len(windows) < batch_size * world_size:
            raise UserError(f"--batch-size: {len(windows)} training windows cannot fill a batch of {batch_size} x "
                            f"{world_size} processes; lower --batch-size")
        super().__init__(len(windows), batch_size, seed, rank, world_size)
        self.windows = windows

    def next_batch(self) -> Batch:
        return self.windows.batch(self.next_rows())
