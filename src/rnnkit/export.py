"""``rnnkit export --checkpoint RUN --format onnx|pt2 --out FILE``: a trained model as a file that runs without rnnkit.

A language model (charlm, wordlm) is exported as its generation step, the function ``rnnkit
generate`` calls: token ids (T, B) and the recurrent state in, logits (T, B, V) and the new
state out, so the same file primes on a whole prompt and then steps one token at a time. Any
other task's model is exported as its forward over whole sequences: the inputs of a batch
(its ``inputs``, its ``lengths`` where they vary, and its extra tensors, as the task's
``inspection_batch`` lays them out) in, the outputs out. T and B stay symbolic: the graph comes
from ``torch.export``, where the scan kernel keeps the time axis free (``kernels/scan.py``).
``pt2`` is ``torch.export.save``'s archive, ``onnx`` the current exporter's translation of it
(the ``export`` extra). Every export is checked before it is published: the written file is
loaded back and run on another batch, and must agree with PyTorch.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Literal

import torch
import tyro
from torch import nn

from rnnkit.errors import UserError
from rnnkit.models.language_model import LanguageModel
from rnnkit.tasks.runs import read_trained_run

TOLERANCE = 1e-4  # float32, whole sequences; measured differences are about 1e-6


@dataclasses.dataclass
class ExportOptions:
    checkpoint: str
    """Run folder (or checkpoint directory) of a trained model."""
    out: str
    """File to write (published only once it has been loaded back and checked)."""
    format: Literal["onnx", "pt2"] = "onnx"
    """onnx: for ONNX Runtime and other ONNX consumers; pt2: torch.export's archive, for torch.export.load."""


