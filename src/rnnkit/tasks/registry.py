"""The task registry: what ``rnnkit train TASK`` can train. One entry per task."""

from rnnkit.errors import UserError
from rnnkit.tasks.base import Task
from rnnkit.tasks.adding import AddingTask
from rnnkit.tasks.charlm import CharLMTask
from rnnkit.tasks.copy_memory import CopyTask
from rnnkit.tasks.digits import DigitsTask
from rnnkit.tasks.forecast import ForecastTask
from rnnkit.tasks.music import MusicTask
from rnnkit.tasks.ner import NERTask
from rnnkit.tasks.sst import SSTTask
from rnnkit.tasks.translate import TranslateTask
from rnnkit.tasks.wordlm import WordLMTask

TASKS: dict[str, Task] = {
    task.name: task for task in (CharLMTask(), WordLMTask(), AddingTask(), CopyTask(), DigitsTask(), SSTTask(), NERTask(),
                                        TranslateTask(), ForecastTask(), MusicTask())
}
DEFAULT_TASK = "charlm"  # what 'rnnkit train' trains without a task name: the main job of the README


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise UserError(f"unknown task {name!r}: expected one of {', '.join(TASKS)} (see 'rnnkit tasks')")
    return TASKS[name]

