"""Per-character latency of generation: what ``rnnkit generate`` does, at batch 1.

``rnnkit generate`` samples one character at a time: each is one step of the recurrence
through every layer, then the output layer and a draw (``rnnkit.models.sampling.sample``).
The same sampling loop drives two models with the same weights:

* ``rnnkit``: the char-level ``LanguageModel`` as ``rnnkit train`` builds it;
* ``native``: the same embedding and output layer around ``torch.nn.LSTM/GRU/RNN``, stepped
  one character at a time (None for cells PyTorch does not have).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rnnkit.bench.measure import NATIVE, round_robin
from rnnkit.models.sampling import sample
from rnnkit.models.language_model import LanguageModel, LanguageModelConfig

VOCABULARY = 65  # Tiny Shakespeare's characters


@dataclass(frozen=True)
class GenerationShape:
    layers: int = 2
    hidden: int = 512
    characters: int = 200  # generated per timed call


class _NativeLanguageModel(nn.Module):
    """``LanguageModel``'s embedding and output layer around a torch.nn recurrent layer, with its weights."""

    def __init__(self, cell: str, model: LanguageModel) -> None:
        super().__init__()
        config = model.config
        self.embedding, self.head = model.embedding, model.head
        self.rnn = NATIVE[cell](config.embedding_size, config.hidden_size, config.num_layers)
        with torch.no_grad():
            for layer, rnnkit_cell in enumerate(model.rnn.cells):
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(self.rnn, f"{name}_l{layer}").copy_(getattr(rnnkit_cell, name))

    def forward(self, tokens: torch.Tensor, state=None):
        if isinstance(state, tuple) and len(state) == 1:
            state = state[0]
        hidden, state = self.rnn(self.embedding(tokens), state)
        return self.head(hidden), None, state if isinstance(state, tuple) else (state,)


def measure_generation(cell: str, shape: GenerationShape, repeats: int) -> dict:
    """The JSON record: seconds per generated character of rnnkit and of torch.nn stepping."""
    torch.manual_seed(0)
    config = LanguageModelConfig(cell=cell, hidden_size=shape.hidden, num_layers=shape.layers)
    model = LanguageModel(VOCABULARY, config).eval()
    prime = torch.tensor([0])
    calls = {"rnnkit": lambda: sample(model, prime, shape.characters, generator=torch.Generator().manual_seed(0))}
    if cell in NATIVE:
        native = _NativeLanguageModel(cell, model).eval()
        calls["native"] = lambda: sample(native, prime, shape.characters, generator=torch.Generator().manual_seed(0))
    seconds = {name: value / shape.characters for name, value in round_robin(calls, repeats).items()}
    seconds.setdefault("native", None)
    ratio = None if seconds["native"] is None else seconds["rnnkit"] / seconds["native"]
    return {
        "cell": cell,
        "mode": "generate",
        "model": {"layers": shape.layers, "hidden": shape.hidden, "vocabulary": VOCABULARY, "batch": 1},
        "characters": shape.characters,
        "seconds_per_character": seconds,
        "ratio_to_native": ratio,
    }


def generation_row(record: dict) -> str:
    seconds = record["seconds_per_character"]
    native = "-" if seconds["native"] is None else f"{seconds['native'] * 1e6:.0f}"
    ratio = "-" if record["ratio_to_native"] is None else f"{record['ratio_to_native']:.2f}"
    model = record["model"]
    return (f"{record['cell']:<7}{model['layers']}x{model['hidden']:<10}{seconds['rnnkit'] * 1e6:>12.0f}{native:>10}{ratio:>9}")


GENERATION_HEADER = f"{'cell':<7}{'model':<12}{'rnnkit µs/ch':>12}{'native':>10}{'/native':>9}"
