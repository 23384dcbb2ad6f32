"""The task registry: what ``rnnkit train TASK`` can train. One entry per task; each task's commands are checked
against its session class here, once, when the registry is built."""

from rnnkit.errors import UserError
from rnnkit.tasks.adding import AddingTask
from rnnkit.tasks.base import Task, check_commands
from rnnkit.tasks.caption import CaptionTask
from rnnkit.tasks.charlm import CharLMTask
from rnnkit.tasks.chat import ChatTask
from rnnkit.tasks.copy import CopyTask
from rnnkit.tasks.digits import DigitsTask
from rnnkit.tasks.forecast import ForecastTask
from rnnkit.tasks.music import MusicTask
from rnnkit.tasks.recommend import RecommendTask
from rnnkit.tasks.ner import NERTask
from rnnkit.tasks.speech import SpeechTask
from rnnkit.tasks.sst import SSTTask
from rnnkit.tasks.translate import TranslateTask
from rnnkit.tasks.wordlm import WordLMTask


def registry(*tasks: Task) -> dict[str, Task]:
    """The tasks by name, each one's commands checked against what its session provides."""
    for task in tasks:
        check_commands(task)
    return {task.name: task for task in tasks}


TASKS: dict[str, Task] = registry(CharLMTask(), WordLMTask(), AddingTask(), CopyTask(), DigitsTask(), SSTTask(),
                                  NERTask(), TranslateTask(), ForecastTask(), MusicTask(), SpeechTask(),
                                  RecommendTask(), ChatTask(), CaptionTask())
DEFAULT_TASK = "charlm"  # what 'rnnkit train' trains without a task name: the main job of the README


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise UserError(f"unknown task {name!r}: expected one of {', '.join(TASKS)} (see 'rnnkit tasks')")
    return TASKS[name]
