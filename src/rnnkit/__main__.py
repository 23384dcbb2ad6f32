"""``rnnkit`` / ``python -m rnnkit``: a smoke run of the library.

Trains every registered cell for a few seconds on a toy many-to-one task (recall the
first value of a variable-length sequence, read by a bidirectional 2-layer network) and
prints the loss before and after. The training command of the char-level language model
(``rnnkit train``) replaces this with the training-engine issue.
"""

from __future__ import annotations

import sys
import time

import torch

import rnnkit

STEPS = 60
T, B, HIDDEN = 20, 32, 32


def _batch(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = torch.randn(T, B, 1, generator=generator)
    lengths = torch.randint(T // 2, T + 1, (B,), generator=generator)
    return x, lengths, x[0, :, 0]  # target: the first value of each sequence


def _train(cell_type: str) -> tuple[float, float, float]:
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    layer = rnnkit.Recurrent(cell_type, 1, HIDDEN, num_layers=2, bidirectional=True, merge_mode="sum")
    readout = torch.nn.Linear(HIDDEN, 1)
    parameters = list(layer.parameters()) + list(readout.parameters())
    optimizer = torch.optim.Adam(parameters, lr=1e-2)
    start, losses = time.perf_counter(), []
    for _ in range(STEPS):
        x, lengths, target = _batch(generator)
        _, (h_n, *_) = layer(x, lengths=lengths)
        # Top layer's forward and backward final states, summed like the outputs.
        prediction = readout(h_n[-2] + h_n[-1]).squeeze(-1)
        loss = torch.nn.functional.mse_loss(prediction, target)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        rnnkit.apply_constraints(layer)
        losses.append(loss.item())
    return sum(losses[:5]) / 5, sum(losses[-5:]) / 5, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv:
        print(f"rnnkit {rnnkit.__version__}: no subcommands yet (got {' '.join(argv)!r}); run 'rnnkit' alone for the smoke run", file=sys.stderr)
        return 2
    print(f"rnnkit {rnnkit.__version__} smoke run: recall the first value of a sequence of 10-{T} steps, "
          f"bidirectional 2x{HIDDEN}, {STEPS} Adam steps per cell")
    for cell_type in rnnkit.CELLS:
        first, last, seconds = _train(cell_type)
        print(f"  {cell_type:7s} MSE {first:.3f} -> {last:.3f}  ({seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
