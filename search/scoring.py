"""Scoring rules as pure functions: step-score aggregation, votes, and UCT/PUCT selection.

Kept free of trees and models so each rule can be checked by hand in a unit test (the way
deepmind/mctx keeps its selection rules).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

#: How per-step scores become one path score (declared once: configs, CLI and app read it).
Aggregation = Literal["min", "prod", "last", "mean"]
AGGREGATIONS: tuple[str, ...] = get_args(Aggregation)


def aggregate(step_scores: Sequence[float], how: str) -> float:
    """Collapse per-step PRM scores into one path score.

    min: a chain is as good as its weakest step (Let's Verify Step by Step); prod: the
    probability every step is right; last: the PRM's view of the whole prefix; mean: lenient.
    """
    if not step_scores:
        raise ValueError("cannot aggregate an empty list of step scores")
    if how == "min":
        return min(step_scores)
    if how == "prod":
        return math.prod(step_scores)
    if how == "last":
        return step_scores[-1]
    if how == "mean":
        return sum(step_scores) / len(step_scores)
    raise ValueError(f"aggregation must be one of {AGGREGATIONS} (got {how!r})")


def weighted_votes(answers: Iterable[tuple[str | None, float]]) -> list[tuple[str, float]]:
    """Sum the weight of every candidate per distinct answer, best first.

    Ties are broken by the answer's first appearance so the result is deterministic.
    Candidates without an answer carry no vote.
    """
    totals: dict[str, float] = defaultdict(float)
    order: dict[str, int] = {}
    for answer, weight in answers:
        if answer is None:
            continue
        order.setdefault(answer, len(order))
        totals[answer] += weight
    return sorted(totals.items(), key=lambda item: (-item[1], order[item[0]]))


def majority_votes(answers: Iterable[str | None]) -> list[tuple[str, float]]:
    """Self-consistency: one vote per chain."""
    return weighted_votes((answer, 1.0) for answer in answers)


@dataclass(frozen=True)
class ChildStats:
    """What a selection rule sees of one child."""

    node: int
    q: float
    visits: int
    prior: float


@dataclass(frozen=True)
class Choice:
    """A child's selection score and its parts (recorded in `selected` events)."""

    node: int
    q: float
    prior: float
    visits: int
    exploration: float
    score: float

    def to_json(self) -> dict[str, float | int]:
        return {
            "node": self.node,
            "q": round(self.q, 6),
            "prior": round(self.prior, 6),
            "visits": self.visits,
            "exploration": round(self.exploration, 6),
            "score": round(self.score, 6) if math.isfinite(self.score) else 1e9,
        }


def uct(child: ChildStats, parent_visits: int, c: float) -> Choice:
    """UCT (Kocsis & Szepesvari): Q + c * sqrt(ln N / n); unvisited children go first."""
    if child.visits == 0:
        return Choice(child.node, child.q, child.prior, 0, math.inf, math.inf)
    exploration = c * math.sqrt(math.log(max(parent_visits, 1)) / child.visits)
    return Choice(child.node, child.q, child.prior, child.visits, exploration, child.q + exploration)


def puct(child: ChildStats, parent_visits: int, c: float) -> Choice:
    """PUCT (AlphaZero): Q + c * P * sqrt(N) / (1 + n)."""
    exploration = c * child.prior * math.sqrt(parent_visits) / (1 + child.visits)
    return Choice(child.node, child.q, child.prior, child.visits, exploration, child.q + exploration)


SELECTION_RULES = {"uct": uct, "puct": puct}


def rank_children(children: Sequence[ChildStats], parent_visits: int, c: float, rule: str) -> list[Choice]:
    """Score every child with the rule; best first, ties to the older (lower id) child."""
    score = SELECTION_RULES[rule]
    choices = [score(child, parent_visits, c) for child in children]
    return sorted(choices, key=lambda ch: (-ch.score, ch.node))


def priors_from_logprobs(logprobs: Sequence[float], token_counts: Sequence[int]) -> list[float]:
    """PUCT priors: softmax over the children's length-normalised policy log-probabilities."""
    normalised = [lp / max(n, 1) for lp, n in zip(logprobs, token_counts, strict=True)]
    top = max(normalised)
    weights = [math.exp(x - top) for x in normalised]
    total = sum(weights)
    return [w / total for w in weights]
