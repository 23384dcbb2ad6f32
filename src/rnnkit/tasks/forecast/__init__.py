"""``forecast``: time-series forecasting (``task.py``), its commands (``commands.py``) and the darts-style Python
API ``RecurrentForecaster`` (``api.py``). The API reads trained runs (``rnnkit.tasks.runs``), which sits above the
task registry that imports this package, so it is imported when asked for, not here."""

from rnnkit.tasks.forecast.task import ForecastTask

__all__ = ["ForecastTask", "RecurrentForecaster"]


def __getattr__(name: str):
    if name == "RecurrentForecaster":
        from rnnkit.tasks.forecast.api import RecurrentForecaster

        return RecurrentForecaster
    raise AttributeError(f"module 'rnnkit.tasks.forecast' has no attribute {name!r}")
