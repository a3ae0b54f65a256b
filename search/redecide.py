"""Re-decide a finished run: another step-score aggregation or answer rule over the stored tree.

No model runs: every number the answer rules need is already in the tree (the PRM's per-step
scores on each solution, self-evaluations, ORM scores, visits and backed-up values).  The pool
is the run's own: its solutions that were not pruned, as `runner.decide` saw them.  With the
run's own aggregation and rule `redecide` returns the recorded answer (a test holds it to that
for every strategy); with others it says which answer would have been chosen and whether it is
right.  The weights are the search's own (`runner.solution_weight`, `context.path_value`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from search.answer import Candidate, choose
from search.config import StrategyConfig
from search.registry import get_strategy
from search.runner import solution_weight
from search.scoring import AGGREGATIONS
from search.tasks import TASKS
from search.tree import Tree


@dataclass(frozen=True)
class Redecision:
    """The answer `method` picks with `aggregation`; `correct` as the task grades it (None: cannot
    tell); `uses_aggregation`: whether this rule read the aggregated path score at all;
    `table`: the rule's ranking or vote table."""

    answer: str | None
    node: int | None
    method: str
    aggregation: str
    correct: bool | None
    uses_aggregation: bool
    table: list[dict[str, Any]]


def run_config(tree: Tree) -> StrategyConfig:
    """The strategy config the run was started with (from its SEARCH_STARTED event).

    Raises ConfigError when the strategy is unknown or the stored knobs no longer parse.
    """
    meta = tree.meta or {}
    return get_strategy(meta.get("strategy", "")).config_cls.from_dict(meta.get("config") or {})


def answer_methods(tree: Tree) -> tuple[str, ...]:
    """The answer rules this run's strategy allows (its config's ALLOWED_ANSWER_METHODS)."""
    return get_strategy((tree.meta or {}).get("strategy", "")).config_cls.ALLOWED_ANSWER_METHODS


def uses_aggregation(config: StrategyConfig, method: str) -> bool:
    """Whether `method` ranks solutions by the aggregated path score under this config."""
    return method in ("argmax", "prm_vote") and config.ranks_with != "orm"


def redecide(tree: Tree, *, aggregation: str | None = None, method: str | None = None) -> Redecision:
    """Choose the answer of a stored run again with another aggregation and/or answer rule.

    None keeps the run's own setting.  Raises ValueError for an aggregation or a method the
    strategy does not allow, ConfigError when the run's config cannot be read back.
    """
    config = run_config(tree)
    aggregation = aggregation or config.aggregation
    method = method or config.answer_method
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS} (got {aggregation!r})")
    if method not in type(config).ALLOWED_ANSWER_METHODS:
        allowed = ", ".join(type(config).ALLOWED_ANSWER_METHODS)
        raise ValueError(f"{tree.meta.get('strategy')} has no answer rule {method!r}; it allows {allowed}")
    task = TASKS.get(tree.meta.get("task"))
    candidates = [
        Candidate(n.id, n.answer, solution_weight(tree, config, n.id, method, aggregation))
        for n in tree.terminals()
        if not n.pruned
    ]
    choice = choose(method, candidates, task.answers_equal if task else None)
    meta = tree.meta
    correct = task.check_answer(meta.get("problem", ""), choice.answer, meta.get("reference")) if task else None
    return Redecision(
        choice.answer, choice.node, method, aggregation, correct, uses_aggregation(config, method), choice.table
    )


def redecide_grid(tree: Tree) -> list[dict[str, Any]]:
    """Every allowed answer rule × aggregation: the answer each picks and whether it is right.

    Rules that ignore the aggregation get one row (aggregation "–").  Rows:
    {"rule", "aggregation", "answer", "node", "correct"}.
    """
    config = run_config(tree)
    rows = []
    for method in type(config).ALLOWED_ANSWER_METHODS:
        hows = AGGREGATIONS if uses_aggregation(config, method) else (config.aggregation,)
        for how in hows:
            found = redecide(tree, aggregation=how, method=method)
            rows.append(
                {
                    "rule": method,
                    "aggregation": how if found.uses_aggregation else "–",
                    "answer": found.answer,
                    "node": found.node,
                    "correct": found.correct,
                }
            )
    return rows
