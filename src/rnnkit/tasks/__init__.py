"""The task registry (what ``rnnkit train TASK`` can train) and the task contract."""

from rnnkit.tasks.base import RunConfig, Session, Task
from rnnkit.tasks.from_checkpoint import restore_session
from rnnkit.tasks.registry import TASKS, get_task

__all__ = ["TASKS", "RunConfig", "Session", "Task", "get_task", "restore_session"]
