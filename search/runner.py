"""`run_search`: the one entry point the CLI, the app, the recorder and the eval harness use.

It validates everything before the first event, runs the strategy's grow function, then
decides the answer separately, and always closes the log with finished, cancelled or failed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from search.answer import AnswerChoice, Candidate, choose
from search.config import Budget, StrategyConfig
from search.context import BudgetExhausted, Cancelled, SearchContext, backed_up_value, path_value
from search.events import Event, EventKind, EventSink
from search.models import DEFAULT_SCORE_NAME, Models, render_prompt
from search.registry import StrategySpec, get_strategy
from search.scope import search_scope
from search.tasks import Task, get_task
from search.tree import Tree


@dataclass
class SearchResult:
    tree: Tree
    events: list[Event]
    answer: str | None
    correct: bool | None
    status: str
    error: str | None = None

    @property
    def spend(self) -> dict[str, Any]:
        """What the search spent: tokens_generated, prm_tokens, model_calls, nodes, elapsed_s."""
        return self.tree.spend


def run_search(
    problem: str,
    *,
    task: str | Task,
    strategy: str,
    models: Models,
    config: StrategyConfig | dict[str, Any] | None = None,
    budget: Budget | None = None,
    seed: int = 0,
    reference: str | None = None,
    sinks: Sequence[EventSink] = (),
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> SearchResult:
    """Run one search to its end; bad inputs raise ProblemError/ConfigError before any event.

    Front doors build a `search.request.RunRequest` instead, which checks the same inputs
    before models load and then calls `run_validated`.  The reference is read once, by
    `Task.parse_reference` (ReferenceAnswerError, a ProblemError, for one the task cannot
    read), so no check after the search can trip on it.
    """
    spec = get_strategy(strategy)
    task = get_task(task) if isinstance(task, str) else task
    problem = task.validate(problem)
    return run_validated(
        problem,
        task=task,
        spec=spec,
        config=spec.make_config(config),
        models=models,
        budget=budget,
        seed=seed,
        reference=task.parse_reference(reference, problem),
        sinks=sinks,
        stop=stop,
        clock=clock,
    )


def run_validated(
    problem: str,
    *,
    task: Task,
    spec: StrategySpec,
    config: StrategyConfig,
    models: Models,
    budget: Budget | None = None,
    seed: int = 0,
    reference: str | None = None,
    sinks: Sequence[EventSink] = (),
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> SearchResult:
    """`run_search` for inputs already checked (a cleaned problem, a built config)."""
    budget = budget or Budget()
    ctx = SearchContext(
        problem=problem,
        task=task,
        models=models,
        config=config,
        budget=budget,
        seed=seed,
        reference=reference,
        stop=stop or threading.Event(),
        clock=clock,
    )
    ctx.log.sinks.extend(sinks)
    with search_scope(ctx.stop):  # the backends' per-search state: caches, usage, stop (search/scope.py)
        ctx.emit(
            EventKind.SEARCH_STARTED,
            problem=problem,
            task=task.name,
            strategy=spec.name,
            config=config.to_json(),
            budget={"max_nodes": budget.max_nodes, "max_tokens": budget.max_tokens, "max_seconds": budget.max_seconds},
            seed=seed,
            models=models.names(),
            reference=reference,
            prompt=render_prompt(models.policy, task, problem, []),
            **({"score_name": models.score_name} if models.score_name != DEFAULT_SCORE_NAME else {}),
        )
        return _drive(ctx, spec.grow)


def _drive(ctx: SearchContext, grow: Callable[[SearchContext], None]) -> SearchResult:
    reason = "completed"
    try:
        grow(ctx)
    except BudgetExhausted as stop:
        reason = stop.reason
    except Cancelled as stop:
        ctx.report_spend()
        ctx.emit(EventKind.CANCELLED, reason=stop.reason)
        return _result(ctx)
    except Exception as exc:  # noqa: BLE001 - any model/backend failure ends the run as `failed`
        ctx.report_spend()
        if ctx.stop.is_set():  # a backend gave up on its call because of the stop: that is a cancel
            ctx.emit(EventKind.CANCELLED, reason="stop requested")
            return _result(ctx)
        ctx.emit(EventKind.FAILED, error=f"{type(exc).__name__}: {exc}")
        return _result(ctx, error=f"{type(exc).__name__}: {exc}")
    decide(ctx)
    ctx.report_spend()
    ctx.emit(EventKind.FINISHED, reason=reason)
    return _result(ctx)


def decide(ctx: SearchContext) -> AnswerChoice:
    """Choose the answer among the tree's live solutions and record how it was chosen."""
    method = ctx.config.answer_method
    _cap_answer_pool(ctx)
    candidates = [
        Candidate(node.id, node.answer, candidate_weight(ctx, node.id, method))
        for node in ctx.tree.terminals()
        if not node.pruned
    ]
    choice = choose(method, candidates, ctx.task.answers_equal)
    # No answer on a task with a checker or a reference is wrong, not "not checked".
    correct = ctx.task.check_answer(ctx.problem, choice.answer, ctx.reference)
    ctx.emit(
        EventKind.ANSWER_CHOSEN,
        answer=choice.answer,
        node=choice.node,
        method=choice.method,
        table=choice.table,
        correct=correct,
    )
    return choice


def _cap_answer_pool(ctx: SearchContext) -> None:
    """Prune live solutions beyond the strategy's own `max_solutions`, best path scores kept.

    Strategies cap their pools as they grow; this catches a round a budget cut short (its new
    solutions were never ranked), so no stop point can hand the answer rule more than the knob.
    """
    limit = ctx.config.max_solutions
    live = [node.id for node in ctx.tree.terminals() if not node.pruned]
    if limit is None or len(live) <= limit:
        return
    ranked = sorted(live, key=lambda n: (-candidate_weight(ctx, n, "argmax"), n))
    for rank, node_id in enumerate(ranked[limit:], start=limit + 1):
        ctx.prune(
            node_id,
            f"solution ranked {rank} of {len(ranked)} by path score: {ctx.config.__class__.__name__} "
            f"hands the answer rule at most {limit}",
        )


def candidate_weight(ctx: SearchContext, node_id: int, method: str) -> float:
    """The weight a method ranks a solution by; unscored solutions weigh 0."""
    return solution_weight(ctx.tree, ctx.config, node_id, method, ctx.config.aggregation)


def solution_weight(tree: Tree, config: StrategyConfig, node_id: int, method: str, aggregation: str) -> float:
    """The weight `method` ranks the solution `node_id` by under `config`, its path aggregated by
    `aggregation`; unscored solutions weigh 0.  Shared by the search and by re-deciding a stored run."""
    node = tree.nodes[node_id]
    if method == "majority":
        return 1.0
    if method == "most_visits":
        return float(node.visits)
    if method == "best_value":
        return backed_up_value(node, config.backs_up_by)
    if config.ranks_with == "orm":
        return node.scores.get("orm", 0.0)
    try:
        return path_value(tree, node_id, config.score_source, aggregation)
    except (KeyError, ValueError):
        return 0.0


def _result(ctx: SearchContext, error: str | None = None) -> SearchResult:
    tree = ctx.tree
    chosen = tree.chosen or {}
    return SearchResult(
        tree=tree,
        events=list(ctx.log.events),
        answer=chosen.get("answer"),
        correct=chosen.get("correct"),
        status=tree.status,
        error=error,
    )
