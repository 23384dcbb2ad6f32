"""A recurrent forecaster: read L steps of a multivariate series, forecast H steps of its target columns.

    direct:   history (L, B, C+F) -> [RevIN] -> Recurrent -> final h -> linear -> H x T x P outputs at once
              [+ highway: a linear map of each target's L input values to its H forecast values (LSTNet)]
    seq2seq:  history -> encoder -> final state -> decoder, one step per forecast step:
              input at step h = (the target values of step h-1, the calendar features of step h) -> linear -> T x P
    segrnn:   each column on its own: L/w segments -> Recurrent -> every horizon segment decoded at once
              from the final state (``rnnkit.models.segment_rnn``, Lin et al. 2023)

C columns (the T targets first, then past covariates), F calendar features, P numbers per
forecast (``ForecastOutput``: a point, a distribution's parameters or quantiles).
The seq2seq decoder is autoregressive: it is fed its own point forecast at inference, and the
true previous value in training (teacher forcing, as DeepAR trains; the whole horizon is then
one ``Recurrent`` call). RevIN (Kim et al. 2022) standardises each input window by its own mean
and standard deviation per column, with a learnt affine map, and moves the forecast back to
the window's units: the model sees shapes, not levels, which helps where the level drifts.
``subtract_last`` centres each window on its last value instead (alone, without RevIN's
scaling, it is SegRNN's and NLinear's normalisation), which follows a level that moves within
the window.
The model owns its loss. Its forward is the model contract's, with the known inputs of the
forecast steps (the calendar) as the extra ``future_inputs``; the state is the encoder's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from rnnkit.errors import UserError
from rnnkit.models.config import RecurrentConfig
from rnnkit.models.forecast_baselines import LinearBaseline
from rnnkit.models.forecast_outputs import DISTRIBUTIONS, ForecastOutput
from rnnkit.models.readout import final_hidden
from rnnkit.models.segment_rnn import SegmentRecurrent

ARCHITECTURES = ("direct", "seq2seq", "segrnn")
REVIN_EPSILON = 1e-5


@dataclass
class ForecasterConfig(RecurrentConfig):
    architecture: str = "direct"
    """direct (one linear layer forecasts the whole horizon from the final state), seq2seq (an autoregressive
    decoder fed the known calendar features of each forecast step) or segrnn (SegRNN: segments in, every horizon
    segment decoded at once; each column on its own)."""
    segment_length: int = 24
    """segrnn: the steps of one segment; it must divide --input-len and --horizon."""
    channel_independent: bool = False
    """Forecast every column as its own univariate series with one shared model (as PatchTST and SegRNN do);
    the columns then inform each other only through the shared weights."""
    highway: bool = True
    """Add a linear autoregression on each target's input window to the recurrent forecast (LSTNet's highway,
    Lai et al. 2018): the network then learns what a linear model misses."""
    revin: bool = False
    """Reversible instance normalisation: standardise each input window by its own statistics (Kim et al. 2022)."""
    subtract_last: bool = False
    """Centre each input window on its last value instead of its mean (RevIN's option in PatchTST); without --revin,
    only subtract it and add it back to the forecast, SegRNN's and NLinear's normalisation (no scaling)."""
    distribution: str = "point"
    """point (MSE), gaussian or student_t (negative log-likelihood), or quantile (pinball loss at --quantiles)."""
    quantiles: tuple[float, ...] = (0.05, 0.1, 0.5, 0.9, 0.95)
    """The levels --distribution quantile forecasts (the 80% and 90% intervals need 0.1, 0.9, 0.05, 0.95)."""

    def validate(self) -> None:
        super().validate()
        if self.architecture not in ARCHITECTURES:
            raise UserError(f"--architecture: expected one of {', '.join(ARCHITECTURES)}, got {self.architecture!r}")
        if self.segment_length <= 0:
            raise UserError(f"--segment-length: expected a positive number of steps, got {self.segment_length}")
        if self.distribution not in DISTRIBUTIONS:
            raise UserError(f"--distribution: expected one of {', '.join(DISTRIBUTIONS)}, got {self.distribution!r}")
        if self.distribution == "quantile" and (not self.quantiles or list(self.quantiles) != sorted(set(self.quantiles))
                                                or not all(0 < q < 1 for q in self.quantiles)):
            raise UserError(f"--quantiles: expected increasing levels in (0, 1), got {' '.join(map(str, self.quantiles))}")


class Forecaster(nn.Module):
    def __init__(self, columns: int, targets: int, calendar: int, input_len: int, horizon: int,
                 config: ForecasterConfig) -> None:
        super().__init__()
        if config.channel_independent or config.architecture == "segrnn":  # SegRNN reads each column on its own
            if columns != targets:
                raise UserError(f"--{'channel-independent' if config.channel_independent else 'architecture segrnn'}: "
                                "every column is forecast on its own; drop --covariates")
            self.folded, columns, targets = columns, 1, 1
        else:
            self.folded = 0
        self.columns, self.targets, self.horizon, self.config = columns, targets, horizon, config
        self.output = ForecastOutput(config.distribution, config.quantiles)
        self.dropout = nn.Dropout(config.dropout)
        self.directions = 2 if config.bidirectional else 1
        self.segments = None
        if config.architecture == "segrnn":
            self.segments = SegmentRecurrent(config, input_len, horizon, config.segment_length, max(self.folded, 1),
                                             self.output.width)
            readout = self.segments.head
        else:
            self.encoder = config.build(columns + calendar)
            width = self.encoder.cells[-1].output_size * self.directions
            if config.architecture == "seq2seq":  # built before the head: initial weights come in this order
                self.decoder = replace(config, bidirectional=False, hidden_size=width).build(targets + calendar)
            out = horizon * targets if config.architecture == "direct" else targets  # the decoder writes a step at a time
            self.head = readout = nn.Linear(width, out * self.output.width)
        if config.highway:  # one map from a target's L input values to its H forecast values, shared by the targets
            self.highway = nn.Linear(input_len, horizon)
            nn.init.zeros_(readout.weight)  # the network's part starts silent: the forecast starts as the highway's
            nn.init.zeros_(readout.bias)
        if config.revin:
            self.revin_weight = nn.Parameter(torch.ones(columns))
            self.revin_bias = nn.Parameter(torch.zeros(columns))

    @property
    def window_encoder(self) -> nn.Module:
        """The recurrent layers that read the input window (what ``rnnkit inspect`` watches)."""
        return self.segments.rnn if self.segments is not None else self.encoder

    @torch.no_grad()
    def start_highway(self, history: torch.Tensor, targets: torch.Tensor) -> None:
        """Start the highway at the least-squares linear forecast of training windows, history (L, N, C+F) and
        targets (H, N, T), in the units it reads (each window's own, with RevIN): the recurrent part then
        learns from the first step what a linear model misses."""
        if self.folded:
            history, _, targets = fold_channels(history, history[:1, :, self.folded :], targets, self.folded)
        values = history[..., : self.targets]
        centre, scale = self._window_statistics(values)
        if centre is not None:  # at the start RevIN's affine map is the identity
            values, targets = (values - centre) / scale, (targets - centre) / scale
        linear = LinearBaseline(values.shape[0], targets.shape[0]).fit(values, targets)
        self.highway.weight.copy_(linear.weight[:-1].T)
        self.highway.bias.copy_(linear.weight[-1])

    def forward(
        self,
        inputs: torch.Tensor,
        state=None,
        *,
        lengths: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
        future_inputs: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, tuple[torch.Tensor, ...]]:
        """inputs (L, B, C+F): the history windows; future_inputs (H', B, F): the calendar of the H' <= H steps to
        forecast -> forecast parameters (H', B, T, P), the mean loss against targets (H', B, T) if given, and the
        encoder's final state (its first is ``state``, zeros by default). ``lengths`` must be L for every window:
        the highway and RevIN read whole windows."""
        if future_inputs is None:
            raise ValueError("future_inputs: a forecaster needs the known inputs (H, B, F) of the steps it forecasts")
        if lengths is not None and bool((torch.as_tensor(lengths) != inputs.shape[0]).any()):
            raise ValueError(f"lengths: a forecaster reads whole windows of {inputs.shape[0]} steps, got {lengths.tolist()}")
        if self.folded:  # C columns of B windows -> B*C one-column windows, each with its window's calendar
            inputs, future_inputs, targets = fold_channels(inputs, future_inputs, targets, self.folded)
            parameters, loss, state = self._forecast(inputs, future_inputs, targets, state)
            return parameters.reshape(parameters.shape[0], -1, self.folded, parameters.shape[-1]), loss, state
        return self._forecast(inputs, future_inputs, targets, state)

    def _forecast(self, history: torch.Tensor, future_calendar: torch.Tensor, targets: torch.Tensor | None, state,
                  ) -> tuple[torch.Tensor, torch.Tensor | None, tuple[torch.Tensor, ...]]:
        values, calendar = history[..., : self.columns], history[..., self.columns :]
        centre, scale = self._window_statistics(values)  # the window's centre and scale (1, B, C), or None
        if centre is not None:
            centre, scale = centre.detach(), scale.detach()
            values = self._normalise(values, centre, scale)
        steps, batch = future_calendar.shape[:2]
        linear = None  # the highway's forecast (H, B, T), in the encoder's units (the normalised window's)
        if self.config.highway:
            linear = self.highway(values[..., : self.targets].transpose(0, 2)).transpose(0, 2)[:steps]
        if self.segments is not None:  # one column a row (folded): row b*C + c is column c of window b
            raw, state = self.segments(values[..., 0], state)  # (H, B, P); the calendar is not read
            parameters = self.output.parameters(raw[:steps].unsqueeze(2))
        elif self.config.architecture == "direct":
            hidden, state = self.encoder(self.dropout(torch.cat([values, calendar], dim=-1)), state)
            raw = self.head(self.dropout(final_hidden(state, self.directions)))  # (B, H*T*P)
            raw = raw.view(batch, self.horizon, self.targets, -1)[:, :steps].transpose(0, 1)
            parameters = self.output.parameters(raw)
        else:
            hidden, state = self.encoder(self.dropout(torch.cat([values, calendar], dim=-1)), state)
            decoder_state = tuple(part[-self.directions :].transpose(0, 1).reshape(1, batch, -1) for part in state)
            decoder_state = tuple(part.expand(self.decoder.num_layers, -1, -1).contiguous() for part in decoder_state)
            parameters = self._decode(values[-1, :, : self.targets], future_calendar, decoder_state, targets, centre,
                                      scale, linear)
        if linear is not None:  # moves every location (every quantile)
            parameters = self.output.rescale(parameters, linear, torch.ones_like(linear))
        if centre is not None:  # back to the scaled units of the data: x = (x' - b) / w * scale + centre
            scale_t, centre_t = scale[..., : self.targets], centre[..., : self.targets]
            if self.config.revin:
                scale_t = scale_t / (self.revin_weight[: self.targets] + REVIN_EPSILON ** 2)
                centre_t = centre_t - self.revin_bias[: self.targets] * scale_t
            parameters = self.output.rescale(parameters, centre_t, scale_t)
        loss = None if targets is None else self.output.loss(parameters.float(), targets.float())
        return parameters, loss, state

    def _window_statistics(self, values: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The centre and scale (1, B, C) that normalise each window (L, B, C), or (None, None) where none does:
        RevIN's mean (or last value) and standard deviation, or only the last value (--subtract-last alone)."""
        if self.config.revin:
            centre, scale = window_statistics(values)
            return (values[-1:] if self.config.subtract_last else centre), scale
        if self.config.subtract_last:
            return values[-1:], torch.ones_like(values[-1:])
        return None, None

    def _normalise(self, values: torch.Tensor, centre: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """Values (..., C') of the first C' columns in the encoder's units: (x - centre) / scale [* w + b, RevIN's]."""
        width = values.shape[-1]
        values = (values - centre[..., :width]) / scale[..., :width]
        return values * self.revin_weight[:width] + self.revin_bias[:width] if self.config.revin else values

    def _decode(self, last: torch.Tensor, calendar: torch.Tensor, state, targets: torch.Tensor | None,
                centre: torch.Tensor | None, scale: torch.Tensor | None, linear: torch.Tensor | None) -> torch.Tensor:
        """The decoder's forecast parameters (H, B, T, P); ``last`` (B, T) is the last input value, in the encoder's
        units (the normalised window's), as are the values fed back: the previous step's whole forecast,
        the decoder's point plus the highway's ``linear`` (H, B, T) where there is one."""
        steps, batch = calendar.shape[:2]
        if targets is not None and self.training:  # teacher forcing: the true previous values, one call
            previous = targets[:-1] if centre is None else self._normalise(targets[:-1], centre, scale)
            inputs = torch.cat([torch.cat([last.unsqueeze(0), previous]), calendar], dim=-1)
            hidden, _ = self.decoder(self.dropout(inputs), state)
            return self.output.parameters(self.head(self.dropout(hidden)).view(steps, batch, self.targets, -1))
        outputs, value = [], last
        for step in range(steps):  # autoregressive: the point forecast of step h is the input of step h+1
            hidden, state = self.decoder(torch.cat([value, calendar[step]], dim=-1).unsqueeze(0), state)
            parameters = self.output.parameters(self.head(hidden[0]).view(batch, self.targets, -1))
            outputs.append(parameters)
            value = self.output.point(parameters) + (0 if linear is None else linear[step])
        return torch.stack(outputs)


def window_statistics(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean and standard deviation over time of each window's columns: (L, B, C) -> (1, B, C) each."""
    return values.mean(0, keepdim=True), (values.var(0, keepdim=True, unbiased=False) + REVIN_EPSILON).sqrt()


def fold_channels(history: torch.Tensor, future_calendar: torch.Tensor, targets: torch.Tensor | None, columns: int):
    """(L, B, C+F), (H, B, F), (H, B, C) -> (L, B*C, 1+F), (H, B*C, F), (H, B*C, 1): column c of window b is row b*C + c."""
    steps, batch = history.shape[:2]
    values = history[..., :columns].reshape(steps, batch * columns, 1)
    calendar = history[..., columns:].repeat_interleave(columns, dim=1)
    future = future_calendar.repeat_interleave(columns, dim=1)
    folded = None if targets is None else targets.reshape(targets.shape[0], batch * columns, 1)
    return torch.cat([values, calendar], dim=-1), future, folded
