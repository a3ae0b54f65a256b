"""Eval harness: run one strategy over many problems (`run_eval`), or a size sweep (`run_sweep`).

Engine-level: any strategy, any task, any models (loaded once by the caller).  Each problem is
one `RunRequest` started through `search.request.launch`, the same pipeline as the CLI's `run`
and the app, so a knob is parsed and checked the same way everywhere.  Every number reported
is measured by the search's own spend counters, so strategies are compared at equal accounting.
Where the problems come from (held-out generators, JSONL, Game of 24) is the caller's business
(`cli/evaluate.py`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from search.batch import run_rows
from search.config import Budget
from search.models import Models
from search.registry import get_strategy
from search.request import LoadedModels, RunRequest, launch
from search.tasks.base import Problem

DEFAULT_SWEEP = ("greedy", "self_consistency", "best_of_n:answer_method=prm_vote", "best_of_n", "beam", "mcts")


@dataclass
class EvalSummary:
    strategy: str
    knobs: dict[str, Any]
    problems: int
    accuracy: float
    #: Share of problems whose tree holds a correct finished solution, chosen or not.  The gap to
    #: `accuracy` is what the answer rule lost; `found` itself is what growing the tree reached.
    found: float
    mean_tokens: float
    mean_prm_tokens: float
    mean_model_calls: float
    mean_seconds: float
    errors: int
    #: Tree nodes per problem (the root not counted), as the search's own spend counter reports them.
    mean_nodes: float = 0.0

    def as_row(self) -> dict[str, Any]:
        return dict(self.__dict__)


def run_eval(
    problems: Sequence[Problem],
    strategy: str,
    models: Models,
    knobs: Mapping[str, Any] | None = None,
    seed: int = 0,
    on_problem: Callable[[dict[str, Any]], None] | None = None,
    budget: Budget | None = None,
) -> tuple[EvalSummary, list[dict[str, Any]]]:
    """Run `strategy` on each problem; returns the summary and one row per problem.

    `knobs` are typed values or their text forms; every problem's request is checked before its
    search starts (ConfigError / ProblemError name the bad knob or problem).

    `budget` caps every problem's search alike (e.g. `max_tokens` = what best-of-16 spends), so
    strategies whose knobs do not map to tokens, such as MCTS's simulations, can be compared at
    equal generated tokens; a capped search answers from the tree it has.
    """
    get_strategy(strategy).make_config(dict(knobs or {}))  # a bad knob fails once, before any problem
    loader = LoadedModels(models)

    def one(i: int, problem: Problem) -> dict[str, Any]:
        started = time.monotonic()
        request = RunRequest(problem.text, task=problem.task, strategy=strategy, knobs=dict(knobs or {}),
                             reference=problem.answer, budget=budget or Budget(), seed=seed + i)
        result = launch(request, loader=loader).run()
        spent = result.spend or {}
        return {
            "index": i, "task": problem.task, "problem": problem.text, "reference": problem.answer,
            "answer": result.answer, "correct": bool(result.correct),
            "found": any(node.correct for node in result.tree.terminals()), "status": result.status,
            "tokens_generated": spent.get("tokens_generated", 0), "prm_tokens": spent.get("prm_tokens", 0),
            "model_calls": spent.get("model_calls", 0), "nodes": spent.get("nodes", 0),
            "seconds": round(time.monotonic() - started, 3), "error": result.error,
        }

    def failed(i: int, problem: Problem, error: str) -> dict[str, Any]:
        return {"index": i, "task": problem.task, "problem": problem.text, "reference": problem.answer,
                "answer": None, "correct": False, "found": False, "status": "failed", "tokens_generated": 0,
                "prm_tokens": 0, "model_calls": 0, "nodes": 0, "seconds": 0.0, "error": error}

    rows = run_rows(problems, one, failed, on_problem)
    return summarize(strategy, knobs or {}, rows), rows


def summarize(strategy: str, knobs: Mapping[str, Any], rows: Sequence[dict[str, Any]]) -> EvalSummary:
    def mean(key: str) -> float:
        return statistics.fmean(r[key] for r in rows) if rows else 0.0

    return EvalSummary(strategy, dict(knobs), len(rows), mean("correct"), mean("found"), mean("tokens_generated"),
                       mean("prm_tokens"), mean("model_calls"), mean("seconds"), sum(bool(r["error"]) for r in rows),
                       mean("nodes"))


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``best_of_n:answer_method=prm_vote,aggregation=min`` -> ("best_of_n", {...}), values typed."""
    name, _, rest = spec.partition(":")
    name = name.strip()
    pairs = [p for p in rest.split(",") if p.strip()]
    return name, get_strategy(name).config_cls.parse_pairs(pairs, name)


def size_knobs(strategy: str, size: int) -> dict[str, Any]:
    """The knobs that give `strategy` `size` chains / candidates / simulations (its spec's `scale`)."""
    scale = get_strategy(strategy).scale
    return scale(size) if scale else {}


def run_sweep(
    problems: Sequence[Problem],
    specs: Sequence[str],
    sizes: Sequence[int],
    models: Models,
    seed: int = 0,
    on_point: Callable[[EvalSummary], None] | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Accuracy and cost of each strategy spec at each size (a strategy without a scale, e.g. greedy: once).

    Each point is the spec, its `size` and the `EvalSummary` fields; `on_row` sees each point.
    Every spec is parsed and checked at every size before the first point runs; a failure inside
    one problem is recorded in that problem's row (`run_eval`) and counted in the point's `errors`.
    """
    for spec in specs:  # bad specs fail before any search
        name, extra = parse_spec(spec)
        scales = get_strategy(name).scale is not None
        for size in sizes if scales else sizes[:1]:
            get_strategy(name).make_config({**size_knobs(name, size), **extra})
    points = []
    for spec in specs:
        name, extra = parse_spec(spec)
        scales = get_strategy(name).scale is not None
        for size in sizes if scales else sizes[:1]:
            knobs = {**size_knobs(name, size), **extra}
            summary, _ = run_eval(problems, name, models, knobs, seed)
            points.append({"spec": spec, "size": size if scales else 1, **summary.as_row()})
            if on_row:
                on_row(points[-1])
            if on_point:
                on_point(summary)
    return points


