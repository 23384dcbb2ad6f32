"""SegRNN's parallel decoding two ways, timed in one run: stepping the cells on broadcast batches
(``Recurrent.step``: each product once per distinct input and once per distinct state, what rnnkit does) and
on B*C*M copies of the inputs and states (what SegRNN's code does). One training step each (forward, backward),
alternated, the median of ``--repeats``; the two outputs are checked equal first.

    OMP_NUM_THREADS=1 python benchmarks/segrnn_decoding.py [--horizon 96 720] [--cell gru]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from rnnkit.models.config import RecurrentConfig
from rnnkit.models.segment_rnn import SegmentRecurrent


def copied_forward(model: SegmentRecurrent, values: torch.Tensor) -> torch.Tensor:
    """The decoder run on every (row, segment) pair as a row of its own: SegRNN's code."""
    rows, channels, m = values.shape[1], model.channel.shape[0], model.segments_out
    segments = values.view(model.segments_in, model.segment_length, rows).transpose(1, 2)
    _, state = model.rnn(model.embed(segments))
    row_channels = torch.arange(rows) % channels
    inputs = torch.cat([model.position.unsqueeze(0).expand(rows, -1, -1),
                        model.channel[row_channels].unsqueeze(1).expand(-1, m, -1)], dim=-1).reshape(1, rows * m, -1)
    hidden, _ = model.rnn(inputs, tuple(part.repeat_interleave(m, dim=1) for part in state))
    raw = model.head(model.dropout(hidden[0]))
    return raw.view(rows, m * model.segment_length, model.width).transpose(0, 1)


def seconds(step) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizon", type=int, nargs="+", default=[96, 192, 336, 720])
    parser.add_argument("--cell", default="gru")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    windows, channels = 256, 7
    for horizon in args.horizon:
        torch.manual_seed(0)
        config = RecurrentConfig(cell=args.cell, hidden_size=512, dropout=0.5)
        model = SegmentRecurrent(config, 96, horizon, 24, channels, 1)
        values = torch.randn(96, windows * channels)
        model.eval()
        with torch.no_grad():
            torch.testing.assert_close(model(values)[0], copied_forward(model, values), atol=1e-5, rtol=1e-5)
        model.train()

        def train_step(forward):
            return lambda: forward(values).square().mean().backward()

        broadcast = train_step(lambda v: model(v)[0])
        copied = train_step(lambda v: copied_forward(model, v))
        broadcast(), copied()  # warm-up
        times = {"broadcast": [], "copies": []}
        for _ in range(args.repeats):
            times["broadcast"].append(seconds(broadcast))
            times["copies"].append(seconds(copied))
        fast, slow = statistics.median(times["broadcast"]), statistics.median(times["copies"])
        print(f"H={horizon} {args.cell}, {windows} windows x {channels} channels, d=512, "
              f"{torch.get_num_threads()} thread(s): broadcast {fast:.2f} s, copies {slow:.2f} s "
              f"a training step: {slow / fast:.2f}x")


if __name__ == "__main__":
    main()
