"""A nest of tensors (tensors in tuples, lists and dicts) as a flat list plus a JSON description.

The trainer carries whatever state a session returns between batches: one LSTM's (h, c),
an encoder and a decoder state, a dict of them. A checkpoint stores the tensors flat, under
numbered names, and the structure as JSON, so that any nest comes back as it was.
"""

from __future__ import annotations

import torch

Spec = str | dict  # "tensor", {"tuple": [...]}, {"list": [...]}, {"dict": {key: spec}}


def flatten_nest(nest) -> tuple[Spec, list[torch.Tensor]]:
    """The nest's structure and its tensors in depth-first order."""
    if isinstance(nest, torch.Tensor):
        return "tensor", [nest]
    if isinstance(nest, (tuple, list)):
        specs, tensors = [], []
        for part in nest:
            spec, found = flatten_nest(part)
            specs.append(spec)
            tensors += found
        return {type(nest).__name__: specs}, tensors
    if isinstance(nest, dict):
        specs, tensors = {}, []
        for key, part in nest.items():
            if not isinstance(key, str):
                raise TypeError(f"state: dict keys must be strings to be saved, got {key!r}")
            specs[key], found = flatten_nest(part)
            tensors += found
        return {"dict": specs}, tensors
    raise TypeError(f"state: expected tensors in tuples, lists and dicts, got {type(nest).__name__}")


def unflatten_nest(spec: Spec, tensors: list[torch.Tensor]):
    """The nest ``flatten_nest`` described, rebuilt from its tensors."""
    remaining = iter(tensors)

    def build(spec):
        if spec == "tensor":
            return next(remaining)
        (kind, parts), = spec.items()
        if kind == "dict":
            return {key: build(part) for key, part in parts.items()}
        return (tuple if kind == "tuple" else list)(build(part) for part in parts)

    return build(spec)


def nest_size(spec: Spec) -> int:
    """The number of tensors in the nest ``spec`` describes."""
    if spec == "tensor":
        return 1
    (kind, parts), = spec.items()
    return sum(map(nest_size, parts.values() if kind == "dict" else parts))
