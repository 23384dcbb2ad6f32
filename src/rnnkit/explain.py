"""``rnnkit.explain``: which kernel each recurrent layer of a model runs on, and why.

Other libraries lose speed silently when a configuration leaves the fast path; here one
call shows it. It runs the model once on an example input and reads what each
``Recurrent`` layer stack decided, so the answer is what forward really does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rnnkit.kernels import KERNELS
from rnnkit.layers import Recurrent


@dataclass(frozen=True)
class LayerKernel:
    """One layer's kernel: ``module`` is the Recurrent's name in the model ("" for the model itself)."""

    module: str
    layer: int
    cell: str
    kernel: str  # a name of rnnkit.kernels.KERNELS: "native", "loop", "scan" or "reference"
    reason: str
    detail: str = ""  # for the loop kernel: fused, compiled C++ or PyTorch loops, and why

    def __str__(self) -> str:
        where = f"{self.module or 'layer'}[{self.layer}]"
        detail = f", {self.detail}" if self.detail else ""
        return f"{where} {self.cell}: {self.kernel}{detail} — {self.reason}"


class Explanation(list):
    """A list of ``LayerKernel``; printing it gives one line per layer."""

    def __str__(self) -> str:
        return "\n".join(map(str, self)) if self else "no rnnkit.Recurrent layers ran on this input"


def explain(model: nn.Module, example_input, *args, **kwargs) -> Explanation:
    """Run ``model(example_input, *args, **kwargs)`` once and report each layer's kernel.

    ``model`` is an ``rnnkit.Recurrent`` or any module containing them (a language model,
    a classifier). The mode is kept and decides what is reported: in training mode the call
    runs as a training step's forward (gradients on; dropout and zoneout, and whether a
    backward follows, affect the kernel), in eval mode as inference (no gradients).

    ``model`` may be compiled (``torch.compile``): a layer with a fast kernel then runs it as
    one custom operator of the graph, and is reported as that kernel; one traced into the
    graph (``kernel="reference"``) is reported as the reference loop.
    """
    stacks = [(name, module) for name, module in model.named_modules() if isinstance(module, Recurrent)]
    for _, stack in stacks:
        stack.last_kernels = [None] * stack.num_layers
    with torch.set_grad_enabled(model.training):
        model(example_input, *args, **kwargs)

    report = Explanation()
    for name, stack in stacks:
        for index, (layer, ran) in enumerate(zip(stack.layers, stack.last_kernels)):
            if ran is None:
                continue  # this stack did not run on this input
            choice, input_probe = ran  # input_probe: an empty tensor with the layer input's dtype and device
            cells = layer.direction_cells
            detail = KERNELS[choice.kernel].detail(cells, input_probe)
            report.append(LayerKernel(name, index, type(cells[0]).__name__, choice.kernel, choice.reason, detail))
    return report
