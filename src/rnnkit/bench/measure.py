"""What ``rnnkit bench`` measures for one (cell, shape, mode): times, FLOPs and memory kept for backward.

Every implementation of a case is timed in the same run, round-robin (one call of each in
turn, ``repeats`` times, keeping each one's fastest), so that the ratios between them hold
on a shared, noisy machine even when the absolute times drift.

* ``rnnkit``: ``rnnkit.Recurrent`` with the default ``fast_path="auto"``.
* ``native``: ``torch.nn.RNN/LSTM/GRU`` with the same weights (None for JANET and IndRNN).
* ``naive``: the readable cell stepped by the reference loop (``fast_path="off"``).
* ``gemm_floor``: one matrix multiply with the same FLOP count as the layer: what the
  hardware gives those FLOPs when nothing else is in the way.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from typing import Callable

import torch

import rnnkit
from rnnkit.kernels import KERNELS

NATIVE = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
MODES = ("forward", "forward_backward")


@dataclass(frozen=True)
class Shape:
    steps: int  # T
    batch: int  # B
    hidden: int  # input = hidden = H

    @classmethod
    def parse(cls, text: str) -> Shape:
        """'TxBxH', e.g. '100x32x256'."""
        parts = text.lower().split("x")
        if len(parts) != 3 or not all(part.isdigit() and int(part) > 0 for part in parts):
            raise ValueError(f"--shapes: expected TxBxH with positive integers, e.g. 100x32x256, got {text!r}")
        return cls(*map(int, parts))

    def __str__(self) -> str:
        return f"{self.steps}x{self.batch}x{self.hidden}"


def layer_flops(cell: str, shape: Shape) -> int:
    """Multiply-add FLOPs (2 per multiply-add) of one forward pass; the element-wise maths is not counted."""
    gates = rnnkit.get_cell_class(cell).num_gates
    rows, H = shape.steps * shape.batch, shape.hidden
    recurrent = 0 if cell == "indrnn" else H * gates * H  # IndRNN's recurrence is element-wise
    return 2 * rows * (H * gates * H + recurrent)


def _gemm_floor_call(cell: str, shape: Shape, mode: str) -> Callable[[], object]:
    """One matmul of (T·B, K) by (K, N) with the layer's FLOPs (three times them with the backward)."""
    gates = rnnkit.get_cell_class(cell).num_gates
    K = shape.hidden if cell == "indrnn" else 2 * shape.hidden
    N = gates * shape.hidden * (3 if mode == "forward_backward" else 1)
    a, b = torch.randn(shape.steps * shape.batch, K), torch.randn(K, N)
    return lambda: a @ b


def _native_twin(cell: str, layer: rnnkit.Recurrent) -> torch.nn.Module | None:
    native_class = NATIVE.get(cell)
    if native_class is None:
        return None
    twin = native_class(layer.input_size, layer.hidden_size)
    cell_params = layer.layers[0].cell
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(twin, f"{name}_l0").copy_(getattr(cell_params, name))
    return twin


def _call(module: torch.nn.Module, x: torch.Tensor, mode: str) -> Callable[[], object]:
    if mode == "forward":
        def forward():
            with torch.no_grad():
                return module(x)
        return forward

    def forward_backward():
        output, _ = module(x)
        output.sum().backward()
    return forward_backward


def saved_for_backward_bytes(module: torch.nn.Module, x: torch.Tensor) -> int:
    """Bytes autograd keeps between forward and backward (each storage counted once): the activation memory of training."""
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        output, _ = module(x)
    output.sum().backward()
    return sum(storages.values())


@dataclass
class CaseResult:
    cell: str
    shape: Shape
    mode: str
    kernel: str
    seconds: dict[str, float | None]
    flops: int
    saved_bytes: dict[str, int | None]

    def record(self) -> dict:
        """The JSON record of this case."""
        def ratio(numerator, denominator):
            return None if numerator is None or denominator is None else numerator / denominator

        seconds = self.seconds
        passes = 3 if self.mode == "forward_backward" else 1  # the backward costs about two forwards
        return {
            "cell": self.cell,
            "shape": {"T": self.shape.steps, "B": self.shape.batch, "H": self.shape.hidden},
            "mode": self.mode,
            "kernel": self.kernel,
            "seconds": seconds,
            "ratio_to_native": ratio(seconds["rnnkit"], seconds["native"]),
            "speedup_over_naive": ratio(seconds["naive"], seconds["rnnkit"]),
            "fraction_of_gemm_floor": ratio(seconds["gemm_floor"], seconds["rnnkit"]),
            "gflops_per_second": {
                name: None if value is None else passes * self.flops / value / 1e9 for name, value in seconds.items()
            },
            "saved_for_backward_bytes": self.saved_bytes,
        }


def measure_case(cell: str, shape: Shape, repeats: int) -> list[CaseResult]:
    """Both modes of one (cell, shape)."""
    torch.manual_seed(0)
    layer = rnnkit.Recurrent(cell, shape.hidden, shape.hidden)
    naive = rnnkit.Recurrent(cell, shape.hidden, shape.hidden, fast_path="off")
    naive.load_state_dict(layer.state_dict())
    native = _native_twin(cell, layer)
    x = torch.randn(shape.steps, shape.batch, shape.hidden, requires_grad=True)
    kernel = layer.kernel_plan(x)[0]
    kernel_name = kernel.kernel
    if kernel.kernel == "loop":
        kernel_name += f" ({KERNELS['loop'].detail(layer.layers[0].direction_cells, x)})"

    results = []
    for mode in MODES:
        calls = {"rnnkit": _call(layer, x, mode), "naive": _call(naive, x, mode), "gemm_floor": _gemm_floor_call(cell, shape, mode)}
        if native is not None:
            calls["native"] = _call(native, x, mode)
        seconds = round_robin(calls, repeats)
        seconds.setdefault("native", None)
        saved = {"rnnkit": None, "native": None, "naive": None}
        if mode == "forward_backward":
            saved = {name: saved_for_backward_bytes(module, x) if module is not None else None
                     for name, module in (("rnnkit", layer), ("native", native), ("naive", naive))}
        results.append(CaseResult(cell, shape, mode, kernel_name, seconds, layer_flops(cell, shape), saved))
    return results


def round_robin(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    for call in calls.values():  # warm-up: first-call allocations, the compiled loops' build
        call()
    best = {name: float("inf") for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


@contextlib.contextmanager
def kernel_switches(values: dict[str, str]):
    """Environment switches of the kernels (``RNNKIT_COMPILED``, ``RNNKIT_FUSED``) set for a block.
    The kernels read them at every call, so a benchmark can flip them between its contenders."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value
