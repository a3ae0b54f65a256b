"""Plain-words narration of search events, one short line each, for a workshop audience.

Pure functions (no streamlit): the replay scrubber and the live view show the same
sentences.  `narrate` works whether `tree` is the tree just before or just after the
event (or None): every fact comes from the event itself, and the tree is only asked for
context that does not change with the event (a node's step text, a run's strategy).
Nothing is escaped here; the UI escapes.  Step text is cut to `MAX_STEP` characters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from reasoning_viz.figures import score_label
from reasoning_viz.runinfo import answer_label, budget_sentence
from search.context import recomputed
from search.events import Event, EventKind
from search.tree import Tree

MAX_STEP = 80
#: Selection scores at or above this are the JSON stand-in for "infinite" (unvisited child).
UNVISITED = 1e8
SOURCE_NAMES = {
    "prm": "PRM",
    "orm": "Outcome verifier",
    "rollout": "Rollouts",
    "self_eval": "Self-evaluation",
    "confidence": "Policy confidence",
}


def short(text: Any, limit: int = MAX_STEP) -> str:
    """One line of at most `limit` characters (newlines folded, an ellipsis when cut)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def narrate(event: Event, tree: Tree | None = None) -> str:
    """A one-line, plain-words description of what happened in `event`."""
    return _NARRATORS[event.kind](event.data, tree)


def narrate_log(events: Iterable[Event]) -> list[str]:
    """Narrate a whole log, folding it as it goes so lines can name earlier steps."""
    tree = Tree()
    lines = []
    for event in events:
        lines.append(narrate(event, tree))
        tree.apply(event)
    return lines


