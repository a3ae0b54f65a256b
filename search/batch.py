"""Batch input read and checked whole before any search, and batch loops that survive one bad problem.

Why: an eval over a JSONL file used to run the first problem, then stop on line 2 with the
task's message (no line number) and write nothing.  `read_problems_jsonl` reads every line,
validates each problem (`Task.validate`) and its answer (`Task.parse_reference`) and raises one
`BatchInputError` listing every bad line by number before any model is touched.
`run_rows` then runs the problems one by one: a failure inside one problem's search becomes
that problem's row (with its error) and the batch goes on; `RowsFile` rewrites the results
file after every problem, so what finished is on disk even after Ctrl-C.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from search.tasks import ProblemError, get_task
from search.tasks.base import Problem

T = TypeVar("T")
#: How many bad lines a BatchInputError spells out (the rest are counted).
MAX_LISTED = 20


class BatchInputError(ValueError):
    """Batch input with bad entries; `problems` holds one ``"line N: why"`` sentence per bad entry."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source, self.problems = source, list(problems)
        listed = "\n  ".join(self.problems[:MAX_LISTED])
        more = f"\n  ... and {len(self.problems) - MAX_LISTED} more" if len(self.problems) > MAX_LISTED else ""
        count = f"{len(self.problems)} bad entr{'y' if len(self.problems) == 1 else 'ies'}"
        super().__init__(f"{source}: {count}; nothing was run.\n  {listed}{more}")


def problem_from_row(row: object, default_task: str) -> Problem:
    """One JSONL row ``{"task"?, "problem", "answer"?}`` as a validated Problem.

    The answer may be text or a JSON number; it is read by the task's `parse_reference`.
    Raises ProblemError (or its ReferenceAnswerError) with the reason.
    """
    if not isinstance(row, Mapping):
        raise ProblemError(f'expected a JSON object like {{"problem": ..., "answer": ...}}, got {type(row).__name__}')
    task_name = row.get("task", default_task)
    if not isinstance(task_name, str):
        raise ProblemError(f"task must be a name like 'arith', got {task_name!r}")
    task = get_task(task_name)
    text = row.get("problem")
    if not isinstance(text, str):
        raise ProblemError('missing "problem" text' if text is None else f'"problem" must be text, got {text!r}')
    text = task.validate(text)
    return Problem(task.name, text, task.parse_reference(row.get("answer"), text))


def read_problems_jsonl(path: str | os.PathLike[str], default_task: str = "arith") -> list[Problem]:
    """Every problem of a JSONL file, all validated first; BatchInputError lists every bad line.

    Blank lines are skipped; a file without any problem, or one that cannot be read as UTF-8
    text, is refused too.
    """
    where = Path(path)
    try:
        lines = where.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BatchInputError(str(where), [f"cannot be read: {exc}"]) from None
    problems, bad = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            problems.append(problem_from_row(json.loads(line), default_task))
        except json.JSONDecodeError as exc:
            bad.append(f"line {number}: not JSON ({exc.msg} at column {exc.colno})")
        except ProblemError as exc:
            bad.append(f"line {number}: {exc}")
    if not problems and not bad:
        bad.append("no problems: the file is empty")
    if bad:
        raise BatchInputError(str(where), bad)
    return problems


def run_rows(
    items: Sequence[T],
    run_one: Callable[[int, T], dict[str, Any]],
    failed_row: Callable[[int, T, str], dict[str, Any]],
    on_row: Callable[[dict[str, Any]], None] | None = None,
    stop: threading.Event | None = None,
) -> list[dict[str, Any]]:
    """`run_one(i, item)` for each item; an exception inside one becomes `failed_row(i, item, error)`.

    KeyboardInterrupt is not caught: it ends the batch, and `on_row` (e.g. `RowsFile.add`) has
    already saved every finished row.  Once `stop` is set no further item starts (the app's Stop).
    """
    rows: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if stop is not None and stop.is_set():
            break
        try:
            row = run_one(index, item)
        except Exception as exc:  # noqa: BLE001 - one problem's failure is recorded in its row
            row = failed_row(index, item, f"{type(exc).__name__}: {exc}")
        rows.append(row)
        if on_row:
            on_row(row)
    return rows


class RowsFile:
    """A results file rewritten (atomically) after every row: CSV for ``.csv``, JSON otherwise."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        write_rows_atomic(self.path, self.rows)


def write_rows_atomic(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Write rows to `path` through a temporary file and a rename, so a reader never sees half a file."""
    rows = list(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    if path.suffix == ".csv":
        fields = list(dict.fromkeys(key for row in rows for key in row)) or ["index"]
        with partial.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
    else:
        partial.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    os.replace(partial, path)


@contextmanager
def interrupt_keeps(saved: RowsFile) -> Iterator[None]:
    """Turn Ctrl-C into a sentence on stderr saying how many rows were kept and where, then exit 130."""
    try:
        yield
    except KeyboardInterrupt:
        kept = f"{len(saved.rows)} finished row(s) are saved in {saved.path}" if saved.rows else "nothing was written"
        print(f"interrupted: {kept}.", file=sys.stderr)
        raise SystemExit(130) from None
