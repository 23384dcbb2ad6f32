"""Checkpoints: tensors in safetensors, everything else in JSON; written atomically, never unpickled.

Layout inside a run folder::

    checkpoint.json                      pointer: {"directory": "checkpoints/step-00000400", "step": 400}
    checkpoints/step-00000400/
        model.safetensors                the model's state_dict
        training.safetensors             optimiser tensors, RNG states, carried recurrent state
        state.json                       configuration, task metadata, counters, optimiser
                                         hyper-parameters, and the SHA-256 of both tensor files

A checkpoint is written into a temporary directory, renamed into place, and only then
published by atomically replacing ``checkpoint.json``; older checkpoint directories are
removed after that. A crash at any point leaves the previous checkpoint whole and
pointed to. Loading reads safetensors and JSON only, so a checkpoint from an untrusted
source cannot run code, and it verifies the recorded hashes, so truncation or corruption
is reported rather than loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from rnnkit.errors import UserError
from rnnkit.train.files import atomic_write_json, fsync_directory

POINTER = "checkpoint.json"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    config: dict  # the run's resolved configuration
    task_state: dict  # what the task needs to rebuild its model and data (e.g. the vocabulary)
    model: dict[str, torch.Tensor]
    training: dict = field(default_factory=dict)  # counters, positions, schedule state (JSON values)
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)  # RNG states, carried state
    optimizer: dict | None = None  # a torch optimizer state_dict

    @property
    def step(self) -> int:
        return int(self.training.get("step", 0))


# ----------------------------------------------------------------------------- optimiser state <-> files
def _split_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """A torch optimizer state_dict as (tensors for safetensors, JSON-able rest)."""
    tensors, scalars = {}, {}
    for parameter_id, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{parameter_id}.{key}"] = value
            else:
                scalars.setdefault(str(parameter_id), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _join_optimizer(tensors: dict[str, torch.Tensor], rest: dict) -> dict:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, parameter_id, key = name.split(".", 2)
            state.setdefault(int(parameter_id), {})[key] = value
    for parameter_id, values in rest["scalars"].items():
        state.setdefault(int(parameter_id), {}).update(values)
    return {"state": state, "param_groups": rest["param_groups"]}


# ----------------------------------------------------------------------------- writing
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Write ``tensors``; safetensors stores no aliases, so a tensor sharing memory with one already
    written (tied input and output embeddings) is written as a copy, and loading ties nothing back:
    ``load_state_dict`` copies both entries into the one shared parameter."""
    written, plain = set(), {}
    for name, value in tensors.items():
        value = value.detach().contiguous().cpu()
        storage = value.untyped_storage().data_ptr()
        plain[name] = value.clone() if storage in written else value
        written.add(storage)
    save_file(plain, str(path))
    with open(path, "rb+") as file:
        os.fsync(file.fileno())


def save_checkpoint(run_directory: Path, checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` into ``run_directory`` and point ``checkpoint.json`` at it."""
    run_directory = Path(run_directory)
    parent = run_directory / "checkpoints"
    parent.mkdir(parents=True, exist_ok=True)
    name = f"step-{checkpoint.step:08d}"
    temporary = parent / f".{name}.tmp-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()

    training_tensors = dict(checkpoint.tensors)
    optimizer_rest = None
    if checkpoint.optimizer is not None:
        optimizer_tensors, optimizer_rest = _split_optimizer(checkpoint.optimizer)
        training_tensors.update(optimizer_tensors)
    _save_tensors(checkpoint.model, temporary / "model.safetensors")
    _save_tensors(training_tensors, temporary / "training.safetensors")
    state = {
        "format": FORMAT_VERSION,
        "config": checkpoint.config,
        "task_state": checkpoint.task_state,
        "training": checkpoint.training,
        "optimizer": optimizer_rest,
        "sha256": {file: _sha256(temporary / file) for file in ("model.safetensors", "training.safetensors")},
    }
    atomic_write_json(temporary / "state.json", state)

    final = parent / name
    if final.exists():  # left by a run killed after the rename but before publishing; never pointed to
        shutil.rmtree(final)
    os.replace(temporary, final)
    fsync_directory(parent)
    atomic_write_json(run_directory / POINTER, {"directory": f"checkpoints/{name}", "step": checkpoint.step})
    for old in parent.iterdir():
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return final


# ----------------------------------------------------------------------------- reading
def has_checkpoint(run_directory: Path) -> bool:
    return (Path(run_directory) / POINTER).is_file()


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"checkpoint is incomplete: {path} is missing; resume from another run or retrain") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"checkpoint is corrupted: {what} {path} is not valid JSON ({error}); retrain or use another checkpoint") from None


def checkpoint_directory(path: Path) -> Path:
    """The checkpoint directory that ``path`` names: a run folder (via its pointer) or a checkpoint directory."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"checkpoint {path} does not exist: pass a run folder written by 'rnnkit train'")
    if (path / "state.json").is_file():
        return path
    if not (path / POINTER).is_file():
        raise UserError(f"no checkpoint in {path}: expected {path / POINTER}, which 'rnnkit train' writes at each evaluation")
    pointer = _read_json(path / POINTER, "pointer")
    if not isinstance(pointer, dict) or not isinstance(pointer.get("directory"), str):
        raise UserError(f"checkpoint is corrupted: {path / POINTER} does not name a checkpoint directory")
    return path / pointer["directory"]


def _load_tensors(path: Path, expected_sha256: str) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise UserError(f"checkpoint is incomplete: {path} is missing; retrain or use another checkpoint")
    if _sha256(path) != expected_sha256:
        raise UserError(f"checkpoint file {path} is truncated or corrupted (its SHA-256 differs from the one recorded); retrain or use another checkpoint")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise UserError(f"checkpoint file {path} cannot be read ({error}); retrain or use another checkpoint") from None


def load_checkpoint(path: Path, with_training_state: bool = True) -> Checkpoint:
    """Read a checkpoint (a run folder or a checkpoint directory) without unpickling anything."""
    directory = checkpoint_directory(path)
    state = _read_json(directory / "state.json", "state file")
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise UserError(f"checkpoint {directory} has an unknown format (expected format {FORMAT_VERSION}); it was not written by this rnnkit")
    hashes = state.get("sha256", {})
    model = _load_tensors(directory / "model.safetensors", hashes.get("model.safetensors", ""))
    checkpoint = Checkpoint(config=state["config"], task_state=state["task_state"], model=model, training=state["training"])
    if with_training_state:
        tensors = _load_tensors(directory / "training.safetensors", hashes.get("training.safetensors", ""))
        if state.get("optimizer") is not None:
            checkpoint.optimizer = _join_optimizer(tensors, state["optimizer"])
        checkpoint.tensors = {name: value for name, value in tensors.items() if not name.startswith("optimizer.")}
    return checkpoint
