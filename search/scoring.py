"""Scoring rules as pure functions: step-score aggregation, votes, and UCT/PUCT selection.

Kept free of trees and models so each rule can be checked by hand in a unit test (the way
deepmind/mctx keeps its selection rules).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
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


#: Do two answer texts mean the same?  (A task's `answers_equal`; plain text equality when absent.)
SameAnswer = Callable[[str, str], bool]


@dataclass
class VoteBucket:
    """Answers that mean the same, pooled: total weight, how often each written form appeared,
    and the indices of the votes it holds."""

    total: float = 0.0
    forms: Counter[str] = field(default_factory=Counter)
    members: list[int] = field(default_factory=list)

    @property
    def answer(self) -> str:
        """The form most votes wrote (ties to the first written)."""
        return self.forms.most_common(1)[0][0]


def vote_buckets(answers: Iterable[tuple[str | None, float]], same: SameAnswer | None = None) -> list[VoteBucket]:
    """Pool weighted answers into buckets of equivalent answers, heaviest first.

    An answer joins the first bucket whose first form `same` judges equal to it (text equality
    when `same` is None).  None and empty answers carry no vote.  Ties are broken by first
    appearance so the result is deterministic.
    """
    buckets: list[VoteBucket] = []
    where: dict[str, VoteBucket] = {}
    for index, (answer, weight) in enumerate(answers):
        if answer is None or not answer.strip():
            continue
        bucket = where.get(answer)
        if bucket is None and same is not None:
            bucket = next((b for b in buckets if same(next(iter(b.forms)), answer)), None)
        if bucket is None:
            bucket = VoteBucket()
            buckets.append(bucket)
        where[answer] = bucket
        bucket.total += weight
        bucket.forms[answer] += 1
        bucket.members.append(index)
    order = {id(b): i for i, b in enumerate(buckets)}
    return sorted(buckets, key=lambda b: (-b.total, order[id(b)]))


def weighted_votes(
    answers: Iterable[tuple[str | None, float]], same: SameAnswer | None = None
) -> list[tuple[str, float]]:
    """Sum the weight of every candidate per answer (equivalent answers pooled), best first.

    Each answer is shown in the form most of its votes wrote; see `vote_buckets`.
    """
    return [(b.answer, b.total) for b in vote_buckets(answers, same)]


def majority_votes(answers: Iterable[str | None], same: SameAnswer | None = None) -> list[tuple[str, float]]:
    """Self-consistency (Wang et al. 2022): one vote per chain, equivalent answers pooled."""
    return weighted_votes(((answer, 1.0) for answer in answers), same)


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
