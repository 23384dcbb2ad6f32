"""The fast kernels inside a ``torch.compile`` graph, as one registered custom operator per layer call.

Dynamo cannot trace PyTorch's fused RNN ops (oneDNN's fails on fake tensors) nor the loop
kernel's hand-written backward, and skipping them breaks the graph, which
``fullgraph=True`` forbids. So, while ``torch.compile`` traces, a layer on one of those
kernels is called through ``rnnkit::run_layer``, a ``torch.library.custom_op``: the graph
sees one node with a fake implementation (output shapes from the input's, T and B kept
symbolic), and the node runs the kernel eagerly at full speed. In training the node records
the kernel's autograd graph and returns a tape naming it; its gradient (``register_autograd``)
is a second operator that differentiates the recorded graph, so a compiled layer trains at
its eager cost, random draws included.

The operator takes the layer as a key to a registry of live layers (a compiled graph runs
in the process that compiled it) and the weights as tensors: the weights the graph computed
(a parametrization, a pruning mask) are the ones the kernel uses, through
``RecurrentCell.weights_replaced``. ``torch.export`` needs a graph that stands alone, so
there the scan kernel runs instead (``scan.py``).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import itertools
import weakref

import torch

from rnnkit.kernels.kernel import Kernel

_LAYERS: weakref.WeakValueDictionary[int, torch.nn.Module] = weakref.WeakValueDictionary()
_KEYS = itertools.count()
_KERNELS: dict[str, Kernel] = {}  # filled by plan.py, which owns the registry of kernels


def run_kernel(kernel: Kernel, layer, inputs: torch.Tensor, state, lengths: torch.Tensor | None):
    """``kernel.run(layer, inputs, state, lengths)``, through the custom operator while torch.compile traces."""
    if not torch.compiler.is_compiling() or not kernel.opaque:
        return kernel.run(layer, inputs, state, lengths)
    cells = layer.direction_cells
    states = [] if state is None else [part for cell_state in _per_direction(layer, state) for part in cell_state]
    weights = [weight for cell in cells for weight in cell.weights().values()]
    record = torch.is_grad_enabled() and any(tensor.requires_grad for tensor in (inputs, *states, *weights))
    results = torch.ops.rnnkit.run_layer(_key_of(layer), kernel.name, inputs, states, weights, lengths, record)
    output, parts = results[0], results[1:-1]  # the last is the tape
    width = len(cells[0].state_names)
    final = [tuple(parts[i * width:(i + 1) * width]) for i in range(len(cells))]
    return output, (final[0] if layer.num_directions == 1 else tuple(final))


def _key_of(layer) -> int:
    key = layer.__dict__.get("_graph_op_key")
    if key is None or _LAYERS.get(key) is not layer:  # a copy (deepcopy, pickle) carries its original's key
        key = next(_KEYS)
        object.__setattr__(layer, "_graph_op_key", key)
        _LAYERS[key] = layer
    return key


# torch.compiler.assume_constant_result: Dynamo runs it instead of tracing it, and the key is a constant of
# the graph. Set by hand because the decorator imports Dynamo (2 s), which 'import rnnkit' must not.
_key_of._dynamo_marked_constant = True


def _per_direction(layer, state) -> list:
    return [state] if layer.num_directions == 1 else list(state)


def _call(key: int, kernel: str, inputs, states, weights, lengths) -> list[torch.Tensor]:
    """The layer's kernel on these tensors: its cells compute with ``weights``, not their own."""
    layer = _LAYERS[key]
    cells = layer.direction_cells
    width = len(cells[0].state_names)
    state = None
    if states:
        per_direction = [tuple(states[i * width:(i + 1) * width]) for i in range(len(cells))]
        state = per_direction[0] if layer.num_directions == 1 else tuple(per_direction)
    with contextlib.ExitStack() as stack:
        start = 0
        for cell in cells:
            names = list(cell.weights())
            stack.enter_context(cell.weights_replaced(dict(zip(names, weights[start:start + len(names)]))))
            start += len(names)
        output, final = _KERNELS[kernel].run(layer, inputs, state, lengths)
    return [output, *(part for cell_state in _per_direction(layer, final) for part in cell_state)]


