"""``Recurrent``: any cell as a deep, optionally bidirectional, residual or dense sequence layer.

This file wires layers together (dropout between layers, residual and dense
connections, state in and out) and checks what callers pass in. It does not loop
over time (``SequenceLayer`` does) and knows no cell's equations.
"""

from __future__ import annotations

import logging
import warnings
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnnkit._checks import ArgumentError, check_bool, check_choice, check_positive_int, check_tensor, shape_error
from rnnkit.cells import RecurrentCell, State, get_cell_class
from rnnkit.kernels import (
    FAST_PATH_POLICIES,
    KERNELS,
    KernelChoice,
    check_kernel_name,
    plan_layers,
    run_kernel,
    run_native_stack_of,
)
from rnnkit.layers.bidirectional import MERGE_MODES, Bidirectional, merged_width
from rnnkit.layers.sequence_layer import SequenceLayer
from rnnkit.sequences import check_lengths, step_mask

logger = logging.getLogger("rnnkit")


class Recurrent(nn.Module):
    """A stack of recurrent layers built from one cell type.

    Args:
        cell_type: a name from ``rnnkit.CELLS`` ("rnn", "lstm", "gru", "janet", "indrnn")
            or a ``RecurrentCell`` subclass.
        input_size, hidden_size: widths of x_t and of each cell.
        num_layers: stacked layers (a deep RNN); layer l > 0 reads layer l-1's output.
        bidirectional: run every layer in both directions.
        merge_mode: how the two directions' outputs are combined, at every layer:
            "concat" (width 2H), "sum", "ave", "mul", "max" (width H), or None: the top layer
            returns both, (T, B, 2, H), forward first, and layers below concatenate.
        dropout: dropout on each layer's output except the last (as torch.nn.LSTM).
        residual: add each layer's input to its output where both have the same width
            (residual IndRNN, Li et al. 2018; GNMT): out_l = layer_l(dropout(x_l)) + x_l.
        dense: each layer reads the concatenation of the input and all lower layers'
            outputs (densely connected RNN, Godin et al. 2017); the output is the top layer's.
        batch_first: inputs and outputs are (B, T, ...) instead of (T, B, ...).
        bias, proj_size: as in torch.nn.LSTM (proj_size only for LSTM cells).
        fast_path: "auto" runs each layer on the fastest kernel that computes exactly the
            same thing: PyTorch's fused kernel for plain RNN/LSTM/GRU layers, rnnkit's loop
            kernel for the other cells and the regularised ones, the readable reference loop
            otherwise; "required" raises ValueError, saying why, if a layer would run on the
            reference loop; "off" always uses the reference loop. The choice is made at every
            call, from the cells as they are then. ``rnnkit.explain(layer, input)`` tells which
            kernel each layer runs on and why.
        kernel: "auto" (fast_path decides), or "native", "loop", "scan" or "reference" to run
            every layer on that kernel (ValueError, saying why, where it cannot). Also settable
            later: ``layer.kernel = "reference"``. Under ``torch.compile`` a layer with a fast
            kernel is one custom operator of the graph (``kernels/graph_op.py``); with
            kernel="reference" the reference loop is traced; under ``torch.export`` every layer
            runs on the scan kernel, which keeps T symbolic.
        **cell_options: passed to every cell (activation, layer_norm, recurrent_dropout,
            zoneout, weight_dropout, reset_after, t_max, ...; see each cell).

    Forward: ``output, state = layer(input, state=None, lengths=None)``

    * input: (T, B, input_size) — (B, T, input_size) with batch_first — or (T, input_size)
      unbatched, or a ``PackedSequence`` (then the output is one too).
    * state: a tuple with one tensor per cell state (``cell.state_names``: (h,) or (h, c)),
      each (num_layers * num_directions, B, size), layer-major then direction, as torch.nn.
      A bare tensor is accepted for single-state cells. Default zeros.
    * lengths: B ints in [1, T], any order. Outputs past a sequence's length are zero, its
      final state is the one after its last real step, and the backward direction starts
      at its last real step.
    * output: (T, B, D*P) for concat, (T, B, P) for sum/ave/mul/max or one direction,
      (T, B, 2, P) for merge_mode=None, where P = proj_size or hidden_size (B first with
      batch_first). state: same layout as the state argument.

    To carry state across batches (truncated BPTT), feed back ``rnnkit.detach_state(state)``.
    """

    def __init__(
        self,
        cell_type: str | type[RecurrentCell],
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        merge_mode: str | None = "concat",
        dropout: float = 0.0,
        residual: bool = False,
        batch_first: bool = False,
        *,
        dense: bool = False,
        bias: bool = True,
        proj_size: int = 0,
        fast_path: str = "auto",
        kernel: str = "auto",
        device=None,
        dtype=None,
        **cell_options,
    ) -> None:
        super().__init__()
        cell_class = get_cell_class(cell_type)
        check_positive_int("input_size", input_size)
        check_positive_int("hidden_size", hidden_size)
        check_positive_int("num_layers", num_layers)
        if merge_mode not in MERGE_MODES:
            raise ArgumentError(f"merge_mode: expected one of {list(MERGE_MODES)}, got {merge_mode!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout <= 1.0:
            raise ArgumentError(f"dropout: expected a float in [0, 1], got {dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout is applied after every layer but the last, so dropout > 0 with num_layers=1 does nothing",
                stacklevel=2,
            )
        check_choice("fast_path", fast_path, FAST_PATH_POLICIES)
        if residual and dense:
            raise ArgumentError("residual, dense: choose at most one way of connecting layers")
        if proj_size:
            if not cell_class.supports_projection:
                raise ArgumentError(f"proj_size: only LSTM cells have a projection, got cell_type={cell_type!r}")
            cell_options["proj_size"] = proj_size

        self.cell_class = cell_class
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bool(bidirectional)
        self.num_directions = 2 if bidirectional else 1
        self.merge_mode = merge_mode if bidirectional else "concat"
        self.dropout = float(dropout)
        self.residual = bool(residual)
        self.dense = bool(dense)
        self.batch_first = check_bool("batch_first", batch_first)
        self.bias = check_bool("bias", bias)
        self.proj_size = proj_size
        self.fast_path = fast_path
        self.kernel = check_kernel_name(kernel)

        self.layers = nn.ModuleList()
        self._residual_at: list[bool] = []
        output_widths: list[int] = []
        for index in range(num_layers):
            if index == 0:
                layer_input = input_size
            elif dense:
                layer_input = input_size + sum(output_widths)
            else:
                layer_input = output_widths[-1]
            is_top = index == num_layers - 1
            # merge_mode=None returns both directions, which only the top layer can do.
            layer_merge = self.merge_mode if (is_top or self.merge_mode is not None) else "concat"
            layer = self._build_layer(cell_class, layer_input, hidden_size, layer_merge, bias, cell_options)
            self.layers.append(layer)
            width = self._layer_output_width(layer, layer_merge)
            self._residual_at.append(residual and layer_merge is not None and width == layer_input)
            output_widths.append(width)
        self._choices_logged: set[tuple[int, str]] = set()
        self.last_kernels: list[tuple[KernelChoice, torch.Tensor] | None] = [None] * num_layers  # as the last forward ran
        if residual and not any(self._residual_at):
            raise ArgumentError(
                f"residual: no layer has equal input and output widths (input_size={input_size}, "
                f"layer outputs {output_widths}); use num_layers >= 2 or input_size equal to the output width"
            )
        if device is not None or dtype is not None:
            self.to(device=device, dtype=dtype)
        plan_layers(self.layers, None, fast_path, kernel)  # what the cells alone rule out raises now, not at the first call

    # ----------------------------------------------------------------- construction
    def _build_layer(self, cell_class, layer_input, hidden_size, merge_mode, bias, cell_options) -> nn.Module:
        def make_cell() -> RecurrentCell:
            return cell_class(layer_input, hidden_size, bias=bias, **cell_options)

        if not self.bidirectional:
            return SequenceLayer(make_cell())
        return Bidirectional(SequenceLayer(make_cell()), SequenceLayer(make_cell(), reverse=True), merge_mode)

    def _layer_output_width(self, layer: nn.Module, merge_mode: str | None) -> int:
        cell_width = layer.direction_cells[0].output_size
        return merged_width(merge_mode, cell_width) if self.bidirectional else cell_width

    def kernel_plan(self, inputs: torch.Tensor) -> list[KernelChoice]:
        """The kernel each layer runs on for (T, B, I) ``inputs``, and why: what forward decides, at every call."""
        plan = plan_layers(self.layers, inputs, self.fast_path, self.kernel)
        if torch.compiler.is_compiling():
            return plan  # Dynamo cannot trace logging calls; explain() reports the traced plan
        for index, choice in enumerate(plan):
            if choice.kernel != "native" and (index, choice.reason) not in self._choices_logged:  # once, not at every step
                self._choices_logged.add((index, choice.reason))
                logger.debug("layer %d runs on the %s kernel: %s", index, choice.kernel, choice.reason)
        return plan

    @property
    def cells(self) -> list[RecurrentCell]:
        """All cells, layer-major then direction: the order of the stacked state."""
        return [module for module in self.modules() if isinstance(module, RecurrentCell)]

    @property
    def state_names(self) -> tuple[str, ...]:
        return self.cell_class.state_names

    @property
    def output_size(self) -> int:
        """Width of the last output dimension (per direction for merge_mode=None)."""
        top = self.layers[-1]
        return self._layer_output_width(top, top.merge_mode if self.bidirectional else "concat")

    # ----------------------------------------------------------------- forward
    def forward(
        self,
        input: torch.Tensor | PackedSequence,
        state: State | torch.Tensor | None = None,
        lengths: torch.Tensor | Sequence[int] | None = None,
    ) -> tuple[torch.Tensor | PackedSequence, State]:
        packed = input if isinstance(input, PackedSequence) else None
        if packed is not None:
            if lengths is not None:
                raise ArgumentError("lengths: must be None when input is a PackedSequence, which carries its own lengths")
            if torch.compiler.is_exporting():
                raise ArgumentError(f"{type(self).__name__}: a PackedSequence input cannot be exported (its batch sizes "
                                    "are data, not shapes); export with the padded batch and lengths= instead")
            inputs, lengths = pad_packed_sequence(packed)  # (T, B, I), original batch order
            unbatched = False
        else:
            inputs, unbatched = self._time_major(input)
        self._check_against_weights(inputs)
        max_time, batch_size = inputs.shape[:2]
        lengths = check_lengths(lengths, batch_size, max_time)
        self._run_cell_pre_hooks()
        layer_states = self._split_state(state, batch_size, unbatched)

        output, final_states = self._run_layers(inputs, layer_states, lengths)
        if lengths is not None:
            mask = step_mask(lengths, max_time, output.device)  # padding past each length is zero
            output = output * mask.reshape(mask.shape + (1,) * (output.dim() - 2)).to(output.dtype)
        final_state = self._stack_state(final_states, unbatched)

        if packed is not None:
            return _repack(output, lengths, packed), final_state
        if unbatched:
            return output.squeeze(1), final_state
        return (output.transpose(0, 1) if self.batch_first else output), final_state

    def _run_layers(
        self, inputs: torch.Tensor, layer_states: list[list[State] | None], lengths: torch.Tensor | None
    ) -> tuple[torch.Tensor, list[list[State]]]:
        plan = self.kernel_plan(inputs)  # what the input decides is the same at every layer: T, dtype, device
        if self._chains_as_torch_nn(plan):
            for index, choice in enumerate(plan):
                self.last_kernels[index] = (choice, inputs.new_empty(0))
            return run_native_stack_of(list(self.layers), inputs, layer_states, lengths)
        x = inputs
        outputs: list[torch.Tensor] = []
        final_states: list[list[State]] = []
        for index, (layer, states) in enumerate(zip(self.layers, layer_states)):
            x, skip = self._layer_input(index, inputs, outputs)
            layer_state = None if states is None else (states[0] if layer.num_directions == 1 else tuple(states))
            choice = plan[index]
            self.last_kernels[index] = (choice, x.new_empty(0))  # for rnnkit.explain: the kernel, the input's dtype and device
            y, new_state = run_kernel(KERNELS[choice.kernel], layer, x, layer_state, lengths)
            if self._residual_at[index]:
                y = y + skip
            outputs.append(y)
            final_states.append([new_state] if layer.num_directions == 1 else list(new_state))
        return outputs[-1], final_states

    def _layer_input(self, index: int, inputs: torch.Tensor, outputs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """What layer ``index`` reads, and what its residual link adds: the input, or the output of the layer below
        (with the input and every lower output, dense), dropped out between layers."""
        if index == 0:
            return inputs, inputs
        if self.dense:  # the input may have a smaller batch shape than the outputs (step's broadcast batches)
            batch = outputs[-1].shape[:-1]
            below = torch.cat([part.expand(*batch, part.shape[-1]) for part in (inputs, *outputs)], dim=-1)
        else:
            below = outputs[-1]
        return (F.dropout(below, self.dropout, self.training) if self.dropout else below), below

    def step(self, input: torch.Tensor, state: State | torch.Tensor) -> tuple[torch.Tensor, State]:
        """One time step of the whole stack on the cells' own equations (no kernel), for an input and a state whose
        batch shapes broadcast: input (..., input_size), state as forward's with each part (num_layers, ..., size)
        -> output (*batch, P) and state (num_layers, *batch, size), batch the broadcast of the two batch shapes.

        What a decoder that starts many inputs from few states calls. SegRNN's parallel decoding feeds the M
        position embeddings of C channels, (C, M, I), from the final states of B windows, (B, C, 1, H): each cell's
        products then run once on the C*M inputs and once on the B*C states, not on all B*C*M pairs. Dropout
        between layers, residual and dense links as in forward. One direction only: a step has no backward one.
        """
        if self.bidirectional:
            raise ArgumentError("step: a bidirectional stack reads whole sequences in both directions; call forward")
        check_tensor("input", input)
        if input.shape[-1] != self.input_size:
            raise shape_error("input", f"(..., {self.input_size})", input.shape)
        self._check_against_weights(input)
        state = (state,) if isinstance(state, torch.Tensor) else tuple(state)
        sizes = self.layers[0].cell.state_sizes()
        if len(state) != len(self.state_names):
            raise ArgumentError(f"state: expected a tuple of {len(sizes)} tensors {self.state_names}, got {len(state)}")
        for part, name, size in zip(state, self.state_names, sizes):
            check_tensor(f"state.{name}", part)
            if part.dim() < 2 or part.shape[0] != self.num_layers or part.shape[-1] != size:
                raise shape_error(f"state.{name}", f"(num_layers={self.num_layers}, ..., {size})", part.shape)
        batch = torch.broadcast_shapes(input.shape[:-1], state[0].shape[1:-1])
        self._run_cell_pre_hooks()
        outputs: list[torch.Tensor] = []
        new_states: list[State] = []
        for index, layer in enumerate(self.layers):
            x, skip = self._layer_input(index, input, outputs)
            cell = layer.cell
            h, cell_state = cell.advance(x, tuple(part[index] for part in state), cell.sample_noise(batch, x))
            outputs.append(h + skip if self._residual_at[index] else h)
            new_states.append(cell_state)
        return outputs[-1], tuple(torch.stack(parts) for parts in zip(*new_states))

    def _chains_as_torch_nn(self, plan: list[KernelChoice]) -> bool:
        """Whether the whole stack can be one call of torch's kernel: every layer native, and the layers
        connected as torch.nn connects them (no residual or dense links, no dropout drawn between them,
        both directions concatenated)."""
        return (
            not torch.compiler.is_compiling()  # traced, each layer is one node of the graph (graph_op.py)
            and all(choice.kernel == "native" for choice in plan)
            and not self.dense
            and not any(self._residual_at)
            and not (self.dropout and self.training)
            and self.merge_mode == "concat"
        )

    # ----------------------------------------------------------------- checks and layouts
    def _time_major(self, input: torch.Tensor) -> tuple[torch.Tensor, bool]:
        check_tensor("input", input)
        layout = "(B, T, input_size)" if self.batch_first else "(T, B, input_size)"
        if input.dim() not in (2, 3) or input.shape[-1] != self.input_size:
            expected = layout.replace("input_size", str(self.input_size))
            raise shape_error("input", f"{expected} or unbatched (T, {self.input_size})", input.shape)
        if not input.is_floating_point():
            raise TypeError(f"input: expected a floating-point tensor, got dtype {input.dtype}")
        if input.dim() == 2:
            return input.unsqueeze(1), True
        if input.shape[1 if self.batch_first else 0] == 0:
            raise shape_error("input", layout, input.shape, "T must be at least 1")
        return (input.transpose(0, 1) if self.batch_first else input), False

    def _check_against_weights(self, inputs: torch.Tensor) -> None:
        """One clear line where a kernel would fail deep inside (oneDNN: "unsupported data type")."""
        weight = next(self.parameters())  # a stored tensor, not a parametrization's result
        if inputs.device != weight.device:
            raise ArgumentError(
                f"input: on {inputs.device}, but the weights are on {weight.device}; "
                f"move the input with input.to({str(weight.device)!r}) or the model with model.to({str(inputs.device)!r})"
            )
        if inputs.dtype != weight.dtype and not torch.is_autocast_enabled(inputs.device.type):
            raise ArgumentError(
                f"input: dtype {inputs.dtype} differs from the weights' {weight.dtype}; "
                f"convert the input with input.to({weight.dtype}) or the model with model.to({inputs.dtype})"
            )

    def _run_cell_pre_hooks(self) -> None:
        """Run each cell's forward pre-hooks once per call, as torch.nn runs a module's once per forward.

        They are how ``torch.nn.utils.prune`` (and the older ``weight_norm``/``spectral_norm``)
        recompute a weight from its parameters; no kernel calls a cell's ``forward``, so without
        this a pruned cell would run on the weight computed when it was pruned.
        """
        for cell in (cell for layer in self.layers for cell in layer.direction_cells):  # not a walk over every module
            for key, hook in list(cell._forward_pre_hooks.items()):
                if key in cell._forward_pre_hooks_with_kwargs:
                    hook(cell, (), {})
                else:
                    hook(cell, ())

    def _split_state(self, state, batch_size: int, unbatched: bool) -> list[list[State] | None]:
        """(L*D, B, size) per state tensor -> per layer, per direction, a cell state tuple."""
        if state is None:
            return [None] * self.num_layers
        if isinstance(state, torch.Tensor):
            state = (state,)
        names = self.state_names
        if not isinstance(state, (tuple, list)) or len(state) != len(names):
            raise ArgumentError(f"state: expected a tuple of {len(names)} tensors {names}, got {type(state).__name__}")
        rows = self.num_layers * self.num_directions
        sizes = self.layers[0].direction_cells[0].state_sizes()
        parts = []
        for part, name, size in zip(state, names, sizes):
            check_tensor(f"state.{name}", part)
            if unbatched and part.dim() == 2:
                part = part.unsqueeze(1)
            if part.shape != (rows, batch_size, size):
                raise shape_error(
                    f"state.{name}", f"(num_layers*num_directions={rows}, B={batch_size}, {size})", part.shape
                )
            parts.append(part)
        return [
            [tuple(part[layer * self.num_directions + direction] for part in parts) for direction in range(self.num_directions)]
            for layer in range(self.num_layers)
        ]

    def _stack_state(self, final_states: list[list[State]], unbatched: bool) -> State:
        per_cell = [cell_state for layer in final_states for cell_state in layer]
        stacked = tuple(torch.stack(parts) for parts in zip(*per_cell))  # each (L*D, B, size)
        return tuple(part.squeeze(1) for part in stacked) if unbatched else stacked

    # ----------------------------------------------------------------- torch.ao.quantization
    @property
    def qconfig(self):
        return self.__dict__.get("_qconfig")

    @qconfig.setter
    def qconfig(self, value) -> None:
        """torch.ao.quantization sets ``qconfig`` on every module it walks, then swaps modules by their exact
        class (nn.LSTM, nn.GRU), which an rnnkit layer is not: without this it would stay in float silently."""
        warnings.warn(
            f"{type(self).__name__}: torch.ao.quantization cannot quantize rnnkit layers (it swaps modules by their "
            "exact class, nn.LSTM or nn.GRU), so this layer stays in float; use rnnkit.quantize_dynamic(model), "
            "which quantizes LSTM and GRU layers and reports what it leaves in float",
            stacklevel=3,
        )
        self.__dict__["_qconfig"] = value

    @qconfig.deleter
    def qconfig(self) -> None:
        self.__dict__.pop("_qconfig", None)

    def extra_repr(self) -> str:
        options = [f"{self.cell_class.__name__}", f"{self.input_size}, {self.hidden_size}"]
        for name, default in (("num_layers", 1), ("bidirectional", False), ("dropout", 0.0), ("residual", False),
                              ("dense", False), ("batch_first", False), ("proj_size", 0), ("fast_path", "auto"),
                              ("kernel", "auto")):
            if getattr(self, name) != default:
                options.append(f"{name}={getattr(self, name)}")
        if self.bidirectional:
            options.append(f"merge_mode={self.merge_mode!r}")
        return ", ".join(options)


def _repack(output: torch.Tensor, lengths: torch.Tensor, like: PackedSequence) -> PackedSequence:
    """Pack (T, B, ...) outputs with the same batch order and sizes as the packed input."""
    order = like.sorted_indices
    if order is not None:
        output = output.index_select(1, order.to(output.device))
        lengths = lengths.index_select(0, order.cpu())
    data = pack_padded_sequence(output, lengths, enforce_sorted=True).data
    return PackedSequence(data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)
