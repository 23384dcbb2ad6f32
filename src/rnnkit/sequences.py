"""Helpers for padded batches of variable-length sequences (time-major: (T, B, ...)), shared by layers and kernels.

Padding always stays at the end of each sequence, also when a sequence is reversed
(the ``flip_sequences`` habit of Flax): a backward direction then starts at each
sequence's own last real step, never at its padding.

This module sits below ``layers`` and ``kernels`` (it imports neither), so that both can use it
and kernels never import layers.
"""

from __future__ import annotations

from typing import Sequence

import torch

from rnnkit._checks import ArgumentError, shape_error


def check_lengths(
    lengths: torch.Tensor | Sequence[int] | None, batch_size: int, max_time: int
) -> torch.Tensor | None:
    """``lengths`` as a 1-D int64 CPU tensor, after checking it fits a (T, B) batch. Any order is fine."""
    if lengths is None:
        return None
    if not isinstance(lengths, torch.Tensor):
        try:
            lengths = torch.as_tensor(lengths)
        except (TypeError, ValueError, RuntimeError) as error:
            raise TypeError(f"lengths: expected a 1-D tensor or list of ints, got {type(lengths).__name__}") from error
    if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
        raise TypeError(f"lengths: expected integer lengths, got dtype {lengths.dtype}")
    if lengths.dim() != 1 or lengths.shape[0] != batch_size:
        raise shape_error("lengths", f"(B={batch_size},)", lengths.shape, "one length per sequence of the batch")
    lengths = lengths.to(device="cpu", dtype=torch.int64)
    if batch_size == 0:
        return None  # no sequence to mask
    if torch.compiler.is_compiling():
        return lengths  # their values are not known while tracing; the same call run eagerly checks them
    shortest, longest = int(lengths.min()), int(lengths.max())
    if shortest < 1 or longest > max_time:
        raise ArgumentError(
            f"lengths: every length must be in [1, T={max_time}], got values from {shortest} to {longest}"
        )
    return lengths


def step_mask(lengths: torch.Tensor, max_time: int, device: torch.device) -> torch.Tensor:
    """(T, B) boolean mask, True where step t is a real step of sequence b."""
    steps = torch.arange(max_time, device=device).unsqueeze(1)  # (T, 1)
    return steps < lengths.to(device).unsqueeze(0)  # (T, B)


def reverse_padded(sequences: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Reverse each sequence of (T, B, ...) within its own length, keeping padding at the end.

    Reversing twice gives back the input.
    ::

        lengths = [3, 2]      a b c .        c b a .
                              d e . .   ->   e d . .
    """
    if lengths is None:
        return sequences.flip(0)
    max_time = sequences.shape[0]
    steps = torch.arange(max_time).unsqueeze(1)  # (T, 1)
    lengths = lengths.cpu().unsqueeze(0)  # (1, B)
    source = torch.where(steps < lengths, lengths - 1 - steps, steps)  # (T, B)
    source = source.to(sequences.device)
    source = source.reshape(source.shape + (1,) * (sequences.dim() - 2)).expand_as(sequences)
    return sequences.gather(0, source)
