"""Task registry: name -> Task instance."""

from __future__ import annotations

from search.tasks.arith import ArithTask
from search.tasks.base import MAX_PROBLEM_CHARS, Problem, ProblemError, ReferenceAnswerError, Task
from search.tasks.countdown import CountdownTask
from search.tasks.freeform import FreeformTask

TASKS: dict[str, Task] = {task.name: task for task in (ArithTask(), CountdownTask(), FreeformTask())}
#: Tasks with a problem generator (eval's held-out sets).
GENERATING_TASKS: tuple[str, ...] = tuple(
    name for name, task in TASKS.items() if type(task).generate is not Task.generate
)


def get_task(name: str) -> Task:
    """Look a task up by name, with the list of valid names in the error."""
    try:
        return TASKS[name]
    except KeyError:
        raise ProblemError(f"Unknown task {name!r}; choose one of {', '.join(TASKS)}.") from None


__all__ = [
    "GENERATING_TASKS",
    "MAX_PROBLEM_CHARS",
    "TASKS",
    "Problem",
    "ProblemError",
    "ReferenceAnswerError",
    "Task",
    "get_task",
]
