"""The task registry: what ``rnnkit train TASK`` can train. One entry per task."""

from rnnkit.errors import UserError
from rnnkit.tasks.base import RunConfig, Session, Task
from rnnkit.tasks.charlm import CharLMTask

TASKS: dict[str, Task] = {task.name: task for task in (CharLMTask(),)}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise UserError(f"unknown task {name!r}: expected one of {', '.join(TASKS)} (see 'rnnkit tasks')")
    return TASKS[name]


__all__ = ["TASKS", "RunConfig", "Session", "Task", "get_task"]
