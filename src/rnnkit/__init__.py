"""rnnkit: recurrent neural networks on PyTorch — every textbook cell and topology, readable and verified.

The public API, re-exported here; implementation modules are not part of it.

    import rnnkit
    layer = rnnkit.Recurrent("gru", input_size=32, hidden_size=64, num_layers=2, bidirectional=True)
    lstm = rnnkit.LSTM(32, 64)          # drop-in for torch.nn.LSTM
"""

from rnnkit._checks import ArgumentError
from rnnkit.cells import (
    CELLS,
    GRUCell,
    IndRNNCell,
    JANETCell,
    LSTMCell,
    RecurrentCell,
    RecurrentNoise,
    RNNCell,
    get_cell_class,
)
from rnnkit.layers import (
    GRU,
    JANET,
    LSTM,
    MERGE_MODES,
    RNN,
    Bidirectional,
    IndRNN,
    Recurrent,
    SequenceLayer,
    TorchCompatibleRecurrent,
    apply_constraints,
    detach_state,
)

from rnnkit.explain import explain
from rnnkit.quantization import quantize_dynamic

__version__ = "0.1.0"


def __getattr__(name: str):
    # The package face exports layers, not tasks. The forecasting API lived here until the contracts issue; the
    # old spelling still works, with a warning naming the new one.
    if name == "RecurrentForecaster":
        import warnings

        warnings.warn("rnnkit.RecurrentForecaster moved: import it from rnnkit.tasks.forecast", DeprecationWarning,
                      stacklevel=2)
        from rnnkit.tasks.forecast import RecurrentForecaster

        return RecurrentForecaster
    raise AttributeError(f"module 'rnnkit' has no attribute {name!r}")

__all__ = [
    "ArgumentError",
    "CELLS",
    "GRU",
    "GRUCell",
    "IndRNN",
    "IndRNNCell",
    "JANET",
    "JANETCell",
    "LSTM",
    "LSTMCell",
    "MERGE_MODES",
    "RNN",
    "RNNCell",
    "Bidirectional",
    "Recurrent",
    "RecurrentCell",
    "RecurrentNoise",
    "SequenceLayer",
    "TorchCompatibleRecurrent",
    "apply_constraints",
    "detach_state",
    "explain",
    "get_cell_class",
    "quantize_dynamic",
]
