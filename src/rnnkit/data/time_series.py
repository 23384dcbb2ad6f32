"""Time series read from a CSV file: a time column, numeric columns, and optionally a column naming each series.

    date,                HUFL,  ...,  OT        one row per time step, oldest first
    2016-07-01 00:00:00, 5.827, ...,  30.531

Everything a forecaster cannot train on is one ``UserError`` naming the file, line and column,
and how to fix it: an unknown column (the columns that exist are listed), a cell that is not a
number, a missing value (or ``fill="ffill"``/``"interpolate"`` to fill gaps explicitly),
duplicated or unsorted timestamps. Nothing reaches training as a silent NaN.
Calendar features of the timestamps (hour of day, day of week, ..., each scaled to
[-0.5, 0.5] as Informer's ``time_features`` does) are the covariates known in the future.
Read with pandas, the library made for this.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy

from rnnkit.errors import UserError

FILLS = ("none", "ffill", "interpolate")
FIRST_DATA_LINE = 2  # the header is line 1


@dataclass
class Series:
    """One series: its rows' timestamps and values (N, C) of ``columns``, and its calendar features (N, F)."""

    name: str  # the --series-column value, or the file's name (without its folder)
    times: object  # pandas.DatetimeIndex, or a numpy array of numbers
    values: numpy.ndarray  # (N, C) float32
    calendar: numpy.ndarray  # (N, F) float32

    def __len__(self) -> int:
        return len(self.values)


def calendar_features(times, names: tuple[str, ...]) -> numpy.ndarray:
    """(N, F) features of the timestamps in [-0.5, 0.5], in the order of ``names``."""
    columns = {
        "hour": lambda t: t.hour / 23.0 - 0.5,
        "weekday": lambda t: t.day_of_week / 6.0 - 0.5,
        "day": lambda t: (t.day - 1) / 30.0 - 0.5,
        "yearday": lambda t: (t.day_of_year - 1) / 365.0 - 0.5,
        "month": lambda t: (t.month - 1) / 11.0 - 0.5,
    }
    if not names:
        return numpy.zeros((len(times), 0), dtype=numpy.float32)
    return numpy.stack([numpy.asarray(columns[name](times), dtype=numpy.float32) for name in names], axis=1)


def calendar_for_step(step_seconds: float | None) -> tuple[str, ...]:
    """The calendar features that vary between the rows of a series sampled every ``step_seconds``."""
    if step_seconds is None:  # times are plain numbers
        return ()
    day = 86400.0
    if step_seconds < day:
        return ("hour", "weekday", "day", "yearday")
    if step_seconds < 28 * day:
        return ("weekday", "day", "yearday")
    return ("month",)


def season_for_step(step_seconds: float | None) -> int:
    """The usual seasonal period in rows: a day of hours, a week of days, a year of months (1: none known)."""
    if step_seconds is None:
        return 1
    for period_seconds, rows in ((3600.0, 24), (86400.0, 7)):
        if abs(step_seconds - period_seconds) < 1:
            return rows
    return 12 if 28 * 86400 <= step_seconds <= 31 * 86400 else 1


def read_series_csv(path: str, time_column: str, columns: tuple[str, ...], series_column: str | None = None,
                    fill: str = "none", option: str = "--data") -> tuple[list[Series], tuple[str, ...], float | None]:
    """The series of a CSV file (one, or one per value of ``series_column``), each with ``columns`` (all the
    numeric columns besides time and series if empty), the column names read, and the time step in seconds
    (None where the times are plain numbers)."""
    import pandas  # [tasks] extra

    try:
        frame = pandas.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise UserError(f"{option}: {path}: no such file") from None
    except (pandas.errors.ParserError, UnicodeDecodeError, pandas.errors.EmptyDataError) as error:
        raise UserError(f"{option}: {path}: not a CSV file pandas can read ({error})".replace("\n", " ")) from None
    return read_series_table(frame, str(path), time_column, columns, series_column, fill)


def read_series_frame(frame, time_column: str, columns: tuple[str, ...], series_column: str | None = None,
                      fill: str = "none") -> tuple[list[Series], tuple[str, ...], float | None]:
    """As ``read_series_csv``, from a pandas DataFrame (rows counted from 0 in messages, as pandas counts them)."""
    cells = frame.astype(object).where(frame.notna(), "").astype(str)  # what read_csv(dtype=str) would read
    return read_series_table(cells, "the DataFrame", time_column, columns, series_column, fill, first_line=0,
                             row_word="row")


