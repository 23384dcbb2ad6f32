"""``rnnkit bench [--cells lstm,gru,...] [--shapes 100x32x256,...] [--json FILE] [--generation]``: the tables and the JSON records."""

from __future__ import annotations

import dataclasses
import os
import platform
from pathlib import Path

import torch
import tyro

from rnnkit.bench.generation import GENERATION_HEADER, GenerationShape, generation_row, measure_generation
from rnnkit.bench.measure import MODES, CaseResult, Shape, measure_case
from rnnkit.cells import CELLS
from rnnkit.errors import UserError
from rnnkit.train.files import atomic_write_json

DEFAULT_SHAPES = "100x32x256,50x64x512,200x1x128,35x20x200,1000x32x128"  # (T, B, input = hidden), from issue 6


@dataclasses.dataclass
class BenchOptions:
    cells: str = "rnn,lstm,gru,janet,indrnn"
    """Comma-separated cells to time."""
    shapes: str = DEFAULT_SHAPES
    """Comma-separated shapes TxBxH (steps x batch x input = hidden size)."""
    json: str | None = None
    """Write one record per (cell, shape, mode) to this file."""
    repeats: int = 3
    """Timed calls of each implementation; the fastest counts."""
    generation: bool = False
    """Also time generation (what rnnkit generate does): per-character latency of a 2x512 char-level
    model of each cell at batch 1, against the same model on torch.nn stepped one character at a time."""


def _parse(options: BenchOptions) -> tuple[list[str], list[Shape]]:
    cells = [cell.strip() for cell in options.cells.split(",") if cell.strip()]
    unknown = [cell for cell in cells if cell not in CELLS]
    if not cells or unknown:
        raise UserError(f"--cells: expected names from {', '.join(CELLS)}, got {options.cells!r}")
    try:
        shapes = [Shape.parse(text.strip()) for text in options.shapes.split(",") if text.strip()]
    except ValueError as error:
        raise UserError(str(error)) from None
    if not shapes:
        raise UserError("--shapes: expected at least one TxBxH shape, e.g. 100x32x256")
    if options.repeats < 1:
        raise UserError(f"--repeats: expected a positive integer, got {options.repeats}")
    if options.json is not None and not Path(options.json).parent.is_dir():
        raise UserError(f"--json: the folder of {options.json!r} does not exist")
    return cells, shapes


def machine() -> dict:
    return {
        "processor": platform.processor() or platform.machine(),
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.1f}"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


HEADER = f"{'cell':<7}{'shape':<13}{'mode':<17}{'rnnkit ms':>10}{'native':>9}{'naive':>9}{'floor':>8}" \
         f"{'/native':>9}{'naive/':>8}{'floor%':>8}  kernel"


def table_row(result: CaseResult) -> str:
    record = result.record()
    seconds = record["seconds"]
    floor = record["fraction_of_gemm_floor"]
    return (f"{result.cell:<7}{str(result.shape):<13}{result.mode:<17}{_ms(seconds['rnnkit']):>10}{_ms(seconds['native']):>9}"
            f"{_ms(seconds['naive']):>9}{_ms(seconds['gemm_floor']):>8}{_x(record['ratio_to_native']):>9}"
            f"{_x(record['speedup_over_naive']):>8}{floor * 100:>7.0f}%  {result.kernel}")


def bench_command(arguments: list[str]) -> int:
    options = tyro.cli(BenchOptions, args=arguments, prog="rnnkit bench")
    cells, shapes = _parse(options)
    about = machine()
    print(f"{about['cpu_model']}, {about['cores']} cores, torch {about['torch']} with {about['torch_threads']} threads")
    print("/native: rnnkit's time over torch.nn's (below 1 is faster); naive/: speed-up over the readable loop; "
          "floor%: the GEMM floor's time as a share of rnnkit's")
    print(HEADER)
    records = []
    for cell in cells:
        for shape in shapes:
            for result in measure_case(cell, shape, options.repeats):
                print(table_row(result), flush=True)
                records.append(result.record())
    if options.generation:
        print()
        print(GENERATION_HEADER)
        for cell in cells:
            record = measure_generation(cell, GenerationShape(), options.repeats)
            print(generation_row(record), flush=True)
            records.append(record)
    if options.json is not None:
        modes = [*MODES, "generate"] if options.generation else list(MODES)
        atomic_write_json(Path(options.json), {"machine": about, "modes": modes, "records": records})
        print(f"wrote {options.json}")
    return 0
