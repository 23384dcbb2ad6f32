"""The one place that decides which kernel runs each layer of a ``Recurrent``, at every call.

``plan_layers`` asks the registered kernels, fastest first, whether they can compute a
layer exactly (``why_not``) and run this call (``why_not_for``), and takes the first that
says yes. It decides from the layer as it is at this call, so a cell that was
parametrized, pruned or replaced after construction is planned anew, never run on a kernel
chosen for the cell it replaced. Two measured exceptions change the order on CPU
(``_fastest_first``). ``rnnkit.explain`` reports what was planned.

Forcing a kernel (``Recurrent(kernel="loop")``, or ``layer.kernel = "loop"``) skips the
choice but not the checks: a kernel that cannot compute the layer raises, saying why.
"""

from __future__ import annotations

from typing import Sequence

import torch

from rnnkit._checks import ArgumentError
from rnnkit.cells import GRUCell, LSTMCell, RecurrentCell, RNNCell
from rnnkit.kernels import graph_op
from rnnkit.kernels.kernel import Kernel, KernelChoice, ReferenceKernel, exact_class
from rnnkit.kernels.loop import LoopKernel
from rnnkit.kernels.native import NativeKernel
from rnnkit.kernels.scan import ScanKernel

NATIVE, LOOP, SCAN, REFERENCE = NativeKernel(), LoopKernel(), ScanKernel(), ReferenceKernel()
KERNELS: dict[str, Kernel] = {kernel.name: kernel for kernel in (NATIVE, LOOP, SCAN, REFERENCE)}  # fastest first
graph_op._KERNELS.update(KERNELS)
FAST_PATH_POLICIES = ("auto", "required", "off")
KERNEL_NAMES = ("auto", *KERNELS)


def plan_layers(
    layers: Sequence, inputs: torch.Tensor | None, fast_path: str = "auto", kernel: str = "auto"
) -> list[KernelChoice]:
    """One ``KernelChoice`` per layer for a call on ``inputs`` (None: what the layers alone decide).

    ``fast_path``: "auto" takes the fastest kernel that applies, "required" raises ValueError
    if a layer would run on the reference loop for a reason of its own (not to be faster),
    "off" always runs the reference loop. ``kernel``: "auto", or a name of ``KERNELS`` to run
    every layer on (ValueError if it cannot).
    """
    plan = []
    for index, layer in enumerate(layers):
        cells = layer.direction_cells
        if torch.compiler.is_compiling() and any(cell.int8_weights for cell in cells):
            raise ArgumentError(
                f"layer {index}: its weights are in int8 (rnnkit.quantize_dynamic), and torch.compile and torch.export "
                "cannot trace PyTorch's packed int8 matrices; compile or export the float model"
            )
        if inputs is not None and inputs.shape[1] == 0:
            choice = KernelChoice("reference", "an empty batch (B=0): nothing to compute, whatever the kernel")
        elif kernel != "auto":
            choice = _forced(KERNELS[kernel], layer, cells, inputs, index)
        elif fast_path == "off":
            choice = KernelChoice("reference", "fast_path='off'")
        else:
            choice = _fastest(layer, cells, inputs)
            # The reference loop is accepted when chosen for speed, to record the layer, or to be traced:
            # under torch.compile, the compiler is the fast path.
            accepted = choice.for_speed or layer.observed or torch.compiler.is_compiling()
            if fast_path == "required" and choice.kernel == "reference" and not accepted:
                raise ArgumentError(f"fast_path='required': layer {index} cannot run on a fast kernel: {choice.reason}")
        plan.append(choice)
    return plan


def _forced(kernel: Kernel, layer, cells, inputs, index: int) -> KernelChoice:
    reason = kernel.why_not(cells) or (None if inputs is None else kernel.why_not_for(cells, inputs))
    if reason is None and kernel is not REFERENCE:
        reason = _only_the_reference_loop(layer, cells)
    if reason is not None:
        raise ArgumentError(f"kernel={kernel.name!r}: layer {index} cannot run on it: {reason}")
    return KernelChoice(kernel.name, "forced by kernel=")


