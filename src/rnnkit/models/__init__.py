"""Models built around a recurrent core; each owns its loss."""

from rnnkit.models.config import RecurrentConfig
from rnnkit.models.generation import beam_search, sample
from rnnkit.models.language_model import LanguageModel, LanguageModelConfig
from rnnkit.models.sequence_model import SequenceModel

__all__ = ["LanguageModel", "LanguageModelConfig", "RecurrentConfig", "SequenceModel", "beam_search", "sample"]
