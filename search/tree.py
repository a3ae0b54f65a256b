"""The one search tree every strategy grows, folded from the event log.

Strategies never mutate a `Tree` directly: they emit events and the tree applies them.
That makes `Tree.from_events(events)` exact by construction, and lets replay stop after
any event k simply by folding the first k events.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from search.events import Event, EventKind

ROOT_ID = 0


@dataclass
class Node:
    """One reasoning step (the root holds the problem and no step)."""

    id: int
    parent: int | None
    depth: int
    text: str = ""
    token_count: int = 0
    logprob: float | None = 0.0
    terminal: bool = False
    answer: str | None = None
    correct: bool | None = None
    children: list[int] = field(default_factory=list)
    #: Latest score per source: prm, orm, rollout, self_eval, confidence, ...
    scores: dict[str, float] = field(default_factory=dict)
    #: Per-step scores along the root path, per source (from the PRM's single pass).
    step_scores: dict[str, list[float]] = field(default_factory=dict)
    self_eval: dict[str, Any] | None = None
    rollouts: list[dict[str, Any]] = field(default_factory=list)
    prior: float | None = None
    visits: int = 0
    value_sum: float = 0.0
    value_max: float | None = None
    expanded: bool = False
    pruned: bool = False
    prune_reason: str | None = None
    #: Sentences for numbers a model returned that were refused (NaN/inf; see search.guard).
    unscored: list[str] = field(default_factory=list)
    #: Sequence numbers of every event that touched this node (for the inspector).
    event_seqs: list[int] = field(default_factory=list)

    @property
    def q_mean(self) -> float:
        """Mean backed-up value (0 before the first visit)."""
        return self.value_sum / self.visits if self.visits else 0.0

    @property
    def confidence(self) -> float:
        """Geometric-mean token probability of the step: a cheap policy-side confidence."""
        if self.logprob is None:
            return 1.0
        return math.exp(self.logprob / self.token_count) if self.token_count else 1.0


@dataclass
class Tree:
    """Nodes by id plus search-level facts (status, chosen answer, spend, backtracks)."""

    nodes: dict[int, Node] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    status: str = "empty"
    end_reason: str | None = None
    chosen: dict[str, Any] | None = None
    #: What the search has spent (the last `spend` event); the limits are `meta["budget"]`.
    spend: dict[str, Any] = field(default_factory=dict)
    backtracks: list[dict[str, Any]] = field(default_factory=list)
    #: Root-to-node path of the latest selection (the app highlights it).
    current_path: list[int] = field(default_factory=list)
    events_applied: int = 0

    # ------------------------------------------------------------------ building
    @classmethod
    def from_events(cls, events: Iterable[Event]) -> Tree:
        """Rebuild a tree exactly from (a prefix of) its event log."""
        tree = cls()
        for event in events:
            tree.apply(event)
        return tree

    def apply(self, event: Event) -> None:
        """Fold one event into the tree."""
        handler = _HANDLERS[event.kind]
        handler(self, event.data, event.seq)
        self.events_applied += 1

    # ------------------------------------------------------------------ queries
    @property
    def root(self) -> Node:
        return self.nodes[ROOT_ID]

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def path(self, node_id: int) -> list[Node]:
        """Nodes from the root down to `node_id`, both included."""
        out = []
        current: int | None = node_id
        while current is not None:
            node = self.nodes[current]
            out.append(node)
            current = node.parent
        return out[::-1]

    def steps(self, node_id: int) -> list[str]:
        """Step texts from the root to `node_id` (the root itself has no step)."""
        return [node.text for node in self.path(node_id)[1:]]

    def children(self, node_id: int) -> list[Node]:
        return [self.nodes[c] for c in self.nodes[node_id].children]

    def terminals(self) -> list[Node]:
        return [node for node in self.nodes.values() if node.terminal]

    def leaves(self) -> list[Node]:
        return [node for node in self.nodes.values() if not node.children]

    @property
    def unscored(self) -> int:
        """How many model numbers were refused as NaN/infinite (on_bad_number=unscored)."""
        return sum(len(node.unscored) for node in self.nodes.values())

    def touch(self, node_id: int, seq: int) -> Node:
        node = self.nodes[node_id]
        node.event_seqs.append(seq)
        return node


# ---------------------------------------------------------------------- event handlers
def _on_started(tree: Tree, data: dict[str, Any], seq: int) -> None:
    tree.meta = dict(data)
    tree.status = "running"
    tree.nodes[ROOT_ID] = Node(id=ROOT_ID, parent=None, depth=0, event_seqs=[seq])


def _on_node_added(tree: Tree, data: dict[str, Any], seq: int) -> None:
    parent = tree.nodes[data["parent"]]
    node = Node(
        id=data["node"],
        parent=parent.id,
        depth=parent.depth + 1,
        text=data["text"],
        token_count=data["token_count"],
        logprob=data["logprob"],
        terminal=data["terminal"],
        answer=data["answer"],
        event_seqs=[seq],
    )
    node.scores["confidence"] = node.confidence
    tree.nodes[node.id] = node
    parent.children.append(node.id)


def _on_scored(tree: Tree, data: dict[str, Any], seq: int) -> None:
    node = tree.touch(data["node"], seq)
    node.scores[data["source"]] = data["value"]
    if data["step_scores"] is not None:
        node.step_scores[data["source"]] = list(data["step_scores"])


def _on_self_evaluated(tree: Tree, data: dict[str, Any], seq: int) -> None:
    node = tree.touch(data["node"], seq)
    node.self_eval = {key: data[key] for key in ("question", "p_yes", "words", "doubt") if key in data}
    node.scores["self_eval"] = data["p_yes"]


def _on_selected(tree: Tree, data: dict[str, Any], seq: int) -> None:
    node = tree.touch(data["node"], seq)
    for candidate in data["candidates"]:
        if candidate["node"] != node.id:
            tree.nodes[candidate["node"]].event_seqs.append(seq)
    tree.current_path = [n.id for n in tree.path(node.id)]


def _on_expanded(tree: Tree, data: dict[str, Any], seq: int) -> None:
    tree.touch(data["node"], seq).expanded = True
    for child, prior in zip(data["children"], data["priors"], strict=True):
        tree.nodes[child].prior = prior


def _on_rollout(tree: Tree, data: dict[str, Any], seq: int) -> None:
    node = tree.touch(data["node"], seq)
    node.rollouts.append({key: data[key] for key in ("steps", "answer", "value", "correct")})


def _on_backpropagated(tree: Tree, data: dict[str, Any], seq: int) -> None:
    value = data["value"]
    for node_id in data["path"]:
        node = tree.touch(node_id, seq)
        node.visits += 1
        node.value_sum += value
        node.value_max = value if node.value_max is None else max(node.value_max, value)
    tree.current_path = list(data["path"])


def _on_pruned(tree: Tree, data: dict[str, Any], seq: int) -> None:
    node = tree.touch(data["node"], seq)
    node.pruned = True
    node.prune_reason = data["reason"]


def _on_backtracked(tree: Tree, data: dict[str, Any], seq: int) -> None:
    tree.touch(data["from_node"], seq)
    tree.touch(data["to_node"], seq)
    tree.backtracks.append({"seq": seq, **data})


def _on_terminal(tree: Tree, data: dict[str, Any], seq: int) -> None:
    node = tree.touch(data["node"], seq)
    node.terminal = True
    node.answer = data["answer"]
    node.correct = data["correct"]


def _on_answer(tree: Tree, data: dict[str, Any], seq: int) -> None:
    tree.chosen = dict(data)
    if data["node"] is not None:
        tree.touch(data["node"], seq)


def _on_spend(tree: Tree, data: dict[str, Any], seq: int) -> None:
    tree.spend = dict(data)


def _on_unscored(tree: Tree, data: dict[str, Any], seq: int) -> None:
    tree.touch(data["node"], seq).unscored.append(data["reason"])


def _ender(status: str, key: str):
    def handler(tree: Tree, data: dict[str, Any], seq: int) -> None:
        tree.status = status
        tree.end_reason = data[key]

    return handler


_HANDLERS = {
    EventKind.SEARCH_STARTED: _on_started,
    EventKind.NODE_ADDED: _on_node_added,
    EventKind.NODE_SCORED: _on_scored,
    EventKind.SELF_EVALUATED: _on_self_evaluated,
    EventKind.SELECTED: _on_selected,
    EventKind.EXPANDED: _on_expanded,
    EventKind.ROLLOUT: _on_rollout,
    EventKind.BACKPROPAGATED: _on_backpropagated,
    EventKind.PRUNED: _on_pruned,
    EventKind.BACKTRACKED: _on_backtracked,
    EventKind.TERMINAL_REACHED: _on_terminal,
    EventKind.ANSWER_CHOSEN: _on_answer,
    EventKind.SPEND: _on_spend,
    EventKind.FINISHED: _ender("finished", "reason"),
    EventKind.CANCELLED: _ender("cancelled", "reason"),
    EventKind.FAILED: _ender("failed", "error"),
    EventKind.UNSCORED: _on_unscored,
}
assert set(_HANDLERS) == set(EventKind), "every event kind needs a tree handler"
