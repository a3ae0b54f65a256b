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
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from search.batch import run_rows
from search.config import Budget, StrategyConfig
from search.models import Models
from search.redecide import redecide_grid, uses_aggregation
from search.registry import get_strategy
from search.request import LoadedModels, Recording, RunRequest, RunStore, launch
from search.tasks.base import Problem
from search.tree import Tree

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


@dataclass(frozen=True)
class EvalRecording:
    """Save each problem's search as a run (the app's sweeps; the CLI's `eval` and `sweep` save none).

    `open_store()` returns the run store (`search.request.RunStore`, e.g. `storage.Store`; None:
    unsaved), called once per problem as `launch` does; `name` starts each run's name (the problem's
    number follows); `models_info` is what each run record says about the models (name, path, hash).
    """

    open_store: Callable[[], RunStore | None]
    name: str = "eval"
    models_info: Mapping[str, dict[str, Any]] = field(default_factory=dict)


def run_eval(
    problems: Sequence[Problem],
    strategy: str,
    models: Models,
    knobs: Mapping[str, Any] | None = None,
    seed: int = 0,
    on_problem: Callable[[dict[str, Any]], None] | None = None,
    budget: Budget | None = None,
    record: EvalRecording | None = None,
    stop: threading.Event | None = None,
    answer_rules: bool = False,
) -> tuple[EvalSummary, list[dict[str, Any]]]:
    """Run `strategy` on each problem; returns the summary and one row per problem.

    `knobs` are typed values or their text forms; every problem's request is checked before its
    search starts (ConfigError / ProblemError name the bad knob or problem).

    `budget` caps every problem's search alike (e.g. `max_tokens` = what best-of-16 spends), so
    strategies whose knobs do not map to tokens, such as MCTS's simulations, can be compared at
    equal generated tokens; a capped search answers from the tree it has.

    `record` saves each search as a run; each row then also holds its `run_id` (None when the
    store gave none).  `stop` cancels the search in flight (its row says ``cancelled``) and starts
    no further problem, so the rows cover only the problems reached.

    `answer_rules` also re-decides each finished tree under every answer rule x aggregation its
    strategy allows (`search.redecide`, no model call): the row's ``rules`` maps a rule name
    (`rule_name`) to whether it would have answered correctly; `rules_table` totals them.
    """
    get_strategy(strategy).make_config(dict(knobs or {}))  # a bad knob fails once, before any problem
    loader = LoadedModels(models, record.models_info if record else {})

    def one(i: int, problem: Problem) -> dict[str, Any]:
        started = time.monotonic()
        saving = Recording(enabled=True, name=_run_name(record.name, i)) if record else Recording(False)
        request = RunRequest(problem.text, task=problem.task, strategy=strategy, knobs=dict(knobs or {}),
                             reference=problem.answer, budget=budget or Budget(), seed=seed + i, recording=saving)
        launched = launch(request, loader=loader, open_store=record.open_store if record else None)
        result = launched.run(stop=stop)
        spent = result.spend or {}
        row = {
            "index": i, "task": problem.task, "problem": problem.text, "reference": problem.answer,
            "answer": result.answer, "correct": bool(result.correct),
            "found": any(node.correct for node in result.tree.terminals()), "status": result.status,
            "tokens_generated": spent.get("tokens_generated", 0), "prm_tokens": spent.get("prm_tokens", 0),
            "model_calls": spent.get("model_calls", 0), "nodes": spent.get("nodes", 0),
            "seconds": round(time.monotonic() - started, 3), "error": result.error,
        }
        if record:
            row["run_id"] = getattr(launched.recorder, "run_id", None)
        if answer_rules:
            row["rules"] = rule_outcomes(result.tree) if result.error is None else {}
        return row

    def failed(i: int, problem: Problem, error: str) -> dict[str, Any]:
        row = {"index": i, "task": problem.task, "problem": problem.text, "reference": problem.answer,
               "answer": None, "correct": False, "found": False, "status": "failed", "tokens_generated": 0,
               "prm_tokens": 0, "model_calls": 0, "nodes": 0, "seconds": 0.0, "error": error}
        return {**row, "run_id": None} if record else row

    rows = run_rows(problems, one, failed, on_problem, stop)
    return summarize(strategy, knobs or {}, rows), rows


def rule_name(rule: str, aggregation: str) -> str:
    """``most_visits`` for a rule that ignores the aggregation, else ``argmax/min``."""
    return rule if aggregation == "–" else f"{rule}/{aggregation}"


def own_rule(config: StrategyConfig) -> str:
    """The `rule_name` of the answer rule a run with `config` uses (``argmax/prod``, ``most_visits``)."""
    method = config.answer_method
    return rule_name(method, config.aggregation if uses_aggregation(config, method) else "–")


