"""``torch.compile`` on rnnkit layers: compile time, and compiled speed against eager and torch.nn.

Two ways to compile a layer, timed side by side:

* ``compiled``: the default, with ``fullgraph=True``. A layer with a fast kernel (oneDNN for
  the LSTM, the C++ loops for JANET) is one node of the graph, rnnkit's custom operator
  (``kernels/graph_op.py``), whose gradient runs the layer's forward again under autograd;
* ``traced``: ``kernel="reference"``, the reference loop unrolled over T steps into the
  graph, which Inductor compiles into fused kernels.

``torch.compile(torch.nn.RNN/LSTM/GRU)`` is timed too. Forward + backward of one layer
(input = hidden = H), round-robin in one run like ``rnnkit bench``; the first call of each
compiled model (Dynamo's trace and Inductor's compile) is reported apart:

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


def _compiled(module, x, fullgraph: bool = True) -> tuple[object, float]:
    """``torch.compile(module)`` and the seconds its first training step took (tracing and compiling)."""
    compiled = torch.compile(module, fullgraph=fullgraph)
    start = time.perf_counter()
    _training_step(compiled, x)()
    return compiled, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="lstm,gru,janet")
    parser.add_argument("--shapes", default="35x20x200,50x32x128")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{'cell':<8}{'shape':<12}{'compile s':>10}{'trace s':>9}{'eager ms':>10}{'compiled ms':>12}{'traced ms':>10}"
          f"{'torch.nn ms':>12}{'torch.nn compiled ms':>21}{'compiled/eager':>15}{'traced/eager':>13}"
          f"{'compiled/torch.nn compiled':>27}")
    for cell in args.cells.split(","):
        for shape in map(Shape.parse, args.shapes.split(",")):
            torch.manual_seed(0)
            torch._dynamo.reset()
            layer = rnnkit.Recurrent(cell, shape.hidden, shape.hidden)
            reference = rnnkit.Recurrent(cell, shape.hidden, shape.hidden, kernel="reference")
            reference.load_state_dict(layer.state_dict())
            x = torch.randn(shape.steps, shape.batch, shape.hidden, requires_grad=True)
            compiled, compile_seconds = _compiled(layer, x)
            traced, trace_seconds = _compiled(reference, x)
            contenders = {"eager": _training_step(layer, x), "compiled": _training_step(compiled, x),
                          "traced": _training_step(traced, x)}
            if cell in NATIVE:
                native = NATIVE[cell](shape.hidden, shape.hidden)
                native_compiled, _ = _compiled(native, x, fullgraph=False)  # torch.nn's layers break the graph
                contenders["torch.nn"] = _training_step(native, x)
                contenders["torch.nn compiled"] = _training_step(native_compiled, x)
            seconds = round_robin(contenders, args.repeats)
            ms = {name: f"{value * 1e3:.1f}" for name, value in seconds.items()}
            versus_native = (f"{seconds['compiled'] / seconds['torch.nn compiled']:.2f}x"
                             if "torch.nn compiled" in seconds else "-")
            print(f"{cell:<8}{str(shape):<12}{compile_seconds:>10.1f}{trace_seconds:>9.1f}{ms['eager']:>10}"
                  f"{ms['compiled']:>12}{ms['traced']:>10}{ms.get('torch.nn', '-'):>12}{ms.get('torch.nn compiled', '-'):>21}"
                  f"{seconds['compiled'] / seconds['eager']:>14.2f}x{seconds['traced'] / seconds['eager']:>12.2f}x"
                  f"{versus_native:>27}", flush=True)


if __name__ == "__main__":
    main()
