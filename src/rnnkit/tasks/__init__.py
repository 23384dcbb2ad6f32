"""The task registry (what ``rnnkit train TASK`` can train), the task contract and its commands."""

from rnnkit.tasks.base import CheckpointOptions, Command, RunConfig, Task
from rnnkit.tasks.from_checkpoint import TrainedModel, TrainedRun, load_run, read_trained_run, restore_session
from rnnkit.tasks.registry import DEFAULT_TASK, TASKS, get_task
from rnnkit.train.session import Monitor, Session

__all__ = [
    "DEFAULT_TASK",
    "TASKS",
    "CheckpointOptions",
    "Command",
    "Monitor",
    "RunConfig",
    "Session",
    "Task",
    "TrainedModel",
    "TrainedRun",
    "get_task",
    "load_run",
    "read_trained_run",
    "restore_session",
]