def _only_the_reference_loop(layer, cells: Sequence[RecurrentCell]) -> str | None:
    """Why only the cells' own steps can run this layer, whatever the cells are: None if any kernel may."""
    if layer.observed:
        return "rnnkit.inspect is recording this layer step by step, which only the reference loop does"
    int8 = [name for cell in cells for name in cell.int8_weights]
    if int8:
        return (f"{', '.join(dict.fromkeys(int8))} in int8 (rnnkit.quantize_dynamic): only the cells' own steps "
                "compute with int8 matrices")
    return None


def _fastest(layer, cells: Sequence[RecurrentCell], inputs: torch.Tensor | None) -> KernelChoice:
    reason = _only_the_reference_loop(layer, cells)
    if reason is not None:
        return KernelChoice("reference", reason)
    no_native = NATIVE.why_not(cells)
    order, measured = _fastest_first(cells, inputs, no_native is None)
    reasons = []
    for kernel in order:
        reason = (no_native if kernel is NATIVE else kernel.why_not(cells)) or (
            None if inputs is None else kernel.why_not_for(cells, inputs)
        )
        if reason is None:
            if measured is not None and kernel is order[0]:
                return KernelChoice(kernel.name, measured, for_speed=True)
            return KernelChoice(kernel.name, "; ".join(reasons) if reasons else _WHY_FIRST[kernel.name])
        reasons.append(reason)
    raise AssertionError("the reference kernel runs every layer")  # pragma: no cover


_WHY_FIRST = {
    "native": "PyTorch's fused kernel computes exactly this cell",
    "loop": "rnnkit's loop kernel computes exactly this cell",
    "scan": "torch.export traces the cell's step once, inside scan, keeping T symbolic",
    "reference": "the reference loop",
}


def _fastest_first(
    cells: Sequence[RecurrentCell], inputs: torch.Tensor | None, native_computes: bool
) -> tuple[list[Kernel], str | None]:
    """The kernels fastest first for this call, and the measurement behind the order where it is
    not the general one (native, loop, reference). Both exceptions are for layers torch.nn has
    (``native_computes``), on CPU:

    * A single step of an LSTM (one character of generation): the cell's own step. oneDNN's
      fused LSTM lays its weights out anew at every call, which a long sequence amortises and
      a single step does not: 2,041 against 331 µs for a 512-unit step at batch 1, 6,776
      against 2,264 µs at batch 16 (docs/benchmarks.md). torch's single steps of RNN and GRU
      are as fast as the cell's and stay.
    * RNN and GRU over several steps: the loop kernel, when its compiled loops run the input.
      PyTorch fuses only the LSTM on CPU; its RNN and GRU run one ATen op after another at
      each step, and their backward makes two small GEMMs a step under autograd. The compiled
      loops fuse each step's element-wise work into one vectorised pass and make one GEMM
      a step in backward: measured 0.4-1.0x torch.nn's time in inference and 0.1-1.0x in
      training over the benchmark shapes.
    """
    if torch.compiler.is_exporting():
        return [SCAN, REFERENCE], None  # what an exported graph can hold: nothing opaque, T symbolic
    general = [NATIVE, LOOP, REFERENCE]
    if inputs is None or inputs.device.type != "cpu" or torch.is_autocast_enabled("cpu"):
        return general, None
    if not native_computes:
        return general, None
    kinds = {exact_class(cell) for cell in cells}
    if inputs.shape[0] == 1:
        if kinds == {LSTMCell}:
            return [REFERENCE], (
                "a single LSTM step on CPU: the cell's own step is faster than oneDNN's, "
                "which lays out the weights anew at every call"
            )
        return general, None
    if kinds <= {RNNCell, GRUCell} and LOOP.runs_compiled(cells, inputs):
        return [LOOP, NATIVE, REFERENCE], "on CPU the loop kernel's compiled loops run RNN and GRU faster than torch.nn"
    return general, None


def check_kernel_name(kernel: str) -> str:
    if kernel not in KERNEL_NAMES:
        raise ArgumentError(f"kernel: expected one of {list(KERNEL_NAMES)}, got {kernel!r}")
    return kernel
