"""Choosing the final answer, kept apart from growing the tree.

A strategy hands over its candidates (terminal node, extracted answer, weight) and a method
name; the same tree can therefore be re-decided by argmax, majority or PRM-weighted vote.
Votes pool answers that mean the same (the task's `answers_equal`: math-verify for freeform,
so ``1/2`` and ``0.5`` are one answer) and show each in the form most chains wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from search.scoring import SameAnswer, VoteBucket, vote_buckets

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


def choose(method: str, candidates: Sequence[Candidate], same: SameAnswer | None = None) -> AnswerChoice:
    """Pick the answer by `method`; candidates without an answer (None or empty) never win.

    `same(a, b)` says whether two answers mean the same (votes pool them); text equality
    when None.  Raises ValueError for an unknown method.
    """
    if method not in ANSWER_METHODS:
        raise ValueError(f"answer method must be one of {ANSWER_METHODS} (got {method!r})")
    if method in ("majority", "prm_vote"):
        return _vote(method, candidates, same)
    return _argmax(method, candidates)


def _argmax(method: str, candidates: Sequence[Candidate]) -> AnswerChoice:
    """Highest weight wins (argmax, most_visits and best_value differ only in the weight)."""
    ranked = sorted(candidates, key=lambda c: (not c.answer, -c.weight, c.node))
    table = [{"node": c.node, "answer": c.answer, "weight": round(c.weight, 6)} for c in ranked]
    best = ranked[0] if ranked else None
    return AnswerChoice(best.answer if best else None, best.node if best else None, method, table)


def _vote(method: str, candidates: Sequence[Candidate], same: SameAnswer | None) -> AnswerChoice:
    weight = (lambda c: 1.0) if method == "majority" else (lambda c: c.weight)
    buckets = vote_buckets(((c.answer, weight(c)) for c in candidates), same)
    pooled = any(len(b.forms) > 1 for b in buckets)
    table = [_vote_row(b, pooled) for b in buckets]
    if not buckets:
        return AnswerChoice(None, None, method, table)
    backers = [candidates[i] for i in buckets[0].members]
    node = max(backers, key=lambda c: (c.weight, -c.node)).node
    return AnswerChoice(buckets[0].answer, node, method, table)


def _vote_row(bucket: VoteBucket, pooled: bool) -> dict[str, Any]:
    """One row of the vote table; `forms` lists the written forms when some bucket pooled several."""
    row: dict[str, Any] = {"answer": bucket.answer, "votes": round(bucket.total, 6)}
    if pooled:
        row["forms"] = ", ".join(f"{form} ×{count}" for form, count in bucket.forms.most_common())
    return row
