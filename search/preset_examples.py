"""The app's example for a preset: a problem whose search finds the answer that a greedy chain misses.

`find_example` runs the preset and greedy (same models, same `max_depth`) on candidate problems
and returns the first where the search's chosen answer is correct and greedy's is not; the exact
checker only grades the two finished runs.  `python cli.py pick-example game24-tot --write` stores
the pick in `models/nano/preset_examples.json`, next to the weights it was measured with, and the
app's Preset menu shows it (`example_for`); with new weights, run it again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from search.config import Budget
from search.models import Models
from search.presets import PRESETS, REPO, Preset, get_preset, greedy_knobs
from search.request import LoadedModels, RunRequest, launch
from search.tasks.base import Problem

EXAMPLES_FILE = REPO / "models" / "nano" / "preset_examples.json"


def read_examples(path: Path = EXAMPLES_FILE) -> dict[str, dict[str, Any]]:
    """preset name -> stored pick; {} when the file is missing or unreadable (the defaults apply)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def example_for(preset: Preset, path: Path = EXAMPLES_FILE) -> str | None:
    """The stored pick for `preset`, else a sibling's, else the preset's own example.

    Siblings are presets of the same task with the same default example (game24-tot, game24-mcts
    and game24-greedy): without a pick of its own a preset shows its sibling's pick, so switching
    between them keeps the one puzzle and a class sees greedy miss what the search found.
    """
    if preset.example is None:  # a preset without an example of its own never borrows one
        return None
    examples = read_examples(path)
    siblings = [other.name for other in PRESETS.values() if other.name != preset.name
                and other.task == preset.task and other.example == preset.example]
    for name in (preset.name, *siblings):
        stored = examples.get(name)
        problem = stored.get("problem") if isinstance(stored, dict) else None
        if isinstance(problem, str) and problem.strip():
            return problem
    return preset.example


def _run(problem: Problem, strategy: str, knobs: dict[str, Any], models: Models, seed: int, budget: Budget):
    request = RunRequest(problem.text, task=problem.task, strategy=strategy, knobs=knobs, reference=problem.answer,
                         seed=seed, budget=budget)
    return launch(request, loader=LoadedModels(models)).run()


def find_example(
    name: str,
    problems: Sequence[Problem],
    models: Models,
    *,
    seed: int = 0,
    budget: Budget | None = None,
    on_try: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any] | None:
    """The first problem where preset `name` answers correctly and greedy does not, or None.

    Returns {"preset", "problem", "seed", "search_answer", "greedy_answer", "nodes", "tokens_generated",
    "tried"}; `on_try` sees one such dict (with "search_correct" / "greedy_correct") per problem tried.
    Raises ConfigError for an unknown preset or knobs that do not fit its strategy.
    """
    preset = get_preset(name)
    depth = greedy_knobs(preset.knobs)
    for tried, problem in enumerate(problems, start=1):
        search = _run(problem, preset.strategy, dict(preset.knobs), models, seed, budget or Budget())
        greedy = _run(problem, "greedy", depth, models, seed, Budget()) if search.correct else None
        row = {
            "preset": name, "problem": problem.text, "seed": seed, "search_answer": search.answer,
            "greedy_answer": greedy.answer if greedy else None, "search_correct": bool(search.correct),
            "greedy_correct": bool(greedy and greedy.correct), "nodes": (search.spend or {}).get("nodes", 0),
            "tokens_generated": (search.spend or {}).get("tokens_generated", 0), "tried": tried,
        }
        if on_try:
            on_try(row)
        if row["search_correct"] and not row["greedy_correct"]:
            return {k: v for k, v in row.items() if k not in ("search_correct", "greedy_correct")}
    return None


def write_example(pick: dict[str, Any], models: dict[str, dict[str, Any]], path: Path = EXAMPLES_FILE) -> None:
    """Store `pick` (from `find_example`) with the models it was found with, keeping other presets' picks."""
    examples = read_examples(path)
    portable = {role: {key: _repo_relative(value) for key, value in info.items()} for role, info in models.items()}
    examples[pick["preset"]] = {**pick, "models": portable}
    path.write_text(json.dumps(examples, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def _repo_relative(value: Any) -> Any:
    """A path inside the repository as the preset writes it (``models/nano/value``), so the file is portable."""
    if not isinstance(value, str) or not Path(value).is_absolute():
        return value
    try:
        return Path(value).relative_to(REPO).as_posix()
    except ValueError:
        return value
