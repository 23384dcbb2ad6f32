"""The loop kernel's loops compiled from C++ (``loops.cpp``), built on first use, with a fallback.

The C++ loops run the same steps as the PyTorch loops of ``rnnkit.kernels.loop.time_loop``
without returning to Python between steps: one fused element-wise loop per step and ATen's
GEMMs. They are built with ``torch.utils.cpp_extension`` from the source shipped in the
package, the first time a layer needs them (about 20 s; cached in a folder of their own, per
Python and torch version, under ``~/.cache/torch_extensions`` or ``$TORCH_EXTENSIONS_DIR``).
If the build fails (no C++ compiler, no ninja) the PyTorch loops run instead, after one
warning naming the cause. ``RNNKIT_COMPILED=0`` turns them off.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import platform
import sys
import warnings
from pathlib import Path

import torch

logger = logging.getLogger("rnnkit")

SOURCE = Path(__file__).with_name("loops.cpp")
SWITCH = "RNNKIT_COMPILED"  # "0" turns the compiled loops off
# PyTorch's own flags for its CPU kernels; without them GCC keeps the clamps in exp as branches
# (floating-point traps) and does not vectorise the element-wise loops.
FLAGS = ["-O3", "-fno-trapping-math", "-fno-math-errno"]


def compiled_loops_disabled() -> bool:
    return os.environ.get(SWITCH, "1").strip().lower() in ("0", "false", "no", "off")


def load_compiled_loops():
    """``torch.ops.rnnkit_loops`` (with ``forward`` and ``backward``), or None if turned off or it cannot be built."""
    return None if compiled_loops_disabled() else _build()


@functools.cache
def _build():
    from torch.utils import cpp_extension

    name, flags = _build_target()
    folder = Path(os.environ.get("TORCH_EXTENSIONS_DIR") or cpp_extension.get_default_build_root())
    # torch's versioning keys a build on its sources and flags only: one folder per Python and torch version keeps a
    # cache shared by two installs from loading a library built against the other one's torch.
    directory = folder / f"{name}-py{sys.version_info.major}{sys.version_info.minor}-torch{torch.__version__}"
    logger.info("building the compiled loops %s (first use only, about 20 s)", name)
    try:
        with _one_builder_at_a_time(directory):
            cpp_extension.load(name=name, sources=[str(SOURCE)], extra_cflags=flags, is_python_module=False,
                               build_directory=str(directory), verbose=False)
    except Exception as error:  # any build failure means: run the PyTorch loops instead
        cause = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        warnings.warn(
            f"rnnkit: could not build the compiled loops ({cause}); running the PyTorch loops instead. "
            f"Set {SWITCH}=0 to skip the attempt.",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return torch.ops.rnnkit_loops


@contextlib.contextmanager
def _one_builder_at_a_time(directory: Path):
    """Holds an exclusive lock on ``directory`` that ends with the process, however it ends.

    Every load of the extension takes torch's own lock, the file ``lock`` in ``directory`` (its existence is the lock),
    to check the build, even when nothing needs building. A process killed while it holds that lock (kill -9, a
    timeout, torchrun ending a worker) leaves the file behind, and every later load waits for it, silently and for
    ever. An ``flock`` is released by the kernel when its process dies, so whoever holds it knows that any ``lock``
    file there is such a leftover, and removes it. (Without fcntl, on Windows, there is only torch's lock.)
    """
    directory.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(directory / "rnnkit.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        (directory / "lock").unlink(missing_ok=True)
        yield


def _build_target() -> tuple[str, list[str]]:
    """The extension's name and compiler flags for this CPU.

    The element-wise loops are written to vectorise; on an x86 CPU that PyTorch itself runs
    with AVX2 (or AVX-512) they are built for AVX2 and FMA. The name carries the instruction
    set, because torch's build cache is keyed on the name and sources, not on the CPU: a cache
    shared with an older machine then builds its own copy instead of loading one it cannot run.
    """
    capability = torch.backends.cpu.get_cpu_capability()
    if platform.machine().lower() in ("x86_64", "amd64") and capability in ("AVX2", "AVX512"):
        return "rnnkit_loops_avx2", [*FLAGS, "-mavx2", "-mfma"]
    return "rnnkit_loops", FLAGS


def compiled_loops_for(inputs: torch.Tensor, zoneout: float):
    """(the compiled loops, None) if they run this call, else (None, why not)."""
    reason = _unsupported_reason(inputs, zoneout)
    if reason is not None:
        return None, reason
    loops = _build()
    return (loops, None) if loops is not None else (None, "the compiled loops could not be built (see the warning)")


def compiled_loops_run(inputs: torch.Tensor, zoneout: float) -> bool:
    """Whether the compiled loops run this call; unlike ``compiled_loops_for``, callable while Dynamo traces."""
    return _unsupported_reason(inputs, zoneout) is None and _built()


def _built() -> bool:
    return _build() is not None


# torch.compiler.assume_constant_result, set by hand (the decorator imports Dynamo): Dynamo calls it, building
# the loops if need be, instead of tracing into the C++ build.
_built._dynamo_marked_constant = True


def _unsupported_reason(inputs: torch.Tensor, zoneout: float) -> str | None:
    if compiled_loops_disabled():
        return f"{SWITCH}=0"
    if inputs.device.type != "cpu":
        return f"the compiled loops are CPU code, the inputs are on {inputs.device.type}"
    if inputs.dtype not in (torch.float32, torch.float64):
        return f"the compiled loops run float32 and float64, not {inputs.dtype}"
    if zoneout > 0.0:
        return "the compiled loops have no zoneout"
    return None


__all__ = ["SWITCH", "compiled_loops_for", "compiled_loops_run", "load_compiled_loops"]
