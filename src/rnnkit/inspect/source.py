"""What a task's session gives ``rnnkit inspect``: the layers to watch, held-out batches, and what a batch reads
at each step.

Every task's session has these three methods; ``inspectable`` refuses, in one line, a session
that has not (a task of your own that left them out).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from rnnkit.data.batch import Batch
from rnnkit.errors import UserError
from rnnkit.layers import Recurrent


@runtime_checkable
class Inspectable(Protocol):
    def recurrent_layers(self) -> Recurrent:
        """The recurrent layers inspect watches: the model's core (an encoder–decoder's encoder, which reads the
        source)."""

    def inspection_batch(self, size: int, length: int | None = None) -> Batch:
        """``size`` held-out sequences (``length`` steps where the task lets the caller decide)."""

    def step_labels(self, batch: Batch) -> list[str] | None:
        """What the first sequence of ``batch`` reads at each step, as text (a char LM's characters), or None."""


def inspectable(session, where: str) -> Inspectable:
    """``session`` if it can be inspected, else a UserError naming ``where`` it came from."""
    if not isinstance(session, Inspectable):
        raise UserError(f"{where}: this task's models cannot be inspected (no held-out batches for 'rnnkit inspect')")
    return session
