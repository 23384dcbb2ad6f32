"""The run folder: resolved configuration, metrics log, checkpoints and summary of one training run.

::

    runs/charlm-20261123-120000/
        config.yaml          the resolved configuration (rerun with --config)
        metrics.jsonl        one JSON object per logged step, evaluation and skipped step
        checkpoint.json      pointer to the latest checkpoint (see rnnkit.train.checkpoint)
        checkpoints/...
        best/                the best evaluation's model, with --keep-best (a checkpoint without training state)
        summary.json         final metrics, written when the run ends

An existing folder is never overwritten unless asked (--overwrite), and --resume
continues one. Only the main process writes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from rnnkit.errors import UserError
from rnnkit.train.checkpoint import Checkpoint, has_checkpoint, load_checkpoint, save_checkpoint
from rnnkit.train.files import atomic_write_json, atomic_write_text

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
BEST_FOLDER = "best"


class RunFolder:
    def __init__(self, path: Path, writer: bool = True) -> None:
        self.path = Path(path)
        self.writer = writer  # False on processes other than rank 0

    # ------------------------------------------------------------------ lifecycle
    def is_taken(self) -> bool:
        """Whether the folder exists with something in it."""
        return self.path.exists() and any(self.path.iterdir())

    def taken_error(self) -> UserError:
        return UserError(
            f"run folder {self.path} already exists: pass --resume to continue it, --overwrite to replace it, "
            "or --out to choose another folder"
        )

    def check_resumable(self) -> None:
        if not (self.path / CONFIG_FILE).is_file():
            raise UserError(f"--resume: {self.path} holds no run to resume (no {CONFIG_FILE}); drop --resume to start one")

    def create(self, config: dict) -> None:
        """Start a new run here, replacing what the folder held (the caller has checked --overwrite)."""
        if not self.writer:
            return
        if self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path / CONFIG_FILE, yaml.safe_dump(config, sort_keys=False))

    def saved_config(self) -> dict:
        try:
            return yaml.safe_load((self.path / CONFIG_FILE).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            raise UserError(f"--resume: cannot read {self.path / CONFIG_FILE} ({error}); start a new run") from None

    # ------------------------------------------------------------------ checkpoints
    def latest_checkpoint(self) -> Checkpoint | None:
        return load_checkpoint(self.path) if has_checkpoint(self.path) else None

    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        if self.writer:
            save_checkpoint(self.path, checkpoint)

    def save_best(self, checkpoint: Checkpoint) -> None:
        """Keep ``checkpoint``'s model as the best so far (--keep-best)."""
        if self.writer:
            save_checkpoint(self.path / BEST_FOLDER, checkpoint)

    def best_checkpoint(self) -> Checkpoint | None:
        return load_trained_checkpoint(self.path) if has_checkpoint(self.path / BEST_FOLDER) else None

    # ------------------------------------------------------------------ metrics
    def log(self, record: dict) -> None:
        if self.writer:
            with open(self.path / METRICS_FILE, "a", encoding="utf-8") as file:
                file.write(json.dumps(record) + "\n")

    def truncate_metrics(self, last_step: int) -> None:
        """Drop what a killed run logged after its last checkpoint, so a resumed log has no repeats."""
        path = self.path / METRICS_FILE
        if not self.writer or not path.exists():
            return
        kept = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by the kill
            if record.get("step", 0) <= last_step:
                kept.append(line)
        atomic_write_text(path, "".join(line + "\n" for line in kept))

    def write_summary(self, summary: dict) -> None:
        if self.writer:
            atomic_write_json(self.path / SUMMARY_FILE, summary)


def load_trained_checkpoint(path: str | Path) -> Checkpoint:
    """The model to use from a run folder (its best, where --keep-best kept one; else its latest), or from a
    checkpoint directory; without training state."""
    best = Path(path) / BEST_FOLDER
    return load_checkpoint(best if has_checkpoint(best) else Path(path), with_training_state=False)
