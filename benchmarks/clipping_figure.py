"""Figure: the training loss of a tanh RNN on the adding problem with and without gradient clipping.

Trains the same model twice (same seed, same data) with ``rnnkit train``, once with
``--clip-grad-norm 0`` and once clipped, and plots loss and pre-clip gradient norm per
logged step from the runs' ``metrics.jsonl``:

    python benchmarks/clipping_figure.py --out docs/figures/clipping.png   # SGD lr 0.1, 1000 steps
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TRAIN = ["rnnkit", "train", "adding", "--cell", "rnn", "--activation", "tanh", "--hidden-size", "128",
         "--optimizer", "sgd", "--momentum", "0.9", "--schedule", "constant", "--seq-len", "100",
         "--max-minutes", "0", "--eval-every", "500", "--log-every", "5", "--max-nonfinite", "1000000"]


def train(root: Path, clip: float, steps: int, lr: float) -> list[dict]:
    out = root / f"clip-{clip:g}"
    command = [*TRAIN, "--lr", str(lr), "--max-steps", str(steps), "--clip-grad-norm", str(clip), "--out", str(out), "--overwrite"]
    print(" ".join(command), flush=True)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--clip", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=0.1, help="SGD learning rate")
    parser.add_argument("--root", default="runs/clipping")
    parser.add_argument("--out", default="docs/figures/clipping.png")
    args = parser.parse_args()
    runs = {"no clipping": train(Path(args.root), 0, args.steps, args.lr),
            f"clipped to norm {args.clip:g}": train(Path(args.root), args.clip, args.steps, args.lr)}
    figure, (loss_axes, norm_axes) = plt.subplots(1, 2, figsize=(10, 3.8))
    for label, records in runs.items():
        steps = [r for r in records if r["event"] == "train"]
        skipped = [r["step"] for r in records if r["event"] == "nonfinite"]
        loss_axes.plot([r["step"] for r in steps], [r["loss"] for r in steps], label=f"{label} ({len(skipped)} non-finite steps skipped)")
        norm_axes.plot([r["step"] for r in steps], [r["grad_norm"] for r in steps], label=label)
        print(f"{label}: final logged loss {steps[-1]['loss']:.4f}, max gradient norm {max(r['grad_norm'] for r in steps):.3g}, "
              f"non-finite steps {len(skipped)}")
    loss_axes.axhline(1 / 6, color="grey", linestyle="--", linewidth=1, label="baseline 1/6")
    loss_axes.set_yscale("log")
    loss_axes.set_xlabel("step")
    loss_axes.set_ylabel("training MSE (mean of 5 steps)")
    loss_axes.legend(fontsize=8)
    norm_axes.set_yscale("log")
    norm_axes.set_xlabel("step")
    norm_axes.set_ylabel("gradient norm before clipping")
    norm_axes.legend(fontsize=8)
    figure.suptitle(f"tanh RNN, adding problem T = 100, SGD lr {args.lr:g} momentum 0.9: the same run with and without clipping",
                    fontsize=10)
    figure.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=120)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
