"""Sessions rebuilt from checkpoints: what generate, evaluate and inspect work on."""

from __future__ import annotations

from pathlib import Path

from rnnkit.config_files import apply_yaml
from rnnkit.errors import UserError
from rnnkit.tasks.base import Session, Task
from rnnkit.tasks.registry import TASKS, get_task
from rnnkit.train import distributed
from rnnkit.train.checkpoint import load_checkpoint


def restore_session(checkpoint_path: str, device_choice: str = "cpu") -> tuple[Task, Session]:
    """The task and a session holding the trained model of a run folder or checkpoint directory."""
    checkpoint = load_checkpoint(Path(checkpoint_path), with_training_state=False)
    saved = checkpoint.config
    if not isinstance(saved, dict) or saved.get("task") not in TASKS:
        raise UserError(f"checkpoint {checkpoint_path} names no known task ({saved.get('task') if isinstance(saved, dict) else saved!r})")
    task = get_task(saved["task"])
    config = apply_yaml(task.default_config(), saved, f"checkpoint {checkpoint_path}")
    device = distributed.select_device(device_choice, distributed.SINGLE_PROCESS)
    session = task.restore(config, checkpoint.task_state, device)
    try:
        session.model.load_state_dict(checkpoint.model)
    except RuntimeError as error:
        first = str(error).splitlines()[1].strip() if len(str(error).splitlines()) > 1 else str(error)
        raise UserError(f"checkpoint {checkpoint_path}: its weights do not match its configuration ({first})") from None
    return task, session
