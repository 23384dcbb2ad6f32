"""``rnnkit export --checkpoint RUN --format onnx|pt2 --out FILE``: a trained model as a file that runs without rnnkit.

What is exported is the model's generation step, the function ``rnnkit generate`` calls:
token ids (T, B) and the recurrent state in, logits (T, B, V) and the new state out, with T
and B symbolic, so the same file primes on a whole prompt and then steps one token at a time.
The graph comes from ``torch.export`` (the scan kernel keeps T symbolic, ``kernels/scan.py``);
``pt2`` is ``torch.export.save``'s archive, ``onnx`` the current exporter's translation of it
(the ``export`` extra). Every export is checked before it is published: the written file is
loaded back and run at a T and B other than the example's, and must agree with PyTorch.

Language models (charlm, wordlm) only so far: the other tasks' models take more than token
ids (lengths, sources, images, features) and have no step function of this shape.
"""

from __future__ import annotations

import dataclasses
import logging
import os
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
    """Run folder (or checkpoint directory) of a trained charlm or wordlm model."""
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

    def dynamic_shapes(self) -> tuple:
        steps, batch = torch.export.Dim("T", min=1, max=1 << 20), torch.export.Dim("B", min=1, max=1 << 16)
        return ({0: steps, 1: batch}, tuple({1: batch} for _ in self.model.rnn.state_names))  # *state: one group


def export_command(arguments: list[str]) -> int:
    options = tyro.cli(ExportOptions, args=arguments, prog="rnnkit export", description=__doc__.splitlines()[0])
    out = Path(options.out)
    if not out.parent.is_dir():
        raise UserError(f"--out: the folder of {options.out!r} does not exist; create it or name another file")
    if options.format == "onnx":
        _require_onnx()
    run = read_trained_run(options.checkpoint)
    model = run.session("cpu").model.eval()
    if not isinstance(model, LanguageModel):
        raise UserError(f"checkpoint {options.checkpoint}: rnnkit export writes language models (charlm, wordlm) "
                        f"so far; a {run.task.name} model takes more than token ids and has no generation step to export")
    step = GenerationStep(model).eval()
    difference = export_step(step, out, options.format)
    print(f"exported the {run.task.name} generation step of {options.checkpoint} to {out} ({options.format}, "
          f"{out.stat().st_size / 1e6:.1f} MB); loaded back and run at T=7, B=3: "
          f"max |difference| from PyTorch {difference:.1e}")
    return 0


def export_step(step: GenerationStep, out: Path, format: str) -> float:
    """Write ``step`` to ``out`` atomically, after checking the written file; the largest difference it showed."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the exporter's own deprecations, nothing the user can change
        example = step.example(steps=5, batch=2)
        program = torch.export.export(step, example, dynamic_shapes=step.dynamic_shapes())
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


def _check(step: GenerationStep, path: str, format: str) -> float:
    inputs = step.example(steps=7, batch=3)  # a T and B the export never saw
    wanted = step(*inputs)
    if format == "pt2":
        got = torch.export.load(path).module()(*inputs)
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
