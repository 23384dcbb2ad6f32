"""Sequence layers: the time loop, bidirectional composition, deep stacks and torch.nn drop-ins."""

from rnnkit.layers.bidirectional import MERGE_MODES, Bidirectional
from rnnkit.layers.recurrent import Recurrent
from rnnkit.sequences import reverse_padded
from rnnkit.layers.sequence_layer import SequenceLayer
from rnnkit.layers.state import apply_constraints, detach_state
from rnnkit.layers.torch_compatible import GRU, LSTM, RNN, IndRNN, JANET, TorchCompatibleRecurrent

__all__ = [
    "Bidirectional",
    "GRU",
    "IndRNN",
    "JANET",
    "LSTM",
    "MERGE_MODES",
    "RNN",
    "Recurrent",
    "SequenceLayer",
    "TorchCompatibleRecurrent",
    "apply_constraints",
    "detach_state",
    "reverse_padded",
]
