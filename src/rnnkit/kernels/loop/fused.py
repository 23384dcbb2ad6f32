"""The loop kernel's steps compiled by ``torch.compile``: the fused path, on GPU, of every cell cuDNN lacks.

On a GPU the loop kernel's PyTorch loops launch one small kernel per element-wise op of a
step (a dozen for a gated cell) and return to Python between steps. The fused runner hands
the loop's ``forward_steps`` and ``backward_steps`` (``loop/time_loop.py``), over runs of
``CHUNK`` steps, to ``torch.compile``: Inductor fuses each step's element-wise work into one
Triton kernel beside the step's GEMM, and Python runs once a chunk instead of once a step.
The backward is still the hand-written one, so W_hh's gradient is still one GEMM over all
steps after the loop; only the steps are compiled. A sequence is padded to whole chunks
with dead steps (as variable lengths pad it), so every call has the same shapes and
compiles once per cell, dtype and batch layout.

``RNNKIT_FUSED`` says where the fused loops run:

* ``auto`` (default): on CUDA, where Triton is installed;
* ``1``: on any device. On CPU, Inductor writes C++ instead of Triton: that is how the
  tests check the fused loops on a machine without a GPU (the hand-written C++ loops of
  ``kernels/compiled`` are faster there);
* ``0``: never.

Zoneout in training draws random numbers at every step, which compiled code would draw
differently from the reference: those calls run the PyTorch loops. A compile that fails
(no Triton, no C++ compiler, an op Dynamo cannot trace) warns once, naming the cause, and
the PyTorch loops run from then on. Each compiled function keeps at most
``torch._dynamo.config.recompile_limit`` (8) versions, one per cell configuration, dtype
and layout; past that Dynamo runs the steps uncompiled, with its own warning.
"""

from __future__ import annotations

import functools
import os
import warnings

import torch

from rnnkit.kernels.loop.time_loop import StepRunner, backward_steps, forward_steps

SWITCH = "RNNKIT_FUSED"  # auto | 1 | 0
CHUNK = 8  # steps per compiled call: long enough to make Python's share small, short enough to compile fast
BACKEND = "inductor"  # torch.compile's backend: Triton kernels on GPU, C++ on CPU
# One compiled version per cell type and options, dtype and shapes, all of them versions of the same two
# functions: more than Dynamo's default of 8 that a model with a few layer types and a last short batch reaches.
RECOMPILE_LIMIT = 64

_failure: list[str] = []  # the first compile failure's cause; the fused loops are off once it is set


def fused_switch() -> str:
    value = os.environ.get(SWITCH, "auto").strip().lower()
    if value in ("0", "false", "no", "off"):
        return "off"
    return "on" if value in ("1", "true", "yes", "on") else "auto"


def fused_runner_for(inputs: torch.Tensor, zoneout: float, training: bool) -> tuple[StepRunner | None, str | None]:
    """(the fused runner, None) if the fused loops run this call, else (None, why not)."""
    reason = _unsupported_reason(inputs, zoneout, training)
    return (None, reason) if reason is not None else (_runner(BACKEND), None)


def _unsupported_reason(inputs: torch.Tensor, zoneout: float, training: bool) -> str | None:
    switch = fused_switch()
    if switch == "off":
        return f"{SWITCH}=0"
    if switch == "auto" and inputs.device.type != "cuda":
        return f"the torch.compile fused loops run on CUDA ({SWITCH}=1 runs them on {inputs.device.type} too)"
    if switch == "auto" and not _has_triton():
        return "the torch.compile fused loops need Triton, which is not installed"
    if _failure:
        return f"the torch.compile fused loops failed to compile ({_failure[0]})"
    if torch.compiler.is_compiling():
        return "already inside torch.compile, which traces the PyTorch loops itself"
    if zoneout > 0.0 and training:
        return "zoneout in training draws random numbers at every step, which compiled code draws differently"
    return None


def _has_triton() -> bool:
    from torch.utils._triton import has_triton

    return has_triton()


@functools.cache
def _runner(backend: str) -> StepRunner:
    compile_steps = functools.partial(torch.compile, backend=backend, fullgraph=True, dynamic=False)
    more_versions = torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT)  # made once: a patch builds a class
    return StepRunner(
        _falling_back(compile_steps(forward_steps), forward_steps, more_versions),
        _falling_back(compile_steps(backward_steps), backward_steps, more_versions),
        CHUNK,
    )


def _falling_back(compiled, uncompiled, more_versions):
    """``compiled``, or ``uncompiled`` (with one warning) if compiling fails: the same contract either way."""

    @functools.wraps(uncompiled)
    def run(*args):
        if not _failure:
            try:
                with more_versions:
                    return compiled(*args)
            except (torch._dynamo.exc.TorchDynamoException, torch._dynamo.exc.FailOnRecompileLimitHit) as error:
                _failure.append(_cause(error))
                warnings.warn(
                    f"rnnkit: could not compile the fused loops ({_failure[0]}); running the PyTorch loops "
                    f"instead. Set {SWITCH}=0 to skip the attempt.",
                    RuntimeWarning,
                    stacklevel=2,
                )
        return uncompiled(*args)

    return run


def _cause(error: Exception) -> str:
    error = getattr(error, "inner_exception", None) or error  # a backend's own error, not Dynamo's wrapper
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


__all__ = ["BACKEND", "CHUNK", "SWITCH", "fused_runner_for"]