# A recorded forward's autograd graph, by tape number, until its gradient has been taken or the tape is freed.
_TAPES: dict[int, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
_TAPE_NUMBERS = itertools.count(1)


@torch.library.custom_op("rnnkit::run_layer", mutates_args=())
def _run_layer(
    key: int, kernel: str, inputs: torch.Tensor, states: list[torch.Tensor], weights: list[torch.Tensor],
    lengths: torch.Tensor | None, record: bool,
) -> list[torch.Tensor]:
    """The layer's outputs and final state, and a tape: a number naming the recorded autograd graph (0: none).

    With ``record`` the kernel runs under autograd, on a thread of its own (an operator's implementation
    runs below autograd's dispatch key, where nothing is recorded whatever the grad mode says; a new
    thread starts with autograd on), and its graph is kept for the gradient, so backward costs what it
    costs eagerly. The graph is dropped when its gradient is taken or when the tape tensor is freed
    (a forward whose backward never runs).
    """
    if not record:
        results = _call(key, kernel, inputs, states, weights, lengths)
        return [results[0], *(part.clone() for part in results[1:]), torch.zeros((), dtype=torch.int64)]

    def forward():
        leaves = [tensor.detach().requires_grad_() for tensor in (inputs, *states, *weights)]
        return leaves, _call(key, kernel, leaves[0], leaves[1:1 + len(states)], leaves[1 + len(states):], lengths)

    leaves, results = _autograd_thread().submit(forward).result()
    number = next(_TAPE_NUMBERS)
    _TAPES[number] = (leaves, results)
    tape = torch.tensor(number, dtype=torch.int64)
    weakref.finalize(tape, _TAPES.pop, number, None)
    # clones of the state: a final state may be the initial one passed through (an operator may not return its inputs)
    return [results[0].detach(), *(part.detach().clone() for part in results[1:]), tape]


@_run_layer.register_fake
def _(key, kernel, inputs, states, weights, lengths, record):
    layer = _LAYERS[key]
    max_time, batch_size = inputs.shape[:2]
    top = layer.direction_cells[0].output_size
    width = top * 2 if layer.num_directions == 2 and layer.merge_mode == "concat" else top
    shape = (max_time, batch_size, 2, top) if layer.num_directions == 2 and layer.merge_mode is None else (max_time, batch_size, width)
    parts = [inputs.new_empty(batch_size, size) for cell in layer.direction_cells for size in cell.state_sizes()]
    return [inputs.new_empty(shape), *parts, inputs.new_empty((), dtype=torch.int64)]


@torch.library.custom_op("rnnkit::run_layer_backward", mutates_args=())
def _run_layer_backward(
    tape: torch.Tensor, grads: list[torch.Tensor | None], like: list[torch.Tensor]
) -> list[torch.Tensor]:
    """Gradients for the inputs, states and weights (shaped as ``like``) from the recorded graph of ``tape``."""
    number = int(tape)
    if number not in _TAPES:
        raise RuntimeError("rnnkit::run_layer: its gradient was taken already (backward through the graph a "
                           "second time), or the forward ran without recording (under no_grad)")
    leaves, results = _TAPES.pop(number)

    def differentiate() -> list[torch.Tensor]:
        pairs = [(result, grad) for result, grad in zip(results, grads) if grad is not None]  # None: no gradient flows in
        found = torch.autograd.grad([result for result, _ in pairs], leaves, [grad for _, grad in pairs], allow_unused=True)
        # clones: a gradient may be one of ``grads`` passed through, and an operator's outputs may not alias its inputs
        return [torch.zeros_like(leaf) if grad is None else grad.clone() for leaf, grad in zip(leaves, found)]

    return _autograd_thread().submit(differentiate).result()


@_run_layer_backward.register_fake
def _(tape, grads, like):
    return [torch.empty_like(tensor) for tensor in like]


@functools.cache
def _autograd_thread() -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="rnnkit-graph-op")


def _setup_context(ctx, inputs, output):
    _, _, x, states, weights, _, _ = inputs
    ctx.num_states = len(states)
    ctx.save_for_backward(output[-1], x, *states, *weights)


def _backward(ctx, grads):
    tape, *like = ctx.saved_tensors  # like: the inputs, states and weights, whose shapes the gradients take
    found = torch.ops.rnnkit.run_layer_backward(tape, list(grads[:-1]), like)  # [:-1]: none for the tape
    return None, None, found[0], found[1:1 + ctx.num_states], found[1 + ctx.num_states:], None, None


_run_layer.register_autograd(_backward, setup_context=_setup_context)
