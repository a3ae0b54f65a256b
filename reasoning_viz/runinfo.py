"""What a run is and where it stands, in words: status with the reason it ended, live spend,
the settings it ran with, and checks made before a search starts.  Pure functions (no Streamlit).

Budgets: the app's default budget counts nodes, not seconds, so the same seed grows the same
tree on a slow or busy machine; a time limit is an opt-in guard, and when any budget ends a
run the status says which one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from search.tree import Tree

#: Defaults of the Search page's budget inputs (0 = no limit).  Nodes, not seconds: see above.
DEFAULT_BUDGET: dict[str, float] = {"max_nodes": 500, "max_tokens": 0, "max_seconds": 0}
BUDGET_WORDS = {"max_nodes": "node", "max_tokens": "token", "max_seconds": "time"}
_BUDGET_REASON = re.compile(r"budget (max_nodes|max_tokens|max_seconds)=([\d.e+]+) reached")


@dataclass(frozen=True)
class RunStatus:
    """`label`: one short word for the status metric (it must fit a narrow column); `cause`: what
    stopped it in two words ("node budget"), or None; `detail`: a sentence, or None."""

    label: str
    detail: str | None = None
    cause: str | None = None


def budget_stop(end_reason: str | None) -> tuple[str, str] | None:
    """(budget name, limit) when `end_reason` says a budget ended the run, else None."""
    match = _BUDGET_REASON.search(end_reason or "")
    return (match.group(1), match.group(2)) if match else None


def status_word(status: str, end_reason: str | None) -> str:
    """A saved run's status for lists and pickers: "stopped · node budget" when a budget ended a
    run the engine marked finished, else the status itself ("finished", "cancelled", ...)."""
    stop = budget_stop(end_reason) if status == "finished" else None
    return f"stopped · {BUDGET_WORDS[stop[0]]} budget" if stop else status


def answer_cell(answer: Any) -> Any:
    """A chosen answer in a table cell: the answer, or "no answer" (never "None")."""
    return "no answer" if answer is None else answer


def answer_label(answer: Any) -> str:
    """A chosen answer in a caption or picker label: "answer 112", or "no answer"."""
    return "no answer" if answer is None else f"answer {answer}"


def budget_sentence(end_reason: str | None) -> str | None:
    """"stopped by the node budget (max_nodes = 1000)" when a budget ended the run, else None."""
    stop = budget_stop(end_reason)
    if not stop:
        return None
    name, limit = stop
    return f"stopped by the {BUDGET_WORDS[name]} budget ({name} = {limit}{' s' if name == 'max_seconds' else ''})"


def answer_caveat(chosen: Mapping[str, Any] | None) -> str | None:
    """A warning when the chosen answer won a tie: the top rows of its table have the same weight
    (or votes) and give different answers, so the order candidates came in decided, not the
    scores.  None otherwise."""
    table = (chosen or {}).get("table") or []
    if chosen is None or chosen.get("answer") is None or len(table) < 2:
        return None
    key = "weight" if "weight" in table[0] else "votes" if "votes" in table[0] else None
    if key is None or table[0][key] != table[1][key]:
        return None
    tied = [row for row in table if row[key] == table[0][key]]
    if len({str(row.get("answer")) for row in tied}) == 1:
        return None  # every tied candidate gives this answer: the order decided nothing that matters
    return (f"{len(tied)} answers share the top {key} ({table[0][key]:g}): the scores did not decide, the order the "
            "candidates were found in did. Treat this answer as a guess.")


def run_status(tree: Tree, *, running: bool, error: str | None = None) -> RunStatus:
    """The status line of a run: starting / running / finished / stopped by a budget / ..."""
    if error or tree.status == "failed":
        return RunStatus("failed", f"The search failed: {error or tree.end_reason}")
    if running and not tree.nodes:
        return RunStatus("starting")
    stop = budget_stop(tree.end_reason)
    if tree.status == "finished" and stop:
        name = stop[0]
        found = (tree.chosen or {}).get("answer") is not None
        detail = "S" + budget_sentence(tree.end_reason)[1:] + " before the strategy finished; " + (
            "the answer was chosen among the solutions found so far." if found
            else "no complete solution was found before it stopped."
        )
        if name == "max_seconds":
            detail += " A time budget depends on the machine's speed: the same seed can grow another tree."
        return RunStatus("stopped", detail, cause=f"{BUDGET_WORDS[name]} budget")
    if tree.status == "cancelled":
        return RunStatus("cancelled", f"Stopped by hand ({tree.end_reason}).")
    return RunStatus(tree.status)


def live_spend(tree: Tree, *, elapsed_s: float | None = None) -> dict[str, float]:
    """Nodes, policy tokens and seconds spent so far, counted from the tree itself.

    The engine reports spend in BUDGET events only now and then; between them the counters
    would freeze.  Nodes and the tokens of their steps are in the tree; `elapsed_s` (the job's
    wall time while it runs) overrides the last reported seconds.  Never lower than reported.
    """
    reported = tree.spend or {}
    nodes = max(len(tree) - 1, 0) if tree.nodes else 0
    tokens = sum(node.token_count for node in tree)
    return {
        "nodes": max(nodes, reported.get("nodes", 0)),
        "tokens": max(tokens, reported.get("tokens_generated", 0)),
        "elapsed_s": max(elapsed_s or 0.0, reported.get("elapsed_s", 0.0)),
    }


def run_settings(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a run was started with (its SEARCH_STARTED event), as the sidebar shows them."""
    budget = {k: v for k, v in (meta.get("budget") or {}).items() if v}
    return {
        "task": meta.get("task"),
        "problem": meta.get("problem", ""),
        "known answer": meta.get("reference"),
        "strategy": meta.get("strategy"),
        "knobs": dict(meta.get("config") or {}),
        "budget": budget or "none",
        "seed": meta.get("seed"),
        "models": dict(meta.get("models") or {}),
    }


def context_problem(prompt_tokens: int, context_tokens: int | None, step_tokens: int) -> str | None:
    """A sentence when the prompt plus one step cannot fit the policy's context window, else None.

    A policy given more tokens than it was trained on writes nonsense ("no no no ...") until a
    budget stops it; saying so before the search saves the wait.
    """
    if not context_tokens or prompt_tokens + step_tokens <= context_tokens:
        return None
    return (
        f"The prompt is {prompt_tokens} tokens, and with one {step_tokens}-token step it exceeds the policy's "
        f"context of {context_tokens} tokens. Shorten the problem or choose a policy with a longer context."
    )


def form_state(meta: Mapping[str, Any], knobs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Search-page widget values (by widget key) that reproduce a run's settings.

    meta: the run's SEARCH_STARTED data; knobs: (name, default) of its strategy's knobs.  Knobs
    whose default is None are entered as 0 ("the default") when the run left them unset.
    """
    task, strategy = meta["task"], meta["strategy"]
    budget = meta.get("budget") or {}
    state: dict[str, Any] = {
        "task": task,
        f"problem-{task}": meta.get("problem", ""),
        "reference": meta.get("reference") or "",
        "strategy": strategy,
        "seed": int(meta.get("seed") or 0),
        "budget-max_nodes": int(budget.get("max_nodes") or 0),
        "budget-max_tokens": int(budget.get("max_tokens") or 0),
        "budget-max_seconds": float(budget.get("max_seconds") or 0.0),
    }
    config = meta.get("config") or {}
    for name, default in knobs:
        if name not in config:
            continue
        value = config[name]
        if default is None:
            value = int(value or 0)
        elif isinstance(default, float) and not isinstance(default, bool):
            value = float(value)
        state[f"knob-{strategy}-{name}"] = value
    return state
