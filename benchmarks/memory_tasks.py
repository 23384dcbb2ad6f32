"""Long-term-memory benchmarks of issue 5: every cell on adding, copy and (permuted) digits.

Runs ``rnnkit train`` once per (task, length, cell) with a wall-clock budget, one thread
per run and ``--jobs`` runs side by side, then prints a Markdown table of test metrics and
writes every summary to ``--results`` (JSON). The exact command of each run is recorded.

    python benchmarks/memory_tasks.py --grid adding --jobs 2 --results runs/bench/adding.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# The cells of the issue: ~128 units; IndRNN as in Li et al. 2018 (2 layers, relu, Adam 2e-4).
CELLS = {
    "rnn": ["--cell", "rnn", "--activation", "tanh"],
    "lstm": ["--cell", "lstm"],
    "gru": ["--cell", "gru"],
    "janet": ["--cell", "janet"],
    "indrnn": ["--cell", "indrnn", "--num-layers", "2", "--activation", "relu", "--lr", "2e-4"],
}
GRIDS = {  # task -> [(extra options, minutes)]
    "adding": [(["--seq-len", "100"], 3.0), (["--seq-len", "200"], 3.0), (["--seq-len", "500"], 4.0),
               (["--seq-len", "1000"], 4.0)],
    "copy": [(["--seq-len", "100"], 3.0), (["--seq-len", "200"], 3.0)],
    "digits": [([], 1.5), (["--permute"], 1.5)],
}


def run(task: str, cell: str, extra: list[str], minutes: float, root: Path) -> dict:
    name = "-".join([task, *[part.lstrip("-") for part in extra], cell])
    out = root / name
    command = ["rnnkit", "train", task, *CELLS[cell], *extra, "--max-minutes", str(minutes), "--out", str(out), "--overwrite"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=environment)
    record = {"task": task, "cell": cell, "options": extra, "minutes": minutes, "command": " ".join(command),
              "exit_status": result.returncode}
    if result.returncode == 0:
        summary = json.loads((out / "summary.json").read_text())
        record.update(test=summary["test"], baseline=summary["baseline"], steps=summary["steps"],
                      seconds=summary["elapsed_seconds"])
    else:
        record["error"] = result.stderr.strip().splitlines()[-1:]
    print(json.dumps(record), flush=True)
    return record


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", choices=[*GRIDS, "all"], default="all")
    parser.add_argument("--cells", default=",".join(CELLS), help="comma-separated subset of " + ",".join(CELLS))
    parser.add_argument("--settings", default="", help="only these settings of the grid, e.g. 'seq-len 200' (';'-separated)")
    parser.add_argument("--jobs", type=int, default=2, help="runs side by side (one thread each)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every run's budget")
    parser.add_argument("--root", default="runs/bench", help="folder of the run folders")
    parser.add_argument("--results", default="runs/bench/results.json")
    args = parser.parse_args()
    tasks = list(GRIDS) if args.grid == "all" else [args.grid]
    settings = {setting.strip() for setting in args.settings.split(";") if setting.strip()}
    jobs = [(task, cell, extra, minutes * args.scale) for task in tasks for extra, minutes in GRIDS[task]
            if not settings or " ".join(part.lstrip("-") for part in extra) in settings
            for cell in args.cells.split(",")]
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        records = list(pool.map(lambda job: run(*job, root), jobs))
    Path(args.results).write_text(json.dumps(records, indent=2))
    print(table(records))
    return 0 if all(record["exit_status"] == 0 for record in records) else 1


def table(records: list[dict]) -> str:
    lines = ["| task | options | cell | budget | steps | test loss | other test metrics | baseline loss |",
             "|---|---|---|---|---|---|---|---|"]
    for r in records:
        if r["exit_status"]:
            lines.append(f"| {r['task']} | {' '.join(r['options'])} | {r['cell']} | {r['minutes']} min | failed: {r['error']} |||")
            continue
        others = ", ".join(f"{k} {v:.3f}" for k, v in r["test"].items() if k != "loss")
        baseline = r["baseline"].get("loss")
        lines.append(f"| {r['task']} | {' '.join(r['options'])} | {r['cell']} | {r['minutes']:g} min | {r['steps']} | "
                     f"{r['test']['loss']:.4f} | {others} | {'' if baseline is None else f'{baseline:.4f}'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
