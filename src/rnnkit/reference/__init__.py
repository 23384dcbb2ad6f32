"""NumPy forward passes and hand-written backpropagation through time, for reading and as a test oracle.

Each module (``rnn``, ``lstm``, ``gru``) is meant to be read next to its equations:
a ``forward`` that keeps what backward needs, and a ``backward`` that walks time from
T down to 1, one line per derivative. Shapes are time-major and batched: x (T, B, I),
h (T, B, H); parameters use torch.nn's names and layout (gates stacked along rows),
so the same numbers can be loaded into torch.nn / rnnkit and the gradients compared.

``loss.softmax_cross_entropy`` is the per-step loss of a character language model: it
returns the loss and dL/dh_t for every step, which is what ``backward`` consumes.

Not fast and not meant to be: rnnkit's layers are what you train with.
"""

from rnnkit.reference import gru, loss, lstm, rnn

__all__ = ["gru", "loss", "lstm", "rnn"]
