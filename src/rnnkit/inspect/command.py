"""``rnnkit inspect grad-flow`` and ``rnnkit inspect gates``: figures and numbers from models.

grad-flow compares models (trained checkpoints and/or freshly initialised cells on a task's
data) by ‖∂L/∂h_t‖ over time; gates reads one checkpoint's gate activations and, for a
character-level language model, draws one hidden unit over a text.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
import tyro

from rnnkit.cells import CELLS
from rnnkit.errors import UserError
from rnnkit.inspect.gates import (gate_statistics, most_variable_hidden_unit, record_steps, write_gates,
                                  write_hidden_unit_over_text)
from rnnkit.inspect.grad_flow import gradient_flow, write_gradient_flow
from rnnkit.inspect.source import inspectable
from rnnkit.tasks import Session, get_task, restore_session
from rnnkit.train.distributed import SINGLE_PROCESS

USAGE = """usage: rnnkit inspect VIEW [options]

views:
  grad-flow   ||dL/dh_t|| over time for trained checkpoints and/or fresh cells, e.g.
              rnnkit inspect grad-flow --cells rnn lstm gru janet indrnn --task adding --seq-len 200
  gates       gate saturation and activity of a trained checkpoint (a char LM also gets one unit over a text):
              rnnkit inspect gates --checkpoint RUN_FOLDER

'rnnkit inspect VIEW --help' shows a view's options."""


@dataclasses.dataclass
class GradFlowOptions:
    checkpoint: tuple[str, ...] = ()
    """Run folders (or checkpoint directories) of trained models to compare."""
    cells: tuple[str, ...] = ()
    """Freshly initialised models of these cells, on --task's model and data."""
    task: str = "adding"
    """Task of the fresh models (see 'rnnkit tasks')."""
    seq_len: int = 0
    """Sequence length of the fresh models' task, where it has one (adding, copy; 0: the task's default)."""
    batch_size: int = 32
    """Held-out sequences to average over."""
    seed: int = 0
    """Seed of the fresh models' initial weights."""
    out: str = "inspect"
    """Folder for grad_flow.png, grad_flow.csv and grad_flow.json."""


@dataclasses.dataclass
class GatesOptions:
    checkpoint: str
    """Run folder (or checkpoint directory) of a model with gated cells (lstm, gru, janet)."""
    layer: int = -1
    """Recurrent layer to look at: 0 is the lowest, -1 the top."""
    batch_size: int = 32
    """Held-out sequences to average over."""
    unit: int = -1
    """Char LM: the hidden unit drawn over the text (-1: the one that varies most)."""
    length: int = 400
    """Char LM: characters of validation text to draw the unit over."""
    out: str = "inspect"
    """Folder for gates.png and gates.json (and unit.png, unit.json for a char LM)."""


def _fresh_session(options: GradFlowOptions, cell: str) -> Session:
    if cell not in CELLS:
        raise UserError(f"--cells: unknown cell {cell!r}; expected one of {', '.join(CELLS)}")
    task = get_task(options.task)
    config = task.default_config()
    config.model.cell = cell
    if options.seq_len:
        if not hasattr(config.dataset, "seq_len"):
            raise UserError(f"--seq-len: task {task.name!r} has no sequence length option; drop --seq-len")
        config.dataset.seq_len = options.seq_len
    config.validate()
    torch.manual_seed(options.seed)
    return task.start(config, SINGLE_PROCESS, torch.device("cpu"))


def _describe(session: Session) -> str:
    model = session.config.model
    return f"{model.cell} {model.num_layers}x{model.hidden_size}"


def grad_flow_command(arguments: list[str]) -> int:
    options = tyro.cli(GradFlowOptions, args=arguments, prog="rnnkit inspect grad-flow")
    if not options.checkpoint and not options.cells:
        raise UserError("grad-flow: name models with --checkpoint RUN_FOLDER ... and/or --cells CELL ...")
    if options.batch_size <= 0:
        raise UserError(f"--batch-size: expected a positive integer, got {options.batch_size}")
    flows = []
    for path in options.checkpoint:
        _, session = restore_session(path)
        session = inspectable(session, f"checkpoint {path}")
        flows.append(gradient_flow(session, options.batch_size, f"{_describe(session)} ({Path(path).name})"))
    for cell in options.cells:
        session = inspectable(_fresh_session(options, cell), f"--task {options.task}")
        flows.append(gradient_flow(session, options.batch_size, f"{_describe(session)} (initial weights)"))
    lengths = sorted({len(flow.norms) for flow in flows})
    title = f"gradient flow: ||dL/dh_t|| of the top layer, {options.batch_size} held-out sequences of {'/'.join(map(str, lengths))} steps"
    for path in write_gradient_flow(flows, Path(options.out), title):
        print(path)
    for flow in flows:
        first, last = flow.norms[0], flow.norms[-1]
        print(f"{flow.label}: loss {flow.loss:.4f}, ||dL/dh_t|| {last:.3g} at the last step, {first:.3g} at the first "
              f"(ratio {first / last if last else float('inf'):.3g})")
    return 0


def gates_command(arguments: list[str]) -> int:
    options = tyro.cli(GatesOptions, args=arguments, prog="rnnkit inspect gates")
    if options.batch_size <= 0 or options.length <= 0:
        raise UserError("--batch-size and --length must be positive integers")
    _, session = restore_session(options.checkpoint)
    session = inspectable(session, f"checkpoint {options.checkpoint}")
    watched = session.recurrent_layers()
    layers = len(watched.layers)
    if not -layers <= options.layer < layers:
        raise UserError(f"--layer: the model has {layers} recurrent layer(s), so expected 0..{layers - 1} or -1, got {options.layer}")
    if not watched.cells[0].gate_names:
        raise UserError(f"checkpoint {options.checkpoint}: its {session.config.model.cell} cells have no gates; "
                        "'inspect gates' needs a model of lstm, gru or janet cells")
    out = Path(options.out)
    recording = record_steps(session, session.inspection_batch(options.batch_size), options.layer)
    title = f"{_describe(session)} ({Path(options.checkpoint).name}), layer {options.layer % layers}"
    statistics = gate_statistics(recording.gate_values())
    written = write_gates(statistics, out, title)
    for name, stats in statistics.items():
        print(f"{name} gate: mean {stats['mean']:.3f}, {stats['fraction_below_0.1']:.1%} below 0.1, "
              f"{stats['fraction_above_0.9']:.1%} above 0.9")
    text_batch = session.inspection_batch(1, options.length)
    characters = session.step_labels(text_batch)
    if characters is not None:
        memory = record_steps(session, text_batch, options.layer).memory()[:, 0]  # (T, H) of the one text
        hidden_unit = most_variable_hidden_unit(memory) if options.unit < 0 else options.unit
        if hidden_unit >= memory.shape[1]:
            raise UserError(f"--unit: the layer has {memory.shape[1]} hidden units, so expected 0..{memory.shape[1] - 1}, "
                            f"got {hidden_unit}")
        written += write_hidden_unit_over_text(characters, memory[:, hidden_unit], hidden_unit, out, title)
    for path in written:
        print(path)
    return 0


VIEWS = {"grad-flow": grad_flow_command, "gates": gates_command}


def inspect_command(arguments: list[str]) -> int:
    if not arguments or arguments[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if arguments else 2
    view, rest = arguments[0], arguments[1:]
    if view not in VIEWS:
        raise UserError(f"unknown view {view!r}: expected one of {', '.join(VIEWS)} (see 'rnnkit inspect --help')")
    return VIEWS[view](rest)