class GenerationStep(nn.Module):
    """A language model's step as a graph: (tokens (T, B), *state) -> (logits (T, B, V), *new state)."""

    def __init__(self, model: LanguageModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits, _, new_state = self.model(tokens, tuple(state))
        return (logits, *new_state)

    def example(self, steps: int, batch: int) -> tuple[torch.Tensor, ...]:
        """Token ids and a zero state for ``steps`` × ``batch``."""
        rnn = self.model.rnn
        rows = rnn.num_layers * rnn.num_directions
        state = tuple(torch.zeros(rows, batch, size) for size in rnn.cells[0].state_sizes())
        return (torch.randint(0, self.model.head.out_features, (steps, batch)), *state)

    def traced_inputs(self) -> tuple[torch.Tensor, ...]:
        return self.example(steps=5, batch=2)

    def checked_inputs(self) -> tuple[torch.Tensor, ...]:
        return self.example(steps=7, batch=3)  # a T and B the export never saw

    def dynamic_shapes(self) -> tuple:
        steps, batch = torch.export.Dim("T", min=1, max=1 << 20), torch.export.Dim("B", min=1, max=1 << 16)
        return ({0: steps, 1: batch}, tuple({1: batch} for _ in self.model.rnn.state_names))  # *state: one group


class WholeSequences(nn.Module):
    """A model's forward over whole sequences as a graph: (inputs, [lengths], *extras) -> outputs.

    ``traced`` and ``checked`` are two batches of the task (``inspection_batch``): the first to
    trace, the second, of another size, to check the written file.
    """

    def __init__(self, model: nn.Module, traced, checked) -> None:
        super().__init__()
        self.model = model.eval()
        self.with_lengths = traced.lengths is not None
        self.extra_names = list(traced.extras)
        self.traced_batch, self.checked_batch = traced, checked

    def forward(self, inputs: torch.Tensor, *rest: torch.Tensor):
        lengths = rest[0] if self.with_lengths else None
        extras = dict(zip(self.extra_names, rest[1:] if self.with_lengths else rest))
        outputs, _, _ = self.model(inputs, lengths=lengths, **extras)
        return outputs

    def traced_inputs(self) -> tuple[torch.Tensor, ...]:
        return self._inputs_of(self.traced_batch)

    def checked_inputs(self) -> tuple[torch.Tensor, ...]:
        return self._inputs_of(self.checked_batch)

    def _inputs_of(self, batch) -> tuple[torch.Tensor, ...]:
        tensors = (batch.inputs, *([batch.lengths] if self.with_lengths else []), *batch.extras.values())
        # Copies, not views: torch.export guards on a view's base (``inputs._base.size()``), which an input of
        # the exported program does not have.
        return tuple(tensor.clone() for tensor in tensors)

    def dynamic_shapes(self) -> tuple:
        # AUTO, not named dimensions: a task's model may tie T or B to something of its own (a fixed sequence
        # length, a guard on one batch size), which a named dimension would refuse; the program then says
        # which sizes it accepts.
        auto = torch.export.Dim.AUTO
        # every dimension of the inputs may vary (T, B, and NER's longest word in characters); AUTO keeps those
        # that cannot (a feature width) as they are
        inputs = {dimension: auto for dimension in range(self.traced_batch.inputs.dim())}
        batch_only = [{0: auto}] if self.with_lengths else []
        # a batch's extras have their batch on dim 1 (rnnkit.data.Batch)
        rest = tuple([*batch_only, *({1: auto} for _ in self.extra_names)])
        return (inputs, rest) if rest else (inputs,)


def export_command(arguments: list[str]) -> int:
    options = tyro.cli(ExportOptions, args=arguments, prog="rnnkit export", description=__doc__.splitlines()[0])
    out = Path(options.out)
    if not out.parent.is_dir():
        raise UserError(f"--out: the folder of {options.out!r} does not exist; create it or name another file")
    if options.format == "onnx":
        _require_onnx()
    run = read_trained_run(options.checkpoint)
    session = run.session("cpu")
    model = session.model.eval()
    if isinstance(model, LanguageModel):
        exported, what = GenerationStep(model).eval(), "generation step"
    else:
        exported, what = WholeSequences(model, session.inspection_batch(4), session.inspection_batch(3)), "model"
    try:
        difference = export_step(exported, out, options.format)
    except UserError:
        raise
    except Exception as error:  # the exporter's own failure, for a model rnnkit has not tried: one line, nothing written
        message = re.sub(r"\x1b\[[0-9;]*m", "", str(error))  # the ONNX exporter colours its messages
        first = next((line for line in message.splitlines() if line.strip()), type(error).__name__)
        raise UserError(f"checkpoint {options.checkpoint}: the {run.task.name} {what} could not be exported to "
                        f"{options.format} ({type(error).__name__}: {first[:300]})") from None
    print(f"exported the {run.task.name} {what} of {options.checkpoint} to {out} ({options.format}, "
          f"{out.stat().st_size / 1e6:.1f} MB); loaded back and run on another batch: "
          f"max |difference| from PyTorch {difference:.1e}")
    return 0


def export_step(step: GenerationStep | WholeSequences, out: Path, format: str) -> float:
    """Write ``step`` to ``out`` atomically, after checking the written file; the largest difference it showed."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the exporter's own deprecations, nothing the user can change
        program = torch.export.export(step, step.traced_inputs(), dynamic_shapes=step.dynamic_shapes())
        handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=f".{format}")
        os.close(handle)
        try:
            if format == "pt2":
                torch.export.save(program, temporary)
            else:
                exporter_log = logging.getLogger("torch.onnx")
                level = exporter_log.level
                exporter_log.setLevel(logging.ERROR)  # it warns of every torchvision op it skips
                try:
                    torch.onnx.export(program, dynamo=True, verbose=False).save(temporary)
                finally:
                    exporter_log.setLevel(level)
            difference = _check(step, temporary, format)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temporary, 0o666 & ~umask)  # mkstemp's file is private; the export is an ordinary file
            os.replace(temporary, out)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    return difference


def _check(step: GenerationStep | WholeSequences, path: str, format: str) -> float:
    inputs = step.checked_inputs()
    wanted = torch.utils._pytree.tree_leaves(step(*inputs))
    if format == "pt2":
        got = torch.utils._pytree.tree_leaves(torch.export.load(path).module()(*inputs))
    else:
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        feeds = {argument.name: value.numpy() for argument, value in zip(session.get_inputs(), inputs)}
        got = [torch.from_numpy(value) for value in session.run(None, feeds)]
    difference = max(float((value - want).abs().max()) for value, want in zip(got, wanted, strict=True))
    if difference > TOLERANCE:
        raise UserError(f"the exported {format} file computes something else than PyTorch (largest difference "
                        f"{difference:.1e}, above {TOLERANCE:g}); nothing was written. Please report this.")
    return difference


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as error:
        raise UserError(f"--format onnx needs the 'export' extra ({error.name} is missing): "
                        "pip install 'rnnkit[export]', or use --format pt2") from None
