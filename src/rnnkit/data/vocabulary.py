"""A character vocabulary: the sorted set of characters of a corpus, and the two mappings."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rnnkit.errors import UserError


@dataclass(frozen=True)
class CharVocabulary:
    characters: str  # every character once, sorted; index = token id

    @classmethod
    def from_text(cls, text: str) -> "CharVocabulary":
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.characters)

    def encode(self, text: str, where: str = "text") -> torch.Tensor:
        index = {character: i for i, character in enumerate(self.characters)}
        unknown = sorted(set(text) - index.keys())
        if unknown:
            shown = ", ".join(repr(c) for c in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
            raise UserError(
                f"{where} contains {len(unknown)} character(s) the model's vocabulary lacks ({shown}): "
                "use text written with the training corpus's characters"
            )
        return torch.tensor([index[c] for c in text], dtype=torch.long)

    def decode(self, ids) -> str:
        return "".join(self.characters[int(i)] for i in ids)
