"""What the tree's node colour shows: one `Paint` per "Colour by" choice, a pure function of the tree.

Numeric measures (PRM, Q, value, visits, self-evaluation, rollout value) map a value per node onto a
colour scale; "PRM vs checker" paints each step by its `ground_truth.Agreement` class.  A node
absent from `Paint.values` has no such number: the tree draws it hollow (white fill), distinct
from a pruned node (grey, faded, dotted edge), whatever the measure.  The live view and Replay
draw the same figure from the same Paint.
"""

from __future__ import annotations

from collections.abc import Sequence

from reasoning_viz.figures import Paint, for_scorer, score_name, step_scores
from reasoning_viz.ground_truth import (
    THRESHOLD,
    Agreement,
    agreements,
    has_step_checker,
    no_checker_note,
    step_verdicts,
    tree_task,
)
from search.events import Event, EventKind
from search.tree import Tree

#: "Colour by" choices: key -> label shown in the selector and on the colour bar.
COLOR_BY: dict[str, str] = {
    "prm": "PRM score",
    "q": "Q (mean backed-up value)",
    "value": "value (leaf evaluation)",
    "visits": "visits",
    "self_eval": "self-evaluation P(yes)",
    "rollout": "rollout value",
    "truth": "PRM vs exact checker",
}
#: What each measure is, for the legend (one sentence each).
MEANING: dict[str, str] = {
    "prm": "the PRM's score of the node's own step",
    "q": "the mean of the values backed up through the node (MCTS)",
    "value": "the value the search gave the node when it evaluated it as a leaf (PRM, rollouts or their mix)",
    "visits": "how many simulations passed through the node (MCTS)",
    "self_eval": "the policy's own P(yes) that the step is correct",
    "rollout": "the mean outcome of rollouts finished from the node",
    "truth": "",
}
__all__ = ["COLOR_BY", "MEANING", "Paint", "choice_label", "leaf_values", "legend", "paint", "score_name"]
#: MEANING["prm"] when the PRM slot holds a value model (`score_name`).
VALUE_MODEL_MEANING = "the value model's score of the state after the node's step"
AGREEMENT_COLORS: dict[str, str] = {
    Agreement.AGREE: "#2ca02c",
    Agreement.MISSED: "#d62728",
    Agreement.FLAGGED: "#9467bd",
}
SEQUENTIAL_SCALE = "Blues"


def choice_label(tree: Tree, key: str) -> str:
    """The "Colour by" menu's label of `key` for this tree (the PRM choice says what its score is)."""
    return score_name(tree) if key == "prm" else for_scorer(COLOR_BY[key], tree)


def leaf_values(events: Sequence[Event]) -> dict[int, float]:
    """node id -> the value backed up from it the first time it was the leaf of a backpropagation
    (its evaluation V(s) in MCTS terms).  Nodes never evaluated as a leaf are absent."""
    out: dict[int, float] = {}
    for event in events:
        if event.kind is EventKind.BACKPROPAGATED and event.data["path"]:
            out.setdefault(event.data["path"][-1], event.data["value"])
    return out


def paint(tree: Tree, key: str = "prm", events: Sequence[Event] = (), threshold: float = THRESHOLD) -> Paint:
    """The Paint of measure `key` (one of COLOR_BY) for this tree; `events` are needed for "value".

    Raises ValueError for an unknown key.
    """
    if key not in COLOR_BY:
        raise ValueError(f"colour by must be one of {', '.join(COLOR_BY)} (got {key!r})")
    title = choice_label(tree, key)
    if key == "truth":
        return _truth_paint(tree, threshold)
    if key == "prm":
        values = step_scores(tree)
    elif key == "q":
        values = {n.id: n.q_mean for n in tree if n.visits}
    elif key == "visits":  # never visited: hollow, like any node without the number
        values = {n.id: float(n.visits) for n in tree if n.visits}
    elif key == "value":
        values = {n: v for n, v in leaf_values(events).items() if n in tree.nodes}
    else:  # self_eval, rollout: the node's own score from that source
        values = {n.id: n.scores[key] for n in tree if key in n.scores}
    note = None if values else f"No node of this run has a value for “{title}”: all are drawn hollow."
    if key == "visits":
        top = max(values.values(), default=1.0)
        return Paint(key, title, dict(values), cmax=top, scale=SEQUENTIAL_SCALE, note=note)
    return Paint(key, title, dict(values), note=note)


def _truth_paint(tree: Tree, threshold: float) -> Paint:
    task = tree_task(tree)
    verdicts = step_verdicts(tree, task)
    if not verdicts:
        note = no_checker_note((tree.meta or {}).get("task")) if task is None or not has_step_checker(task) else None
        return Paint("truth", choice_label(tree, "truth"), {}, colors=AGREEMENT_COLORS, note=note)
    classes = agreements(step_scores(tree), verdicts, threshold)
    return Paint("truth", choice_label(tree, "truth"), {n: str(a) for n, a in classes.items()}, colors=AGREEMENT_COLORS)


def legend(p: Paint, threshold: float = THRESHOLD) -> str:
    """The caption under the tree for this Paint: what the colour, the hollow and the grey mean."""
    if p.colors is not None:
        scorer = p.title.removesuffix(" vs exact checker")  # "PRM", or the run's own scorer
        colour = (
            f"Colour: PRM vs exact checker (PRM ≥ {threshold:g} = good step) — green: PRM agrees · "
            "red: PRM missed a slip · purple: PRM flagged a good step · white: no PRM score or no verdict"
        ).replace("PRM", scorer)
        pruned = "faded, dotted edge: pruned (a pruned step keeps its colour; grey when it has no class)"
    else:
        meaning = VALUE_MODEL_MEANING if p.key == "prm" and p.title != COLOR_BY["prm"] else MEANING[p.key]
        colour = f"Colour: {p.title}, {meaning} (white: none for this node)"
        pruned = "faded grey, dotted edge: pruned"
    return (
        f"{colour} · size: visits · ★ correct ✕ wrong ◆ unchecked · blue: current path · black: chosen path · "
        f"red dashes: backtracks · {pruned}"
    )
