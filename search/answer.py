"""Choosing the final answer, kept apart from growing the tree.

A strategy hands over its candidates (terminal node, extracted answer, weight) and a method
name; the same tree can therefore be re-decided by argmax, majority or PRM-weighted vote.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from search.scoring import majority_votes, weighted_votes

#: Every answer rule (declared once: each config narrows it with ALLOWED_ANSWER_METHODS).
AnswerMethod = Literal["argmax", "majority", "prm_vote", "most_visits", "best_value"]
ANSWER_METHODS: tuple[str, ...] = get_args(AnswerMethod)


@dataclass(frozen=True)
class Candidate:
    node: int
    answer: str | None
    weight: float


@dataclass(frozen=True)
class AnswerChoice:
    answer: str | None
    node: int | None
    method: str
    table: list[dict[str, Any]]


def choose(method: str, candidates: Sequence[Candidate]) -> AnswerChoice:
    """Pick the answer by `method`; candidates without an answer never win a vote."""
    if method not in ANSWER_METHODS:
        raise ValueError(f"answer method must be one of {ANSWER_METHODS} (got {method!r})")
    if method in ("majority", "prm_vote"):
        return _vote(method, candidates)
    return _argmax(method, candidates)


def _argmax(method: str, candidates: Sequence[Candidate]) -> AnswerChoice:
    """Highest weight wins (argmax, most_visits and best_value differ only in the weight)."""
    ranked = sorted(candidates, key=lambda c: (c.answer is None, -c.weight, c.node))
    table = [{"node": c.node, "answer": c.answer, "weight": round(c.weight, 6)} for c in ranked]
    best = ranked[0] if ranked else None
    return AnswerChoice(best.answer if best else None, best.node if best else None, method, table)


def _vote(method: str, candidates: Sequence[Candidate]) -> AnswerChoice:
    if method == "majority":
        tally = majority_votes(c.answer for c in candidates)
    else:
        tally = weighted_votes((c.answer, c.weight) for c in candidates)
    table = [{"answer": answer, "votes": round(total, 6)} for answer, total in tally]
    if not tally:
        return AnswerChoice(None, None, method, table)
    winner = tally[0][0]
    backers = [c for c in candidates if c.answer == winner]
    node = max(backers, key=lambda c: (c.weight, -c.node)).node
    return AnswerChoice(winner, node, method, table)
