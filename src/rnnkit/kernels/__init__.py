"""Fast execution paths for sequence layers, behind one dispatch; the cells stay the reference.

Three kernels, fastest first:

* ``native``: PyTorch's own fused kernels (oneDNN on CPU, cuDNN on GPU) for the plain
  RNN/LSTM/GRU layers that compute exactly what torch.nn computes (``native.py``);
* ``scan``: rnnkit's loop with a hand-written backward, for every other cell and for the
  regularised cells (``scan/``);
* ``reference``: the readable cell stepped by ``SequenceLayer`` under autograd.

``choose_kernel(layer)`` picks the fastest kernel that computes exactly what the reference
computes, and says why; ``input_override(kernel, cells, inputs)`` says whether a particular
call needs another one (an input the kernel cannot take, or one that another kernel runs
faster); ``run_kernel`` runs a layer with the contract of ``layer(inputs, state, lengths)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rnnkit.cells import GRUCell, LSTMCell, RNNCell
from rnnkit.kernels.compiled import compiled_loops_for
from rnnkit.kernels.native import (
    native_input_unsupported_reason,
    native_unsupported_reason,
    run_native_layer,
    run_native_stack,
)
from rnnkit.kernels.scan import choose_loops, run_scan_layer, scan_unsupported_reason

FAST_PATH_POLICIES = ("auto", "required", "off")
KERNELS = ("native", "scan", "reference")


@dataclass(frozen=True)
class KernelChoice:
    """The kernel a layer runs on, and why that one rather than a faster one."""

    kernel: str  # one of KERNELS
    reason: str
    for_speed: bool = False  # an input override that runs faster, not one the chosen kernel cannot run


def direction_cells(layer: nn.Module) -> list:
    """The cell of each direction of a SequenceLayer or Bidirectional, forward first."""
    if layer.num_directions == 1:
        return [layer.cell]
    return [layer.forward_layer.cell, layer.backward_layer.cell]


def _first_reason(check, cells) -> str | None:
    return next((reason for reason in map(check, cells) if reason is not None), None)


def choose_kernel(layer: nn.Module) -> KernelChoice:
    """The fastest kernel that computes ``layer`` (a SequenceLayer or Bidirectional) exactly."""
    cells = direction_cells(layer)
    no_native = _first_reason(native_unsupported_reason, cells)
    if no_native is None:
        return KernelChoice("native", "PyTorch's fused kernel computes exactly this cell")
    no_scan = _first_reason(scan_unsupported_reason, cells)
    if no_scan is None:
        return KernelChoice("scan", f"no fused PyTorch kernel: {no_native}")
    return KernelChoice("reference", f"{no_native}; {no_scan}")


def input_override(kernel: str, cells: list, inputs: torch.Tensor) -> KernelChoice | None:
    """Another kernel for this call of a layer chosen for ``kernel``, or None if ``kernel`` runs it."""
    if kernel != "native":
        return None
    reason = native_input_unsupported_reason(inputs)
    if reason is None:
        return _faster_on_cpu(cells, inputs)
    if _first_reason(scan_unsupported_reason, cells) is None:
        return KernelChoice("scan", reason)
    return KernelChoice("reference", reason)


def _faster_on_cpu(cells: list, inputs: torch.Tensor) -> KernelChoice | None:
    """Another kernel for a native layer on CPU where it is measured faster than torch's.

    * A single step of an LSTM (one character of generation): the cell's own step. oneDNN's
      fused LSTM lays its weights out anew at every call, which a long sequence amortises and
      a single step does not: 2,041 against 331 µs for a 512-unit step at batch 1, 6,776
      against 2,264 µs at batch 16 (docs/benchmarks.md). torch's single steps of RNN and GRU
      are as fast as the cell's and stay.
    * RNN and GRU over several steps: the scan kernel, when its compiled loops run the input.
      PyTorch fuses only the LSTM on CPU; its RNN and GRU run one ATen op after another at
      each step, and their backward makes two small GEMMs a step under autograd. The compiled
      scan loops fuse each step's element-wise work into one vectorised pass and make one GEMM
      a step in backward: measured 0.4-1.0x torch.nn's time in inference and 0.1-1.0x in
      training over the benchmark shapes.
    """
    if inputs.device.type != "cpu" or torch.is_autocast_enabled("cpu"):
        return None
    if inputs.shape[0] == 1:
        if all(type(cell) is LSTMCell for cell in cells):
            return KernelChoice("reference", "a single LSTM step on CPU: the cell's own step is faster than "
                                "oneDNN's, which lays out the weights anew at every call", for_speed=True)
        return None
    if not all(type(cell) in (RNNCell, GRUCell) for cell in cells):
        return None
    if compiled_loops_for(inputs, max(cell.zoneout for cell in cells))[0] is None:
        return None
    return KernelChoice("scan", "on CPU the scan kernel's compiled loops run RNN and GRU faster than torch.nn", for_speed=True)


def scan_loops_detail(cells: list, inputs: torch.Tensor) -> str:
    """Which loops the scan kernel runs for these cells and inputs (fused, compiled C++ or PyTorch), and why."""
    zoneout = max(cell.zoneout for cell in cells)
    return choose_loops(inputs, zoneout, any(cell.training for cell in cells)).detail


def run_kernel(kernel: str, layer: nn.Module, inputs: torch.Tensor, state, lengths: torch.Tensor | None):
    """Same contract as ``layer(inputs, state, lengths)``, on ``kernel``."""
    if kernel == "reference":
        return layer(inputs, state, lengths)
    run_layer = run_native_layer if kernel == "native" else run_scan_layer
    cells = direction_cells(layer)
    states = None if state is None else ([state] if layer.num_directions == 1 else list(state))
    forward_output, backward_output, final_states = run_layer(cells, inputs, states, lengths)
    if layer.num_directions == 1:
        return forward_output, final_states[0]
    return layer.merge(forward_output, backward_output), tuple(final_states)


def run_native_stack_of(layers: list[nn.Module], inputs: torch.Tensor, layer_states: list, lengths: torch.Tensor | None):
    """Layers that each run on the native kernel, chained as torch.nn chains them (each on the one below's
    output, directions concatenated, nothing between them), in one call of torch's kernel instead of one
    per layer: what a layer stack costs around each call counts most in generation, one step at a time.

    ``layer_states``: per layer, None or one state per direction. Returns the top layer's merged output
    and, per layer, the final state of each direction.
    """
    states = None if layer_states[0] is None else layer_states
    forward_output, backward_output, final_states = run_native_stack(
        [direction_cells(layer) for layer in layers], inputs, states, lengths
    )
    top = layers[-1]
    output = forward_output if top.num_directions == 1 else top.merge(forward_output, backward_output)
    return output, final_states


__all__ = [
    "FAST_PATH_POLICIES",
    "KERNELS",
    "KernelChoice",
    "choose_kernel",
    "direction_cells",
    "input_override",
    "run_kernel",
    "run_native_stack_of",
    "scan_loops_detail",
]
