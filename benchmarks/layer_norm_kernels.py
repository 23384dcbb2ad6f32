"""Layer-normalised LSTM and GRU: the loop kernel, on its compiled and its PyTorch loops, against the reference loop.

``rnnkit bench`` times the plain cells; this times ``layer_norm=True`` (both GRU variants),
forward + backward, round-robin in one run like ``rnnkit bench``:

    python benchmarks/layer_norm_kernels.py                       # the shapes of issue 6 but the longest
    python benchmarks/layer_norm_kernels.py --shapes 100x32x256 --repeats 5
"""

from __future__ import annotations

import argparse

import torch

import rnnkit
from rnnkit.bench.measure import Shape, kernel_switches, round_robin
from rnnkit.kernels import KERNELS
from rnnkit.kernels.compiled import SWITCH, load_compiled_loops

VARIANTS = {"lstm": {}, "gru": {}, "gru-reset-before": {"reset_after": False}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="100x32x256,50x64x512,200x1x128,35x20x200")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if load_compiled_loops() is None:
        raise SystemExit("the compiled loops are off or cannot be built here; nothing to compare")
    print(f"{'cell':<18}{'shape':<13}{'compiled ms':>12}{'PyTorch loops':>15}{'reference':>11}{'speed-up':>10}")
    for name, options in VARIANTS.items():
        for shape in map(Shape.parse, args.shapes.split(",")):
            torch.manual_seed(0)
            model = rnnkit.Recurrent(name.split("-")[0], shape.hidden, shape.hidden, layer_norm=True, **options)
            x = torch.randn(shape.steps, shape.batch, shape.hidden, requires_grad=True)

            def training_step(kernel: str, compiled: bool = True, layer=model.layers[0], x=x) -> None:
                with kernel_switches({SWITCH: "1" if compiled else "0"}):
                    output, _ = KERNELS[kernel].run(layer, x, None, None)
                    output.sum().backward()

            contenders = {
                "compiled": lambda: training_step("loop"),
                "python": lambda: training_step("loop", compiled=False),
                "reference": lambda: training_step("reference"),
            }
            seconds = round_robin(contenders, args.repeats)
            print(f"{name:<18}{str(shape):<13}{seconds['compiled'] * 1e3:>12.1f}{seconds['python'] * 1e3:>15.1f}"
                  f"{seconds['reference'] * 1e3:>11.1f}{seconds['reference'] / seconds['compiled']:>9.2f}x", flush=True)


if __name__ == "__main__":
    main()
