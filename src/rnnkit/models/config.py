"""Typed configuration of the recurrent core every task's model is built around."""

from __future__ import annotations

from dataclasses import dataclass

from rnnkit.cells import CELLS
from rnnkit.errors import UserError
from rnnkit.layers import MERGE_MODES, Recurrent

MERGE_MODE_NAMES = tuple("none" if mode is None else mode for mode in MERGE_MODES)
CELLS_WITH_ACTIVATION = ("rnn", "indrnn")
CELLS_WITH_T_MAX = ("janet", "indrnn")


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
    """rnn and indrnn: tanh or relu (default: tanh for rnn, relu for indrnn)."""
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
        if self.activation != "default" and self.cell not in CELLS_WITH_ACTIVATION:
            raise UserError(f"--activation: only {' and '.join(CELLS_WITH_ACTIVATION)} take an activation, not {self.cell}")
        if self.activation not in ("default", "tanh", "relu"):
            raise UserError(f"--activation: expected tanh or relu, got {self.activation!r}")
        if self.t_max < 0 or 0 < self.t_max <= 1:
            raise UserError(f"--t-max: expected 0 (default) or a span longer than 1 step, got {self.t_max}")
        if self.layer_norm and self.cell not in ("lstm", "gru", "indrnn"):
            raise UserError(f"--layer-norm: the {self.cell} cell has no layer-normalised variant; use lstm, gru or indrnn")

    @property
    def output_size(self) -> int:
        both = self.bidirectional and self.merge_mode == "concat"
        return self.hidden_size * (2 if both else 1)

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
        if t_max and self.cell in CELLS_WITH_T_MAX:
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
