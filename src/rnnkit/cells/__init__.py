"""Recurrent cells: one time step each, one file per cell, and the CELLS registry.

A cell type is named once, here; layers, models and the command line look it up
through ``get_cell_class`` rather than branching on the name.
"""

from rnnkit._checks import ArgumentError
from rnnkit.cells.base import RecurrentCell, State
from rnnkit.cells.elman import RNNCell
from rnnkit.cells.gru import GRUCell
from rnnkit.cells.indrnn import IndRNNCell
from rnnkit.cells.janet import JANETCell
from rnnkit.cells.lstm import LSTMCell
from rnnkit.cells.noise import NO_NOISE, RecurrentNoise

CELLS: dict[str, type[RecurrentCell]] = {
    "rnn": RNNCell,
    "lstm": LSTMCell,
    "gru": GRUCell,
    "janet": JANETCell,
    "indrnn": IndRNNCell,
}


def get_cell_class(cell_type: str | type[RecurrentCell]) -> type[RecurrentCell]:
    """A cell class from its registered name (or a RecurrentCell subclass, returned as is)."""
    if isinstance(cell_type, type) and issubclass(cell_type, RecurrentCell):
        return cell_type
    if cell_type not in CELLS:
        raise ArgumentError(f"cell_type: expected one of {list(CELLS)} or a RecurrentCell subclass, got {cell_type!r}")
    return CELLS[cell_type]


__all__ = [
    "CELLS",
    "GRUCell",
    "IndRNNCell",
    "JANETCell",
    "LSTMCell",
    "NO_NOISE",
    "RNNCell",
    "RecurrentCell",
    "RecurrentNoise",
    "State",
    "get_cell_class",
]
