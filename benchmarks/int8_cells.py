"""int8 (``rnnkit.quantize_dynamic``) against float for trained char LMs of any cell: speed and validation loss.

For each run folder: the cell, how ``quantize_dynamic`` held it (its report), and, float against
int8 in one process, round-robin:

* generation at batch 1 (one token per call, the state carried, greedy: what ``rnnkit generate``
  does), median µs per token over rounds of 50;
* reading the whole held-out text (16 streams in windows of 128, the state carried), seconds,
  and the validation loss in nats per character.

    python benchmarks/int8_cells.py --checkpoint runs/charlm-janet runs/charlm-lstm
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from rnnkit.export import GenerationStep
from rnnkit.quantization import quantize_dynamic
from rnnkit.tasks import load_run

from drop_in import validation_loss


def generation_seconds(models: dict, tokens: int) -> dict[str, float]:
    """Median seconds per greedy token of each model at batch 1, interleaved in rounds of 50."""
    steps = {name: GenerationStep(model).eval() for name, model in models.items()}
    carries = {name: step.example(steps=1, batch=1) for name, step in steps.items()}
    times = {name: [] for name in models}
    for _ in range(tokens // 50):
        for name, step in steps.items():
            start = time.perf_counter()
            carry = carries[name]
            for _ in range(50):
                logits, *state = step(*carry)
                carry = (logits.argmax(-1).reshape(1, 1), *state)
            carries[name] = carry
            times[name].append((time.perf_counter() - start) / 50)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", nargs="+", required=True, help="trained char LM run folders")
    parser.add_argument("--tokens", type=int, default=2000, help="generated tokens per model")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, quantized engine {torch.backends.quantized.engine}")
    for folder in args.checkpoint:
        run = load_run(folder)
        model = run.session.model.eval()
        quantized, report = quantize_dynamic(model)
        print(f"\n{folder}: {model.rnn.cells[0]}, {model.rnn.num_layers} layer(s)")
        print("  " + str(report).replace("\n", "\n  "))
        with torch.inference_mode():
            seconds = generation_seconds({"float": model, "int8": quantized}, args.tokens)
        print(f"  generation at batch 1, µs per token: float {seconds['float'] * 1e6:.0f}, int8 {seconds['int8'] * 1e6:.0f} "
              f"({seconds['float'] / seconds['int8']:.2f}x)")
        held_out, _ = run.session.held_out_tokens()
        losses, elapsed = {}, {}
        for name, candidate in (("float", model), ("int8", quantized)):
            start = time.perf_counter()
            losses[name] = validation_loss(candidate, held_out)
            elapsed[name] = time.perf_counter() - start
        print(f"  validation loss, nats/char: float {losses['float']:.4f}, int8 {losses['int8']:.4f} "
              f"({losses['int8'] - losses['float']:+.4f}); reading it: float {elapsed['float']:.1f} s, "
              f"int8 {elapsed['int8']:.1f} s ({elapsed['float'] / elapsed['int8']:.2f}x)")


if __name__ == "__main__":
    main()