def rule_outcomes(tree: Tree) -> dict[str, bool]:
    """Whether each answer rule x aggregation would have chosen a correct answer on this finished tree.

    Keys are `rule_name`s; a rule the task cannot grade (None) counts as wrong.  No model runs
    (`search.redecide.redecide_grid` reads the scores stored in the tree).
    """
    return {rule_name(row["rule"], row["aggregation"]): bool(row["correct"]) for row in redecide_grid(tree)}


def rules_table(rows: Sequence[Mapping[str, Any]], own: str | None = None) -> list[dict[str, Any]]:
    """Accuracy of every answer rule over the eval's rows (those with ``rules``), best first.

    Rows: {"answer rule", "accuracy", "problems", "used"}; accuracy is a share (0-1) of the problems
    that carry ``rules`` (a failed search carries none and is left out); "used" marks `own`, the rule
    the eval ran with (`own_rule`).  Empty when no row carries ``rules``.
    """
    graded = [r["rules"] for r in rows if r.get("rules")]
    names = list(dict.fromkeys(name for rules in graded for name in rules))
    table = [{"answer rule": name, "accuracy": round(sum(rules.get(name, False) for rules in graded) / len(graded), 4),
              "problems": len(graded), "used": "◀ this run's" if name == own else ""} for name in names]
    return sorted(table, key=lambda row: -row["accuracy"])


def _run_name(prefix: str, index: int) -> str:
    """``<prefix> · problem <index + 1>``, the prefix shortened so the name fits a run's 200 characters."""
    tail = f" · problem {index + 1}"
    return (prefix if len(prefix) + len(tail) <= 200 else prefix[: 199 - len(tail)] + "…") + tail


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


@dataclass(frozen=True)
class SweepPoint:
    """One point a sweep will measure: the spec as written, its strategy, the size and the knobs."""

    spec: str
    strategy: str
    size: int
    knobs: dict[str, Any]


def sweep_plan(specs: Sequence[str], sizes: Sequence[int]) -> list[SweepPoint]:
    """Every point of a sweep in run order: each spec at each size (a strategy without a scale,
    e.g. greedy, once at size 1).  Every spec is parsed and checked at every size here, so a bad
    spec or an impossible size raises ConfigError before any search."""
    plan = []
    for spec in specs:
        name, extra = parse_spec(spec)
        scales = get_strategy(name).scale is not None
        for size in sizes if scales else sizes[:1]:
            knobs = {**size_knobs(name, size), **extra}
            get_strategy(name).make_config(knobs)
            plan.append(SweepPoint(spec, name, size if scales else 1, knobs))
    return plan


def run_sweep(
    problems: Sequence[Problem],
    specs: Sequence[str],
    sizes: Sequence[int],
    models: Models,
    seed: int = 0,
    on_point: Callable[[EvalSummary], None] | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    on_problem: Callable[[dict[str, Any]], None] | None = None,
    record: EvalRecording | None = None,
    stop: threading.Event | None = None,
) -> list[dict[str, Any]]:
    """Accuracy and cost of each strategy spec at each size (a strategy without a scale, e.g. greedy: once).

    Each point is the spec, its `size` and the `EvalSummary` fields; `on_row` sees each point,
    `on_problem` each problem's row (`run_eval`).  Every spec is parsed and checked at every size
    before the first point runs (`sweep_plan`); a failure inside one problem is recorded in that
    problem's row and counted in the point's `errors`.  With `record`, every search is saved as a
    run and each point also lists its `run_ids` (one per problem, in problem order).  Once `stop`
    is set the point in flight is dropped (it did not cover every problem) and no further starts:
    the points returned are the finished ones.
    """
    plan = sweep_plan(specs, sizes)  # bad specs fail before any search
    points = []
    for item in plan:
        saving = replace(record, name=f"{record.name} · {item.spec} @ {item.size}") if record else None
        summary, rows = run_eval(problems, item.strategy, models, item.knobs, seed, on_problem=on_problem,
                                 record=saving, stop=stop)
        if stop is not None and stop.is_set():
            break
        points.append({"spec": item.spec, "size": item.size, **summary.as_row()})
        if record:
            points[-1]["run_ids"] = [row["run_id"] for row in rows]
        if on_row:
            on_row(points[-1])
        if on_point:
            on_point(summary)
    return points


def sweep_series(points: Sequence[Mapping[str, Any]]) -> dict[str, tuple[list[float], list[float]]]:
    """The sweep plot's lines: spec -> (mean generated tokens per problem, floored at 1 for a log
    axis; accuracy), in point order.  Shared by the CLI's figure and the app's Scaling page."""
    series: dict[str, tuple[list[float], list[float]]] = {}
    for p in points:
        xs, ys = series.setdefault(p["spec"], ([], []))
        xs.append(max(1.0, p["mean_tokens"]))
        ys.append(p["accuracy"])
    return series
