"""``torch.compile`` on rnnkit layers: compile time, and compiled speed against eager and torch.nn.

Under tracing every rnnkit layer runs the reference loop, unrolled over T steps, which
Inductor compiles into fused kernels; eager rnnkit runs its fastest kernel (oneDNN for the
LSTM, the C++ loops for GRU and JANET on CPU). ``torch.compile(torch.nn.LSTM)`` is timed
too: Dynamo leaves torch.nn's recurrent layers out of its graph and runs them eagerly.
Forward + backward of one layer (input = hidden = H), round-robin in one run like
``rnnkit bench``; the first compiled call (Dynamo's trace and Inductor's compile) is
reported apart:

    python benchmarks/compile.py
    python benchmarks/compile.py --cells lstm --shapes 35x20x200 --repeats 5
"""

from __future__ import annotations

import argparse
import time

import torch

import rnnkit
from rnnkit.bench.measure import NATIVE, Shape, round_robin


def _training_step(module, x):
    def step():
        output, _ = module(x)
        output.sum().backward()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="lstm,gru,janet")
    parser.add_argument("--shapes", default="35x20x200,50x32x128")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{'cell':<8}{'shape':<12}{'compile s':>10}{'eager ms':>10}{'compiled ms':>12}{'torch.nn ms':>12}"
          f"{'torch.nn compiled ms':>21}{'compiled/eager':>15}{'compiled/torch.nn compiled':>27}")
    for cell in args.cells.split(","):
        for shape in map(Shape.parse, args.shapes.split(",")):
            torch.manual_seed(0)
            torch._dynamo.reset()
            layer = rnnkit.Recurrent(cell, shape.hidden, shape.hidden)
            x = torch.randn(shape.steps, shape.batch, shape.hidden, requires_grad=True)
            compiled = torch.compile(layer)
            start = time.perf_counter()
            _training_step(compiled, x)()
            compile_seconds = time.perf_counter() - start
            contenders = {"eager": _training_step(layer, x), "compiled": _training_step(compiled, x)}
            if cell in NATIVE:
                native = NATIVE[cell](shape.hidden, shape.hidden)
                native_compiled = torch.compile(native)
                _training_step(native_compiled, x)()
                contenders["torch.nn"] = _training_step(native, x)
                contenders["torch.nn compiled"] = _training_step(native_compiled, x)
            seconds = round_robin(contenders, args.repeats)
            ms = {name: f"{value * 1e3:.1f}" for name, value in seconds.items()}
            versus_native = (f"{seconds['compiled'] / seconds['torch.nn compiled']:.2f}x"
                             if "torch.nn compiled" in seconds else "-")
            print(f"{cell:<8}{str(shape):<12}{compile_seconds:>10.1f}{ms['eager']:>10}{ms['compiled']:>12}"
                  f"{ms.get('torch.nn', '-'):>12}{ms.get('torch.nn compiled', '-'):>21}"
                  f"{seconds['compiled'] / seconds['eager']:>14.2f}x{versus_native:>27}", flush=True)


if __name__ == "__main__":
    main()
