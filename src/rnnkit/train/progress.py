"""A live progress bar for the fit loop (tqdm): step, loss, units per second (characters, sentences), ETA."""

from __future__ import annotations

import sys

from tqdm import tqdm

from rnnkit.train.callbacks import Callback


class ProgressBar(Callback):
    """Progress is the fraction of the run's budget used, so the ETA holds for any kind of budget."""

    def __init__(self, unit: str) -> None:
        self.unit = unit  # the session's: what the training steps count
        self.bar: tqdm | None = None
        self.loss: float | None = None

    def on_start(self, trainer) -> None:
        self.bar = tqdm(total=1000, unit="‰", file=sys.stderr, dynamic_ncols=True, mininterval=0.5,
                        bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}")
        self.bar.update(int(trainer.progress() * 1000))

    def on_step(self, trainer, record: dict) -> None:
        if record["finite"]:
            self.loss = record["loss"] if self.loss is None else 0.9 * self.loss + 0.1 * record["loss"]
        rate = trainer.counters.units / trainer.counters.elapsed if trainer.counters.elapsed else 0.0
        self.bar.set_postfix_str(f"step {record['step']} loss {self.loss:.3f} {rate:,.0f} {self.unit}/s", refresh=False)
        self.bar.update(min(1000, int(trainer.progress() * 1000)) - self.bar.n)

    def on_evaluate(self, trainer, record: dict) -> None:
        metrics = {k: v for k, v in record.items() if k not in ("event", "step", "elapsed")}
        self.bar.write(f"step {record['step']}: {trainer.session.report(metrics)}", file=sys.stderr)

    def on_end(self, trainer, summary: dict) -> None:
        self.bar.close()

    def on_abort(self, trainer) -> None:
        if self.bar is not None:
            self.bar.close()
