"""SegRNN's recurrent core (Lin et al. 2023, "Segment Recurrent Neural Network for Long-Term Time Series
Forecasting"): a window read a segment per step, and the horizon written a segment per step, all at once.

    values (L, R) ─► N = L/w segments (N, R, w) ─► linear + ReLU ─► (N, R, d) ─► Recurrent ─► final state s
    horizon segment m of row r (all M = H/w of them in parallel, from the same s):
        [position embedding m ; channel embedding c(r)] (d) ─► the same Recurrent, one step from s
        ─► dropout ─► linear ─► w values (× the output's parameters) ─► (H, R, P)

Segments shorten the recurrence from L steps to L/w, which is what lets a single layer carry a
long window (segment-wise iteration); decoding every horizon segment from the same final state,
told apart only by its position (and its channel) embedding, replaces the step-by-step feedback
of recurrent decoders (parallel multi-step forecasting, PMF). A row is one channel of one window:
the forecaster folds channels into rows, so one set of weights serves every channel. Any cell
of the library runs it.

The decoder's B*C*M steps have only C*M distinct inputs and B*C distinct states, so it steps the
cells on those, broadcast (``Recurrent.step``), rather than on B*C*M copies as SegRNN's code does:
the same forecast, and three times faster to train at H = 720 (the copies' products were most of
the time).
"""

from __future__ import annotations

import torch
from torch import nn

from rnnkit.errors import UserError
from rnnkit.models.config import RecurrentConfig


class SegmentRecurrent(nn.Module):
    def __init__(self, config: RecurrentConfig, input_len: int, horizon: int, segment_length: int, channels: int,
                 width: int) -> None:
        """``config``'s cell and ``hidden_size`` (d); ``channels``: how many channel embeddings; ``width``: the numbers
        per forecast value (the output's parameters)."""
        super().__init__()
        if input_len % segment_length or horizon % segment_length:
            raise UserError(f"--segment-length: {segment_length} must divide --input-len ({input_len}) and --horizon "
                            f"({horizon}); choose a length that divides both")
        if config.bidirectional:
            raise UserError("--bidirectional: a segment RNN decodes forward from its last state; drop the option")
        d = config.hidden_size
        self.segment_length, self.width = segment_length, width
        self.segments_in, self.segments_out = input_len // segment_length, horizon // segment_length
        self.embed = nn.Sequential(nn.Linear(segment_length, d), nn.ReLU())
        self.rnn = config.build(d)
        self.position = nn.Parameter(torch.randn(self.segments_out, d // 2))
        self.channel = nn.Parameter(torch.randn(channels, d - d // 2))
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(d, segment_length * width)

    def forward(self, values: torch.Tensor, state=None) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """values (L, R) of R = B*C rows, row b*C + c the channel c of window b -> raw forecasts (H, R, width) and the
        encoder's final state."""
        rows, channels, m = values.shape[1], self.channel.shape[0], self.segments_out
        segments = values.view(self.segments_in, self.segment_length, rows).transpose(1, 2)  # (N, R, w)
        _, state = self.rnn(self.embed(segments), state)  # each (layers, R, d)
        inputs = torch.cat([self.position.expand(channels, -1, -1),  # (C, M, d): segment m of channel c
                            self.channel.unsqueeze(1).expand(-1, m, -1)], dim=-1)
        windows = tuple(part.view(part.shape[0], rows // channels, channels, 1, -1) for part in state)  # (layers, B, C, 1, d)
        hidden, _ = self.rnn.step(inputs, windows)  # (B, C, M, d): each cell product once per input, once per state
        raw = self.head(self.dropout(hidden))  # (B, C, M, w * width)
        return raw.reshape(rows, m * self.segment_length, self.width).transpose(0, 1), state  # (H, R, width)
