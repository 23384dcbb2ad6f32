"""Compare two folders written by benchmarks/same_numbers.sh: each run's final weights (bit for bit), its logged
training and evaluation records (times left out), its summary.json (times and throughput left out), the files
its commands wrote, and what the commands printed.

    python benchmarks/compare_runs.py BEFORE AFTER
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

TIMES = {"elapsed", "elapsed_seconds", "tokens", "tokens_per_second", "units", "units_per_second", "unit"}


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / json.loads((run / "checkpoint.json").read_text())["directory"] / "model.safetensors"))


def records(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in TIMES}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def summary(run: Path) -> dict:
    return {k: v for k, v in json.loads((run / "summary.json").read_text()).items() if k not in TIMES}


def main(before: Path, after: Path) -> None:
    for run in sorted(path.parent.name for path in before.glob("*/checkpoint.json")):
        a, b = before / run, after / run
        weights_a, weights_b = final_weights(a), final_weights(b)
        equal = weights_a.keys() == weights_b.keys() and all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
        summaries = summary(a), summary(b)
        changed = sorted(k for k in summaries[0].keys() | summaries[1].keys() if summaries[0].get(k) != summaries[1].get(k))
        print(f"{run:12s} weights {'bitwise equal' if equal else 'DIFFER'}; metrics.jsonl "
              f"{'equal' if records(a) == records(b) else 'DIFFERS'}; summary.json entries that differ: {changed or 'none'}")
    def printed(path: Path) -> str:  # without the wall time of a training line: "after 60 steps (21 s, budget)"
        return re.sub(r"\(\d+ s, ", "(_ s, ", path.read_text())

    for output in sorted(before.glob("*.out")):
        same = printed(output) == printed(after / output.name)
        print(f"{output.stem:16s} printed {'the same' if same else 'something else'}")
    for written in sorted(p for p in before.iterdir() if p.suffix in (".csv", ".mid")):
        print(f"{written.name:20s} {'byte-identical' if written.read_bytes() == (after / written.name).read_bytes() else 'DIFFERS'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
