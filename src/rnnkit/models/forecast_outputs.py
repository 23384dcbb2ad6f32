"""What a forecaster outputs per target and step: a point, a distribution's parameters, or quantiles.

Each output kind says how many numbers it needs (``width``), how to train them (``loss``),
the point forecast (``point``: the mean, or the median of quantiles), a quantile for
prediction intervals (``quantile``), and how a location-scale change of units moves them
(``rescale``: x -> x * std + mean, for instance normalisation and for the scaler):

    point      x̂                         mean squared error
    gaussian   μ, σ = softplus(·)        negative log-likelihood of N(μ, σ²)
    student_t  μ, σ, ν = 2 + softplus(·) negative log-likelihood of t_ν(μ, σ)   (heavier tails)
    quantile   q_τ for τ in levels       pinball loss Σ_τ max(τ (y - q_τ), (τ - 1)(y - q_τ))
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DISTRIBUTIONS = ("point", "gaussian", "student_t", "quantile")
MIN_SCALE = 1e-4


class ForecastOutput:
    def __init__(self, kind: str, levels: tuple[float, ...] = ()) -> None:
        self.kind, self.levels = kind, tuple(levels)
        self.width = {"point": 1, "gaussian": 2, "student_t": 3, "quantile": len(self.levels)}[kind]

    @property
    def probabilistic(self) -> bool:
        return self.kind != "point"

    def has_quantile(self, level: float) -> bool:
        """Whether ``quantile(parameters, level)`` is defined: always for a distribution, at the trained levels only
        for quantiles, never for a point."""
        if self.kind == "quantile":
            return any(abs(known - level) < 1e-9 for known in self.levels)
        return self.probabilistic

    def parameters(self, raw: torch.Tensor) -> torch.Tensor:
        """Unconstrained outputs (..., width) -> the parameters (..., width): scales positive, quantiles ordered."""
        if self.kind in ("gaussian", "student_t"):
            scale = F.softplus(raw[..., 1:2]) + MIN_SCALE
            rest = [2.0 + F.softplus(raw[..., 2:3])] if self.kind == "student_t" else []  # ν > 2: finite variance
            return torch.cat([raw[..., :1], scale, *rest], dim=-1)
        if self.kind == "quantile":  # the lowest level, then non-negative steps up: no crossing quantiles
            return torch.cat([raw[..., :1], raw[..., :1] + F.softplus(raw[..., 1:]).cumsum(-1)], dim=-1)
        return raw

    def loss(self, parameters: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean loss of (..., width) parameters against (...) values."""
        if self.kind == "point":
            return F.mse_loss(parameters[..., 0], targets)
        if self.kind == "quantile":
            levels = parameters.new_tensor(self.levels)
            error = targets.unsqueeze(-1) - parameters
            return torch.maximum(levels * error, (levels - 1) * error).sum(-1).mean()
        return -self.distribution(parameters).log_prob(targets).mean()

    def distribution(self, parameters: torch.Tensor) -> torch.distributions.Distribution:
        if self.kind == "gaussian":
            return torch.distributions.Normal(parameters[..., 0], parameters[..., 1])
        return torch.distributions.StudentT(parameters[..., 2], parameters[..., 0], parameters[..., 1])

    def point(self, parameters: torch.Tensor) -> torch.Tensor:
        """(..., width) -> (...) the point forecast: the mean, or the median (the middle level) of quantiles."""
        if self.kind == "quantile":
            return parameters[..., min(range(len(self.levels)), key=lambda i: abs(self.levels[i] - 0.5))]
        return parameters[..., 0]

    def quantile(self, parameters: torch.Tensor, level: float) -> torch.Tensor:
        """(..., width) -> (...) the ``level`` quantile of the forecast distribution."""
        if self.kind == "gaussian":
            return self.distribution(parameters).icdf(parameters.new_tensor(level))
        if self.kind == "student_t":  # torch has no StudentT.icdf; scipy's inverse CDF of the standard t
            from scipy.special import stdtrit  # [tasks] extra

            standard = torch.as_tensor(stdtrit(parameters[..., 2].detach().double().cpu().numpy(), level))
            return parameters[..., 0] + parameters[..., 1] * standard.to(parameters)
        if self.kind == "quantile":
            matches = [i for i, known in enumerate(self.levels) if abs(known - level) < 1e-9]
            if not matches:
                raise ValueError(f"the quantile {level} is not among the trained levels {self.levels}")
            return parameters[..., matches[0]]
        raise ValueError("a point forecast has no quantiles; train with --distribution gaussian, student_t or quantile")

    def rescale(self, parameters: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """Parameters in units x -> in units x * std + mean (mean and std broadcast over (...))."""
        mean, std = mean.unsqueeze(-1), std.unsqueeze(-1)
        if self.kind in ("point", "quantile"):
            return parameters * std + mean
        location, scale = parameters[..., :1] * std + mean, parameters[..., 1:2] * std
        return torch.cat([location, scale, parameters[..., 2:]], dim=-1)
