"""The task registry (what ``rnnkit train TASK`` can train), the task contract and its commands, and trained runs.

Each task is a folder holding its configuration, session and task-only commands (``charlm/``,
``translate/``, ...); what several tasks share sits beside them (``language_modelling.py``,
``fixed_sets.py``, ``labelled_files.py``, ``predict.py``).
"""

from rnnkit.tasks.base import CheckpointOptions, Command, RunConfig, Task
from rnnkit.tasks.registry import DEFAULT_TASK, TASKS, get_task
from rnnkit.tasks.runs import TrainedModel, TrainedRun, load_run, read_trained_run, restore_session
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
