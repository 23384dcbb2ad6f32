"""The loop kernel's loops side by side: fused by torch.compile, compiled C++, PyTorch, and the reference.

The fused loops are the GPU path of the cells cuDNN lacks (``rnnkit/kernels/loop/fused.py``). On a
CPU Inductor writes C++ for them, which this times too, against the hand-written C++ loops
that run there by default. Forward + backward of one layer, round-robin in one run like
``rnnkit bench``; the first call of the fused loops (Dynamo's trace and Inductor's compile,
once per cell, dtype and shape) is reported apart:

    python benchmarks/fused_loops.py                                  # CPU
    python benchmarks/fused_loops.py --device cuda --shapes 100x32x256,50x64x512,1000x32x128
"""

from __future__ import annotations

import argparse
import time

import torch

import rnnkit
from rnnkit.bench.measure import Shape, kernel_switches, round_robin
from rnnkit.kernels import KERNELS, compiled
from rnnkit.kernels.loop import fused

CELLS = {"janet": ("janet", {}), "indrnn": ("indrnn", {}), "gru-reset-before": ("gru", {"reset_after": False})}
LOOPS = {  # contender: (RNNKIT_FUSED, RNNKIT_COMPILED, kernel)
    "fused": ("1", "0", "loop"),
    "C++": ("0", "1", "loop"),
    "PyTorch": ("0", "0", "loop"),
    "reference": ("0", "0", "reference"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default=",".join(CELLS))
    parser.add_argument("--shapes", default="100x32x256,35x20x200,200x1x128")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    loops = dict(LOOPS)
    if device.type != "cpu" or compiled.load_compiled_loops() is None:
        del loops["C++"]  # CPU code; absent where it cannot be built
    print(f"{'cell':<18}{'shape':<12}{'first fused s':>14}" + "".join(f"{name + ' ms':>14}" for name in loops)
          + f"{'fused/PyTorch':>15}")
    for name in args.cells.split(","):
        cell, options = CELLS[name]
        for shape in map(Shape.parse, args.shapes.split(",")):
            torch.manual_seed(0)
            model = rnnkit.Recurrent(cell, shape.hidden, shape.hidden, device=device, **options)
            x = torch.randn(shape.steps, shape.batch, shape.hidden, device=device, requires_grad=True)

            def training_step(switches, layer=model.layers[0], x=x) -> None:
                fused_switch, compiled_switch, kernel = switches
                with kernel_switches({fused.SWITCH: fused_switch, compiled.SWITCH: compiled_switch}):
                    output, _ = KERNELS[kernel].run(layer, x, None, None)
                    output.sum().backward()
                if device.type == "cuda":
                    torch.cuda.synchronize()

            start = time.perf_counter()
            training_step(LOOPS["fused"])
            first = time.perf_counter() - start
            seconds = round_robin({contender: (lambda s=switches: training_step(s)) for contender, switches in loops.items()},
                                  args.repeats)
            print(f"{name:<18}{str(shape):<12}{first:>14.1f}" + "".join(f"{seconds[c] * 1e3:>14.1f}" for c in loops)
                  + f"{seconds['PyTorch'] / seconds['fused']:>14.2f}x", flush=True)
    if fused._failure:
        print(f"the fused loops fell back to the PyTorch loops: {fused._failure[0]}")


if __name__ == "__main__":
    main()