# ---------------------------------------------------------------------- formatting helpers
def _num(value: Any, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "?"


def _digits_apart(a: Any, b: Any, most: int = 4) -> int:
    """Decimals (2 to `most`) that show two different scores as different numbers: a backtrack read
    "now scores 0.74 vs 0.74" when the scores were 0.7412 and 0.7398."""
    if not isinstance(a, int | float) or not isinstance(b, int | float) or a == b:
        return 2
    return next((d for d in range(2, most + 1) if f"{a:.{d}f}" != f"{b:.{d}f}"), most)


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def _verdict(correct: bool | None) -> str:
    return {True: "correct", False: "wrong", None: "not checked"}[correct]


def _ids(nodes: Sequence[int], limit: int = 6) -> str:
    shown = ", ".join(str(n) for n in nodes[:limit])
    return shown + (f" and {len(nodes) - limit} more" if len(nodes) > limit else "")


def _step(tree: Tree | None, node_id: Any) -> str:
    """The quoted step text of a node when the tree already has it."""
    if tree is None or node_id not in tree.nodes or not tree.nodes[node_id].text:
        return ""
    return f" '{short(tree.nodes[node_id].text, 50)}'"


# ---------------------------------------------------------------------- one narrator per kind
def _started(d: Mapping[str, Any], tree: Tree | None) -> str:
    limits = [f"{key.removeprefix('max_')} {value}" for key, value in (d.get("budget") or {}).items() if value]
    budget = f", budget: {', '.join(limits)}" if limits else ""
    problem = " ".join(str(d["problem"]).split())  # the whole problem: the class reads it here
    return f"Search started: {d['strategy']} on the {d['task']} problem '{problem}' (seed {d['seed']}{budget})"


def _node_added(d: Mapping[str, Any], tree: Tree | None) -> str:
    where = "the problem" if d["parent"] == 0 else f"node {d['parent']}"
    line = f"Node {d['node']} added under {where}: '{short(d['text'])}' ({_count(d['token_count'], 'token')})"
    if d["terminal"]:
        line += f", a final answer: {d['answer']}" if d["answer"] is not None else ", ending without an answer"
    return line


def _scored(d: Mapping[str, Any], tree: Tree | None) -> str:
    source = d["source"]
    if source == "rollout":
        return f"Rollouts from node {d['node']} averaged {_num(d['value'])}"
    name = score_label(tree) if source == "prm" and tree is not None else SOURCE_NAMES.get(source, source)
    return f"{name} scored node {d['node']}{_step(tree, d['node'])}: {_num(d['value'])}"


def self_check_words(judged: Mapping[str, Any], limit: int = 50) -> str:
    """What a self-evaluation found, in words: ``P(yes) = 0.83 ('yes')`` when the policy was asked,
    ``recomputed as '6 - 11 = -5 (left: -5 3 9)': disagrees, scored 0`` for self_check=recompute
    (or "agrees, but ... doubted, scored 0" when a token's probability fell below doubt_below).

    `judged`: a SELF_EVALUATED payload or `Node.self_eval` (keys p_yes, words).
    """
    rewrite = recomputed(judged)
    if rewrite is None:
        return f"P(yes) = {_num(judged['p_yes'])} ('{short(judged['words'], limit)}')"
    if rewrite.startswith("(nothing"):
        return "nothing to recompute (no claim after '='), scored 1"
    verdict = "agrees, scored 1" if judged["p_yes"] >= 0.5 else "disagrees, scored 0"
    if judged.get("doubt") is not None:
        doubt = _num(judged["doubt"])
        verdict = f"agrees, but the policy wrote one of the step's tokens at p = {doubt}: doubted, scored 0"
    return f"recomputed as '{short(rewrite, limit)}': {verdict}"


def _self_evaluated(d: Mapping[str, Any], tree: Tree | None) -> str:
    return f"The policy checked its own step at node {d['node']}: {self_check_words(d)}"


def _candidate(c: Mapping[str, Any]) -> str:
    if c["score"] >= UNVISITED:
        return f"node {c['node']} (never tried, so it goes first)"
    return f"node {c['node']} (Q {_num(c['q'])} + exploration {_num(c['exploration'])} = {_num(c['score'])})"


def _selected(d: Mapping[str, Any], tree: Tree | None) -> str:
    text = _selected_choice(d)
    wave = d.get("wave")
    if wave is None:
        return text
    loss = d.get("virtual_loss") or 0
    held = f"; {loss:g} virtual visits were on it" if loss else ""
    return f"{text} (parallel wave {wave}{held})"


def _selected_choice(d: Mapping[str, Any]) -> str:
    candidates = d["candidates"]
    chosen = next((c for c in candidates if c["node"] == d["node"]), None)
    rule = str(d["rule"]).upper()
    if chosen is None:
        return f"MCTS ({rule}) went from node {d['parent']} to node {d['node']}"
    others = [c for c in candidates if c["node"] != d["node"]]
    if not others:
        return f"MCTS ({rule}) went to node {d['node']}, the only open step under node {d['parent']}"
    runner_up = others[0]
    second = "never tried" if runner_up["score"] >= UNVISITED else _num(runner_up["score"])
    return f"MCTS ({rule}) chose {_candidate(chosen)} over node {runner_up['node']} ({second})"


def _expanded(d: Mapping[str, Any], tree: Tree | None) -> str:
    children = d["children"]
    priors = ", ".join(_num(p) for p in d["priors"][:6])
    nodes = "node" if len(children) == 1 else "nodes"
    steps = _count(len(children), "next step")
    before = _children_before(d, tree)
    if before:  # progressive widening: the node already had children
        more = _count(len(children), "more next step")
        return f"Widened node {d['node']} (it had {before}) with {more}: {nodes} {_ids(children)} (priors {priors})"
    return f"Expanded node {d['node']} into {steps}: {nodes} {_ids(children)} (priors {priors})"


def _children_before(d: Mapping[str, Any], tree: Tree | None) -> int:
    """How many children the node had before this expansion (0 when unknown or a first expansion)."""
    if tree is None or not d["children"] or d["node"] not in tree.nodes:
        return 0
    siblings = tree.nodes[d["node"]].children
    return siblings.index(d["children"][0]) if d["children"][0] in siblings else 0


def _rollout(d: Mapping[str, Any], tree: Tree | None) -> str:
    steps = len(d["steps"])
    answer = answer_label(d["answer"])
    verdict = f", {_verdict(d['correct'])}" if d["correct"] is not None else ""
    more = _count(steps, "more step")
    return f"Rollout from node {d['node']}: {more} to {answer}{verdict}, value {_num(d['value'])}"


def _backpropagated(d: Mapping[str, Any], tree: Tree | None) -> str:
    path = d["path"]
    shown = " → ".join(str(n) for n in path) if len(path) <= 8 else f"{path[0]} → … → {path[-1]}"
    return f"Backed up value {_num(d['value'])} along {shown} ({len(path)} nodes get a visit)"


def _pruned(d: Mapping[str, Any], tree: Tree | None) -> str:
    return f"Pruned node {d['node']}{_step(tree, d['node'])}: {short(d['reason'], 70)}"


def _unscored(d: Mapping[str, Any], tree: Tree | None) -> str:
    return f"⚠ Unscored node {d['node']}{_step(tree, d['node'])}: {short(d['reason'], 110)}"


def _backtracked(d: Mapping[str, Any], tree: Tree | None) -> str:
    breakdown = d.get("breakdown") or {}
    chosen, previous = breakdown.get("chosen"), breakdown.get("previous")
    head = f"Backtracked from node {d['from_node']} to node {d['to_node']}"
    if isinstance(chosen, Mapping) and isinstance(previous, Mapping):
        digits = _digits_apart(chosen["score"], previous["score"])
        return (
            f"{head}: node {chosen['node']} now scores {_num(chosen['score'], digits)} vs "
            f"{_num(previous['score'], digits)} "
            f"for node {previous['node']} on the old path (leaf {_num(breakdown.get('leaf_value'))})"
        )
    return f"{head}: {short(d['reason'], 90)}"


def _terminal(d: Mapping[str, Any], tree: Tree | None) -> str:
    if d["answer"] is None:
        return f"Node {d['node']} ended the solution without a readable answer"
    return f"Node {d['node']} reached a final answer: {short(d['answer'], 40)} ({_verdict(d['correct'])})"


_METHODS = {
    "argmax": "the best path score",
    "majority": "majority vote",
    "prm_vote": "PRM-weighted vote",
    "most_visits": "most visits",
    "best_value": "best backed-up value",
}


def _answer(d: Mapping[str, Any], tree: Tree | None) -> str:
    if d["answer"] is None:
        return "No answer could be chosen: no finished solution survived"
    how = _METHODS.get(d["method"], d["method"])
    table = d.get("table") or []
    votes = ""
    if d["method"] in ("majority", "prm_vote") and len(table) > 1:
        votes = "; votes " + ", ".join(
            f"{short(row.get('answer'), 12)}: {_num(row.get('votes'), 2)}" for row in table[:3]
        )
    node = f" from node {d['node']}" if d["node"] is not None else ""
    return f"Answer chosen: {short(d['answer'], 40)}{node} by {how} ({_verdict(d['correct'])}){votes}{_missed(d, tree)}"


def _missed(d: Mapping[str, Any], tree: Tree | None) -> str:
    """When a wrong answer was chosen over a correct solution the tree holds, say where it is.

    That separates "the search never found it" from "the answer rule passed it over", the first
    question when debugging a miss.  Terminal verdicts are set before the answer is chosen.
    """
    if d["correct"] is not False or tree is None:
        return ""
    found = [node.id for node in tree.terminals() if node.correct]
    if not found:
        return ""
    more = f" (+{len(found) - 1})" if len(found) > 1 else ""
    return f"; passed over correct node {found[0]}{more}"


def _spend(d: Mapping[str, Any], tree: Tree | None) -> str:
    return (
        f"Spent so far: {_count(d['tokens_generated'], 'policy token')}, "
        f"{_count(d['prm_tokens'], 'reward-model token')}, {_count(d['model_calls'], 'model call')}, "
        f"{_count(d['nodes'], 'node')}, {_num(d['elapsed_s'], 1)} s"
    )


def _finished(d: Mapping[str, Any], tree: Tree | None) -> str:
    reason = d["reason"]
    if reason == "completed":
        return "Search finished: the strategy ran to completion"
    stop = budget_sentence(reason)
    if stop:
        return f"Search {stop} before the strategy finished; the answer is chosen among what was found"
    return f"Search finished: {short(reason, 70)}"


def _cancelled(d: Mapping[str, Any], tree: Tree | None) -> str:
    return f"Search cancelled: {short(d['reason'], 70)}"


def _failed(d: Mapping[str, Any], tree: Tree | None) -> str:
    return f"Search failed: {short(d['error'], 90)}"


_NARRATORS: dict[EventKind, Callable[[Mapping[str, Any], Tree | None], str]] = {
    EventKind.SEARCH_STARTED: _started,
    EventKind.NODE_ADDED: _node_added,
    EventKind.NODE_SCORED: _scored,
    EventKind.SELF_EVALUATED: _self_evaluated,
    EventKind.SELECTED: _selected,
    EventKind.EXPANDED: _expanded,
    EventKind.ROLLOUT: _rollout,
    EventKind.BACKPROPAGATED: _backpropagated,
    EventKind.PRUNED: _pruned,
    EventKind.BACKTRACKED: _backtracked,
    EventKind.TERMINAL_REACHED: _terminal,
    EventKind.ANSWER_CHOSEN: _answer,
    EventKind.SPEND: _spend,
    EventKind.FINISHED: _finished,
    EventKind.CANCELLED: _cancelled,
    EventKind.FAILED: _failed,
    EventKind.UNSCORED: _unscored,
}
assert set(_NARRATORS) == set(EventKind), "every event kind needs a narration"
