"""Fast execution paths for sequence layers, behind one planning function; the cells stay the reference.

Four kernels, registered fastest first in ``KERNELS`` (``plan.py``):

* ``native``: PyTorch's own fused kernels (oneDNN on CPU, cuDNN on GPU) for the plain
  RNN/LSTM/GRU layers that compute exactly what torch.nn computes (``native.py``);
* ``loop``: rnnkit's loop over time with a hand-written backward, for every other cell and
  for the regularised cells (``loop/``), on compiled C++ loops on CPU;
* ``scan``: the cell's step inside PyTorch's ``scan`` operator, for ``torch.export`` (``scan.py``);
* ``reference``: the readable cell stepped by ``SequenceLayer`` under autograd.

Each is a ``Kernel`` (``kernel.py``) that says why it cannot run a layer or a call.
``plan_layers`` is the one decision, made by ``Recurrent.forward`` at every call;
``rnnkit.explain`` (``explain.py``) reports it. Under ``torch.compile`` the opaque kernels
(native, loop) are called through a custom operator (``graph_op.py``).
"""

from rnnkit.kernels.kernel import Kernel, KernelChoice
from rnnkit.kernels.native import run_native_stack_of
from rnnkit.kernels.plan import (
    FAST_PATH_POLICIES,
    KERNEL_NAMES,
    KERNELS,
    check_kernel_name,
    plan_layers,
)
from rnnkit.kernels.graph_op import run_kernel

__all__ = [
    "FAST_PATH_POLICIES",
    "KERNELS",
    "KERNEL_NAMES",
    "Kernel",
    "KernelChoice",
    "check_kernel_name",
    "plan_layers",
    "run_kernel",
    "run_native_stack_of",
]