def read_series_table(frame, path: str, time_column: str, columns: tuple[str, ...], series_column: str | None,
                      fill: str, first_line: int = FIRST_DATA_LINE,
                      row_word: str = "line") -> tuple[list[Series], tuple[str, ...], float | None]:
    """The series of a table of strings (a CSV file read by pandas); ``path`` names it in messages."""
    import pandas

    frame.columns = [str(column).strip() for column in frame.columns]
    existing = ", ".join(frame.columns)
    for name, option_name in [(time_column, "--time-column"), *((c, "--target/--covariates") for c in columns),
                              *([(series_column, "--series-column")] if series_column else [])]:
        if name not in frame.columns:
            raise UserError(f"{option_name}: {path} has no column {name!r}; its columns are {existing}")
    if not columns:
        columns = tuple(c for c in frame.columns if c not in (time_column, series_column))
    if not columns:
        raise UserError(f"{path}: no value column besides {time_column!r}; its columns are {existing}")
    values = numpy.empty((len(frame), len(columns)), dtype=numpy.float64)
    for index, column in enumerate(columns):
        cells = frame[column].str.strip()
        numbers = pandas.to_numeric(cells.where(cells != ""), errors="coerce")
        bad = numbers.isna() & (cells != "")
        if bad.any():
            row = int(bad.to_numpy().argmax())
            raise UserError(f"{path} {row_word} {row + first_line}, column {column!r}: {cells.iloc[row]!r} is not a "
                            "number; fix the cell or leave it empty and pass --fill-missing")
        values[:, index] = numbers.to_numpy(dtype=numpy.float64, na_value=numpy.nan)
    times = _parse_times(frame[time_column], path, time_column)
    groups = [(Path(path).name, numpy.arange(len(frame)))] if series_column is None else [
        (str(name), numpy.flatnonzero((frame[series_column] == name).to_numpy()))
        for name in dict.fromkeys(frame[series_column])]
    read = []  # (name, times, values) of each series
    for name, rows in groups:
        where = path if series_column is None else f"{path} (series {name!r})"
        _check_order(times[rows], rows, where, time_column)
        read.append((name, times[rows], _fill(values[rows], rows, columns, fill, where).astype(numpy.float32)))
    step = _step_seconds(read[0][1])  # the first series' step decides the calendar features of all
    names = calendar_for_step(step)
    series = [Series(name, group_times, group_values, calendar_features(group_times, names))
              for name, group_times, group_values in read]
    return series, tuple(columns), step


def _parse_times(cells, path: str, column: str):
    import pandas

    numbers = pandas.to_numeric(cells, errors="coerce")
    if not numbers.isna().any():
        return numbers.to_numpy(dtype=numpy.float64)
    parsed = pandas.to_datetime(cells, errors="coerce", format="mixed")
    if parsed.isna().any():
        row = int(parsed.isna().to_numpy().argmax())
        raise UserError(f"{path} line {row + FIRST_DATA_LINE}, column {column!r}: {cells.iloc[row]!r} is not a date or "
                        "time pandas can read; write it as YYYY-MM-DD HH:MM:SS, or name the right --time-column")
    return pandas.DatetimeIndex(parsed)


def _check_order(times, rows: numpy.ndarray, where: str, column: str) -> None:
    order = numpy.asarray(times[1:] > times[:-1]) if len(times) > 1 else numpy.ones(0, dtype=bool)
    if not order.all():
        bad = int(numpy.argmin(order)) + 1
        what = "repeats the time before it" if times[bad] == times[bad - 1] else "is earlier than the row before it"
        raise UserError(f"{where} line {rows[bad] + FIRST_DATA_LINE}, column {column!r}: {times[bad]} {what}; rows must "
                        "be sorted by time with one row per time step (sort the file, remove duplicates)")


def _fill(values: numpy.ndarray, rows: numpy.ndarray, columns: tuple[str, ...], fill: str, where: str) -> numpy.ndarray:
    missing = numpy.isnan(values)
    if not missing.any():
        return values
    row, column = (int(i[0]) for i in numpy.nonzero(missing))
    if fill == "none":
        raise UserError(f"{where} line {rows[row] + FIRST_DATA_LINE}, column {columns[column]!r}: the value is missing; "
                        "fill the gaps with --fill-missing ffill (last value) or interpolate (linear), or fix the file")
    import pandas

    frame = pandas.DataFrame(values)
    frame = frame.ffill() if fill == "ffill" else frame.interpolate(limit_direction="both")
    frame = frame.bfill()  # a gap at the very start has no earlier value: the first one after it
    if frame.isna().any().any():
        raise UserError(f"{where}: column {columns[int(frame.isna().any().to_numpy().argmax())]!r} has no value at all")
    return frame.to_numpy()


def _step_seconds(times) -> float | None:
    if not hasattr(times, "to_numpy") or len(times) < 2:
        return None
    return float(numpy.median(numpy.diff(times.to_numpy())) / numpy.timedelta64(1, "s"))


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
