"""A forecast run's test MSE and MAE over every test window (rnnkit's protocol), and over the windows the
reference repositories score: their test loader (Autoformer's data_factory, kept by DLinear, PatchTST, SegRNN and
iTransformer) has ``drop_last=True`` with batch 256, so it scores the first 256 * floor(N / 256) windows only.

    python benchmarks/forecast_drop_last.py RUN [RUN ...]
"""

from __future__ import annotations

import sys

from rnnkit.metrics import forecast_errors
from rnnkit.tasks.runs import restore_session

REFERENCE_BATCH = 256


def main(runs: list[str]) -> None:
    for run in runs:
        _, session = restore_session(run)
        session.model.eval()
        forecasting = session.forecasting()
        test = forecasting.windows(session.read_file(None))["test"]
        parameters, actual, _ = forecasting.parameters(test)
        point = session.model.output.point(parameters)
        kept = len(test) // REFERENCE_BATCH * REFERENCE_BATCH
        every, dropped = forecast_errors(point, actual), forecast_errors(point[:kept], actual[:kept])
        print(f"{run}: every window ({len(test)}) MSE {every['mse']:.4f} MAE {every['mae']:.4f}; "
              f"the first {kept} (drop_last) MSE {dropped['mse']:.4f} MAE {dropped['mae']:.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
