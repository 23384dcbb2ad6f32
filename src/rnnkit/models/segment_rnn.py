"""SegRNN's recurrent core (Lin et al. 2023, "Segment Recurrent Neural Network for Long-Term Time Series
Forecasting"): a window read a segment per step, and the horizon written a segment per step, all at once.

    values (L, R) ─► N = L/w segments (N, R, w) ─► linear + ReLU ─► (N, R, d) ─► Recurrent ─► final state s
    horizon segment m of row r (all M = H/w of them in parallel, as rows of one batch):
        [position embedding m ; channel embedding c(r)] (d) ─► the same Recurrent, one step from s
        ─► dropout ─► linear ─► w values (× the output's parameters) ─► (H, R, P)

Segments shorten the recurrence from L steps to L/w, which is what lets a single layer carry a
long window (segment-wise iteration); decoding every horizon segment from the same final state,
told apart only by its position (and its channel) embedding, replaces the step-by-step feedback
of recurrent decoders (parallel multi-step forecasting, PMF). A row is one channel of one window:
the forecaster folds channels into rows, so one set of weights serves every channel. Any cell
of the library runs it.
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

    def forward(self, values: torch.Tensor, channels: torch.Tensor,
                state=None) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """values (L, R) of R rows, channels (R,) the channel of each row -> raw forecasts (H, R, width) and the
        encoder's final state."""
        rows = values.shape[1]
        segments = values.view(self.segments_in, self.segment_length, rows).transpose(1, 2)  # (N, R, w)
        _, state = self.rnn(self.embed(segments), state)  # each (layers, R, d)
        m = self.segments_out
        inputs = torch.cat([self.position.unsqueeze(0).expand(rows, -1, -1),  # row r's m-th segment: row r*M + m
                            self.channel[channels].unsqueeze(1).expand(-1, m, -1)], dim=-1).reshape(1, rows * m, -1)
        from_state = tuple(part.repeat_interleave(m, dim=1) for part in state)  # (layers, R*M, d)
        hidden, _ = self.rnn(inputs, from_state)  # (1, R*M, d)
        raw = self.head(self.dropout(hidden[0]))  # (R*M, w * width)
        return raw.view(rows, m * self.segment_length, self.width).transpose(0, 1), state  # (H, R, width)
