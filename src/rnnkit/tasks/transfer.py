"""Starting a text model from a trained word-level language model (ULMFiT-style transfer, Howard & Ruder 2018).

``--init-from RUN`` reads a ``wordlm`` run and gives the new model its word embeddings and
recurrent weights before training. The vocabularies are merged: the new model knows the
words of its own training split and those of the language model, so a test word its split
never had still has the language model's embedding; words the language model lacks start
fresh. The language model reads left to right, so a bidirectional model gets its forward
direction; tensors whose shapes differ (a backward direction, a layer above a bidirectional
one) keep their fresh initialisation, and the message says which were copied.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch
from torch import nn

from rnnkit.data.vocabulary import PADDING, UNKNOWN, TokenVocabulary
from rnnkit.errors import UserError
from rnnkit.train.run_folder import load_trained_checkpoint

LANGUAGE_MODEL_TASK = "wordlm"


@dataclass
class LanguageModelWeights:
    path: str
    words: tuple[str, ...]  # the language model's vocabulary, index = row of ``embedding``
    embedding: torch.Tensor  # (V, E)
    recurrent: dict[str, torch.Tensor]  # its Recurrent's state_dict: layers.{i}.cell.{name}
    cell: str


def read_language_model(path: str) -> LanguageModelWeights:
    checkpoint = load_trained_checkpoint(path)
    task = checkpoint.config.get("task") if isinstance(checkpoint.config, dict) else None
    if task != LANGUAGE_MODEL_TASK:
        raise UserError(f"--init-from: {path} is a {task!r} run, not a word-level language model; train one with "
                        f"'rnnkit train {LANGUAGE_MODEL_TASK}' and pass its run folder")
    model = checkpoint.model
    recurrent = {name.removeprefix("rnn."): value for name, value in model.items() if name.startswith("rnn.")}
    return LanguageModelWeights(path, tuple(checkpoint.task_state["vocabulary"]), model["embedding.weight"],
                                recurrent, checkpoint.config["model"]["cell"])


def merge_vocabularies(own: TokenVocabulary, language_model: LanguageModelWeights) -> TokenVocabulary:
    """``own``'s tokens, then the language model's words it lacks (its own ids are kept)."""
    known = set(own.tokens)
    extra = [word for word in language_model.words if word not in known and word not in (PADDING, UNKNOWN)]
    return TokenVocabulary(own.tokens + tuple(extra))


def initialise_from_language_model(embedding: nn.Embedding, recurrent: nn.Module, vocabulary: TokenVocabulary,
                                   language_model: LanguageModelWeights, cell: str) -> None:
    """Copy the language model's rows into ``embedding`` and its recurrent weights into ``recurrent`` (in place)."""
    if cell != language_model.cell:
        raise UserError(f"--init-from: {language_model.path} is a {language_model.cell} language model; set --cell "
                        f"{language_model.cell} to start from it")
    if embedding.weight.shape[1] != language_model.embedding.shape[1]:
        raise UserError(f"--init-from: {language_model.path} has {language_model.embedding.shape[1]}-wide embeddings; set "
                        f"--embedding-size {language_model.embedding.shape[1]}")
    rows = {word: row for row, word in enumerate(language_model.words)}
    ids = [(i, rows[word]) for i, word in enumerate(vocabulary.tokens) if word in rows]
    with torch.no_grad():
        for i, row in ids:
            embedding.weight[i] = language_model.embedding[row]
        target = recurrent.state_dict()
        copied = []
        for name, value in language_model.recurrent.items():
            own = name if name in target else name.replace(".cell.", ".forward_layer.cell.")
            if own in target and target[own].shape == value.shape:
                target[own].copy_(value)
                copied.append(own)
    if not copied:
        raise UserError(f"--init-from: no recurrent weight of {language_model.path} fits this model; use its --hidden-size "
                        f"and --embedding-size")
    layers = sorted({name.split(".")[1] for name in copied})
    print(f"--init-from {language_model.path}: embeddings of {len(ids):,} of {len(vocabulary):,} words, recurrent "
          f"layer(s) {', '.join(layers)} ({len(copied)} of {len(target)} tensors)", file=sys.stderr)
