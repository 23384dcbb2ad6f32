"""The baselines every forecast is reported beside, on the same windows: a recurrent model that does not
beat them has learnt nothing worth its cost.

    naive           every step of the horizon repeats the last value read
    seasonal naive  step h repeats the value one season earlier: x[L - m + (h mod m)] (m: --season)
    linear          one least-squares map from the L values read to the H forecast, shared by every
                    target column (channel-independent, as Zeng et al. 2023's "Linear")

Each takes the targets' history (L, B, T) and returns the point forecast (H, B, T).
"""

from __future__ import annotations

import torch

RIDGE = 1e-6  # relative to the mean diagonal of the Gram matrix: keeps the fit well posed when inputs are collinear


def naive(history: torch.Tensor, horizon: int) -> torch.Tensor:
    return history[-1:].expand(horizon, -1, -1)


def seasonal_naive(history: torch.Tensor, horizon: int, season: int) -> torch.Tensor:
    if season > history.shape[0]:
        raise ValueError(f"a season of {season} steps needs an input of at least {season} steps")
    steps = history.shape[0] - season + torch.arange(horizon) % season
    return history[steps]


class LinearBaseline:
    def __init__(self, input_len: int, horizon: int) -> None:
        self.weight = torch.zeros(input_len + 1, horizon, dtype=torch.float64)  # the last row: the bias

    def fit(self, histories: torch.Tensor, futures: torch.Tensor) -> LinearBaseline:
        """Least squares on training windows: histories (L, N, T), futures (H, N, T)."""
        inputs = self._design(histories)
        outputs = futures.permute(1, 2, 0).reshape(-1, futures.shape[0]).double()  # (N*T, H)
        gram = inputs.T @ inputs
        gram += RIDGE * gram.diagonal().mean() * torch.eye(gram.shape[0], dtype=torch.float64)
        self.weight = torch.linalg.solve(gram, inputs.T @ outputs)
        return self

    def __call__(self, history: torch.Tensor) -> torch.Tensor:
        batch, targets = history.shape[1:]
        forecast = self._design(history) @ self.weight  # (B*T, H)
        return forecast.view(batch, targets, -1).permute(2, 0, 1).to(history.dtype)

    @staticmethod
    def _design(histories: torch.Tensor) -> torch.Tensor:
        rows = histories.permute(1, 2, 0).reshape(-1, histories.shape[0]).double()  # (N*T, L)
        return torch.cat([rows, torch.ones(rows.shape[0], 1, dtype=torch.float64)], dim=1)
