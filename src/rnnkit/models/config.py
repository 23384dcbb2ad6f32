"""Typed configuration of the recurrent core every task's model is built around."""

from __future__ import annotations

from dataclasses import dataclass

from rnnkit.cells import CELLS
from rnnkit.errors import UserError
from rnnkit.layers import MERGE_MODES, Recurrent

MERGE_MODE_NAMES = tuple("none" if mode is None else mode for mode in MERGE_MODES)


@dataclass
class RecurrentConfig:
    """The recurrent layers of a model (command-line options of every task)."""

    cell: str = "lstm"
    """Recurrent cell: rnn, lstm, gru, janet or indrnn."""
    hidden_size: int = 512
    """Units per layer and direction."""
    num_layers: int = 1
    """Stacked recurrent layers."""
    bidirectional: bool = False
    """Read sequences in both directions (not for models that predict the next token)."""
    merge_mode: str = "concat"
    """How bidirectional outputs combine: concat, sum, ave, mul, max or none."""
    dropout: float = 0.0
    """Dropout on the model's input embeddings, between recurrent layers and before its output layer."""
    layer_norm: bool = False
    """Layer-normalise gate pre-activations (lstm, gru, indrnn)."""
    recurrent_dropout: float = 0.0
    """Variational dropout on h_{t-1}, one mask per sequence."""
    zoneout: float = 0.0
    """Zoneout probability of every state unit."""
    weight_dropout: float = 0.0
    """DropConnect on the recurrent weights (AWD-LSTM)."""
    activation: str = "default"
    """The cell's activation φ: tanh or relu for rnn and indrnn (default: tanh for rnn, relu for indrnn);
    tanh, relu, sigmoid, hard_sigmoid or linear for lstm and gru (default tanh). janet takes none."""
    t_max: float = 0.0
    """janet and indrnn: the longest span to remember (chrono forget bias; |u| <= 2^(1/t_max)).
    0: the task's sequence length where it has one, else the cell's default."""

    def validate(self) -> None:
        if self.cell not in CELLS:
            raise UserError(f"--cell: expected one of {', '.join(CELLS)}, got {self.cell!r}")
        for name in ("hidden_size", "num_layers"):
            if getattr(self, name) <= 0:
                raise UserError(f"--{name.replace('_', '-')}: expected a positive integer, got {getattr(self, name)}")
        if self.merge_mode not in MERGE_MODE_NAMES:
            raise UserError(f"--merge-mode: expected one of {', '.join(MERGE_MODE_NAMES)}, got {self.merge_mode!r}")
        for name in ("dropout", "recurrent_dropout", "zoneout", "weight_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise UserError(f"--{name.replace('_', '-')}: expected a probability in [0, 1), got {getattr(self, name)}")
        cell = CELLS[self.cell]  # what each cell supports is declared by its class
        if self.activation != "default" and not cell.activations:
            raise UserError(f"--activation: the {self.cell} cell takes no activation; {_cells_with('activations')} do")
        if self.activation != "default" and self.activation not in cell.activations:
            choices = ", ".join(cell.activations)
            raise UserError(f"--activation: expected one of {choices} for {self.cell}, got {self.activation!r}")
        if self.t_max < 0 or 0 < self.t_max <= 1:
            raise UserError(f"--t-max: expected 0 (default) or a span longer than 1 step, got {self.t_max}")
        if self.layer_norm and not cell.supports_layer_norm:
            raise UserError(
                f"--layer-norm: the {self.cell} cell has no layer-normalised variant; use {_cells_with('supports_layer_norm')}"
            )

    def build(self, input_size: int, sequence_length: int | None = None) -> Recurrent:
        """The layers; ``sequence_length`` is the t_max of janet and indrnn when --t-max is 0."""
        options = {
            name: getattr(self, name)
            for name in ("recurrent_dropout", "zoneout", "weight_dropout", "layer_norm")
            if getattr(self, name)
        }
        if self.activation != "default":
            options["activation"] = self.activation
        t_max = self.t_max or sequence_length
        if t_max and CELLS[self.cell].supports_t_max:
            options["t_max"] = float(t_max)
        return Recurrent(
            self.cell,
            input_size,
            self.hidden_size,
            num_layers=self.num_layers,
            bidirectional=self.bidirectional,
            merge_mode=None if self.merge_mode == "none" else self.merge_mode,
            dropout=self.dropout if self.num_layers > 1 else 0.0,
            **options,
        )


def _cells_with(ability: str) -> str:
    """The names of the cells whose class has ``ability`` (a true class attribute), for messages."""
    names = [name for name, cell in CELLS.items() if getattr(cell, ability)]
    return ", ".join(names[:-1]) + " or " + names[-1]
