"""Typed configurations to and from YAML, checked field by field.

The YAML file mirrors the dataclasses: ``task``, then one mapping per group
(``model``, ``train``, ``dataset``). A run folder's ``config.yaml`` is such a file.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path

import yaml

from rnnkit.errors import UserError


def _accepts(annotation, value) -> bool:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_accepts(option, value) for option in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if typing.get_origin(annotation) is tuple:  # tuple[X, ...]: YAML writes it as a list
        return isinstance(value, (list, tuple)) and all(_accepts(typing.get_args(annotation)[0], v) for v in value)
    return isinstance(value, annotation)


def _fill(instance, values: dict, where: str):
    """A copy of dataclass ``instance`` with ``values`` set, after checking names and types."""
    if not isinstance(values, dict):
        raise UserError(f"{where}: expected a mapping of option names to values, got {type(values).__name__}")
    hints = typing.get_type_hints(type(instance))
    names = {f.name for f in dataclasses.fields(instance)}
    changes = {}
    for key, value in values.items():
        if key not in names:
            raise UserError(f"{where}: unknown option {key!r}; expected one of {', '.join(sorted(names))}")
        current = getattr(instance, key)
        if dataclasses.is_dataclass(current):
            changes[key] = _fill(current, value, f"{where}.{key}")
        elif not _accepts(hints[key], value):
            raise UserError(f"{where}.{key}: expected {getattr(hints[key], '__name__', hints[key])}, got {value!r}")
        else:
            changes[key] = float(value) if hints[key] is float else tuple(value) if isinstance(value, list) else value
    return dataclasses.replace(instance, **changes)


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"--config: {path} does not exist") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UserError(f"--config: {path} is not a readable YAML file ({detail})") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise UserError(f"--config: {path} must hold a mapping (task, model, train, dataset), got {type(values).__name__}")
    return values


def apply_yaml(default, values: dict, where: str):
    """``default`` (a task's RunConfig) updated with a YAML file's groups; ``task`` is checked by the caller."""
    values = {key: value for key, value in values.items() if key != "task"}
    return _fill(default, values, where)


def dump_yaml(values: dict) -> str:
    return yaml.safe_dump(values, sort_keys=False)
