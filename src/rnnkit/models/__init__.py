"""Models built around a recurrent core; each owns its loss and is called the same way (the model contract):

    outputs, loss, state = model(inputs, state, lengths=lengths, targets=targets, **extras)

``loss`` is None without ``targets``; ``state`` is what the model carries to its next call.
"""

from rnnkit.models.config import RecurrentConfig
from rnnkit.models.language_model import LanguageModel, LanguageModelConfig
from rnnkit.models.sampling import sample
from rnnkit.models.search import DecodingConfig, Hypothesis, beam_search
from rnnkit.models.sequence_model import SequenceModel

__all__ = ["DecodingConfig", "Hypothesis", "LanguageModel", "LanguageModelConfig", "RecurrentConfig", "SequenceModel",
           "beam_search", "sample"]
