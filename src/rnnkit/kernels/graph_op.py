"""The fast kernels inside a ``torch.compile`` graph, as one registered custom operator per layer call.

Dynamo cannot trace PyTorch's fused RNN ops (oneDNN's fails on fake tensors) nor the loop
kernel's hand-written backward, and skipping them breaks the graph, which
``fullgraph=True`` forbids. So, while ``torch.compile`` traces, a layer on one of those
kernels is called through ``rnnkit::run_layer``, a ``torch.library.custom_op``: the graph
sees one node with a fake implementation (output shapes from the input's, T and B kept
symbolic), and the node runs the kernel eagerly at full speed. Its gradient
(``register_autograd``) is a second operator that runs the layer again under autograd and
differentiates it, with the forward's random draws repeated (the same seed), so training
costs one extra forward per layer and step.

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
    seed = torch.randint(0, 2**62, (), dtype=torch.int64) if _draws_noise(cells) else torch.zeros((), dtype=torch.int64)
    results = torch.ops.rnnkit.run_layer(_key_of(layer), kernel.name, inputs, states, weights, lengths, seed)
    output, parts = results[0], results[1:]
    width = len(cells[0].state_names)
    final = [tuple(parts[i * width:(i + 1) * width]) for i in range(len(cells))]
    return output, (final[0] if layer.num_directions == 1 else tuple(final))


def _key_of(layer) -> int:
    key = layer.__dict__.get("_graph_op_key")
    if key is None:
        key = next(_KEYS)
        object.__setattr__(layer, "_graph_op_key", key)
        _LAYERS[key] = layer
    return key


# torch.compiler.assume_constant_result: Dynamo runs it instead of tracing it, and the key is a constant of
# the graph. Set by hand because the decorator imports Dynamo (2 s), which 'import rnnkit' must not.
_key_of._dynamo_marked_constant = True


def _per_direction(layer, state) -> list:
    return [state] if layer.num_directions == 1 else list(state)


def _draws_noise(cells) -> bool:
    return any(cell.training and (cell.recurrent_dropout or cell.zoneout or cell.weight_dropout) for cell in cells)


@contextlib.contextmanager
def _as_called(layer, weights: list[torch.Tensor], seed: torch.Tensor):
    """The layer's cells computing with ``weights``, and the RNG where the traced call left it."""
    cells = layer.direction_cells
    replacements, start = [], 0
    for cell in cells:
        names = list(cell.weights())
        replacements.append(dict(zip(names, weights[start:start + len(names)])))
        start += len(names)
    with contextlib.ExitStack() as stack:
        for cell, replacement in zip(cells, replacements):
            stack.enter_context(cell.weights_replaced(replacement))
        if _draws_noise(cells):
            stack.enter_context(torch.random.fork_rng(devices=[]))
            torch.manual_seed(int(seed))
        yield


def _call(key: int, kernel: str, inputs, states, weights, lengths, seed) -> list[torch.Tensor]:
    layer = _LAYERS[key]
    cells = layer.direction_cells
    width = len(cells[0].state_names)
    state = None
    if states:
        per_direction = [tuple(states[i * width:(i + 1) * width]) for i in range(len(cells))]
        state = per_direction[0] if layer.num_directions == 1 else tuple(per_direction)
    with _as_called(layer, weights, seed):
        output, final = _KERNELS[kernel].run(layer, inputs, state, lengths)
    return [output, *(part for cell_state in _per_direction(layer, final) for part in cell_state)]


@torch.library.custom_op("rnnkit::run_layer", mutates_args=())
def _run_layer(
    key: int, kernel: str, inputs: torch.Tensor, states: list[torch.Tensor], weights: list[torch.Tensor],
    lengths: torch.Tensor | None, seed: torch.Tensor,
) -> list[torch.Tensor]:
    with torch.no_grad():
        return [result.clone() for result in _call(key, kernel, inputs, states, weights, lengths, seed)]


@_run_layer.register_fake
def _(key, kernel, inputs, states, weights, lengths, seed):
    layer = _LAYERS[key]
    max_time, batch_size = inputs.shape[:2]
    top = layer.direction_cells[0].output_size
    width = top * 2 if layer.num_directions == 2 and layer.merge_mode == "concat" else top
    shape = (max_time, batch_size, 2, top) if layer.num_directions == 2 and layer.merge_mode is None else (max_time, batch_size, width)
    parts = [inputs.new_empty(batch_size, size) for cell in layer.direction_cells for size in cell.state_sizes()]
    return [inputs.new_empty(shape), *parts]


@torch.library.custom_op("rnnkit::run_layer_backward", mutates_args=())
def _run_layer_backward(
    key: int, kernel: str, inputs: torch.Tensor, states: list[torch.Tensor], weights: list[torch.Tensor],
    lengths: torch.Tensor | None, seed: torch.Tensor, grads: list[torch.Tensor],
) -> list[torch.Tensor]:
    """Gradients for inputs, states and weights: the layer run again under autograd, and differentiated.

    On a thread of its own: an operator's implementation runs below autograd's dispatch key, where
    nothing is recorded whatever the grad mode says; a new thread starts with autograd on.
    """

    def differentiate() -> list[torch.Tensor]:
        leaves = [tensor.detach().requires_grad_() for tensor in (inputs, *states, *weights)]
        results = _call(key, kernel, leaves[0], leaves[1:1 + len(states)], leaves[1 + len(states):], lengths, seed)
        found = torch.autograd.grad(results, leaves, grads, allow_unused=True)
        # clones: a gradient may be one of ``grads`` passed through, and an operator's outputs may not alias its inputs
        return [torch.zeros_like(leaf) if grad is None else grad.clone() for leaf, grad in zip(leaves, found)]

    return _autograd_thread().submit(differentiate).result()


@functools.cache
def _autograd_thread() -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="rnnkit-graph-op-backward")


@_run_layer_backward.register_fake
def _(key, kernel, inputs, states, weights, lengths, seed, grads):
    return [torch.empty_like(tensor) for tensor in (inputs, *states, *weights)]


def _setup_context(ctx, inputs, output):
    key, kernel, x, states, weights, lengths, seed = inputs
    ctx.key, ctx.kernel, ctx.num_states = key, kernel, len(states)
    ctx.save_for_backward(x, *states, *weights, seed)
    ctx.lengths = lengths


def _backward(ctx, grads):
    x, *rest, seed = ctx.saved_tensors
    states, weights = rest[:ctx.num_states], rest[ctx.num_states:]
    grads = [torch.zeros_like(g) if g is None else g for g in grads]
    found = torch.ops.rnnkit.run_layer_backward(ctx.key, ctx.kernel, x, states, weights, ctx.lengths, seed, grads)
    return None, None, found[0], found[1:1 + len(states)], found[1 + len(states):], None, None


_run_layer.register_autograd(_backward, setup_context=_setup_context)
