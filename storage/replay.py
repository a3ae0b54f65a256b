"""Replay: the tree as it stood after any event k, in milliseconds, for runs of any length.

Why not fold from the start each time: a 100k-event MCTS log takes ~0.3 s to fold, too slow
for a scrubber.  Why not deep-copy the tree every N events: the MCTS tree's append-only
histories (every node's `event_seqs`, the `backtracks` list) grow with the log, so full
copies cost O(n) each and O(n^2) memory in total.

Instead one fold at load takes copy-on-write snapshots every `every` events:

* a node's small state (scores, visits, flags) is captured only when an event touched it
  since the previous snapshot (an event names every node it changes: `node`, `parent`,
  `children`, `path`, `candidates`, ...); untouched nodes share the earlier capture;
* append-only lists (`children`, `rollouts`, `event_seqs`, `backtracks`) are captured as
  their *length*; restoring slices the fully folded tree's list, which starts with exactly
  that prefix because the fold only ever appends to them.

`tree_at(k)` restores snapshot ``k // every`` and folds at most ``every - 1`` events, so a
seek costs O(nodes) plus a short fold, whatever the log length.  The returned tree is a
fresh object the caller may keep folding (the live UI does); the small records inside it
(rollout and backtrack entries, step-score lists, meta) are shared read-only with the cache.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from search.events import Event
from search.tree import ROOT_ID, Node, Tree
from storage.rows import gc_paused
from storage.store import RunDatabase, RunSummary

SNAPSHOT_EVERY = 500
_NODE_APPEND_ONLY = ("children", "rollouts", "event_seqs")
_NODE_COPY = ("scores", "step_scores", "self_eval")
_TREE_APPEND_ONLY = ("backtracks",)
_TREE_COPY = ("meta", "chosen", "spend", "current_path")
_NODE_KEYS = frozenset({"node", "parent", "from_node", "to_node"})
_NODE_LIST_KEYS = frozenset({"children", "path"})


def run_version(run: RunSummary) -> tuple[int, str, str, int]:
    """What any cache of a run's events must be keyed by: (id, created, status, event_count).

    The id alone is not enough: a run being recorded grows (event_count) and ends (status),
    and a database from before migration 0003 could hand a deleted run's id to a new run
    (created tells them apart).  Pages pass this to `st.cache_resource` so a cached replay is
    rebuilt exactly when the run changed.
    """
    return (run.id, run.created.isoformat(), run.status, run.event_count)


@dataclass(frozen=True)
class _Snapshot:
    tree_state: dict[str, Any]
    node_count: int
    node_states: list[dict[str, Any]]


def referenced_nodes(data: Mapping[str, Any], out: set[int]) -> None:
    """Every node id an event payload names (recursing into candidates and breakdowns)."""
    for key, value in data.items():
        if key in _NODE_KEYS and isinstance(value, int):
            out.add(value)
        elif key in _NODE_LIST_KEYS and isinstance(value, list):
            out.update(v for v in value if isinstance(v, int))
        elif isinstance(value, Mapping):
            referenced_nodes(value, out)
        elif isinstance(value, list) and value and isinstance(value[0], Mapping):
            for item in value:
                referenced_nodes(item, out)


class Replay:
    """A run's event log plus fast random access to its tree after any prefix."""

    def __init__(
        self, events: Iterable[Event], *, every: int = SNAPSHOT_EVERY, run: RunSummary | None = None
    ) -> None:
        if every < 1:
            raise ValueError("snapshot interval must be at least 1")
        self.events: list[Event] = list(events)
        self.run = run
        self._every = every
        self._order: list[int] = []
        self._snapshots: list[_Snapshot] = []
        with gc_paused():
            self._final = self._build()

    @classmethod
    def load(cls, store: RunDatabase, run_id: int, *, every: int = SNAPSHOT_EVERY) -> Replay:
        """Read a run's events from the store and index them for seeking."""
        return cls(store.events(run_id), every=every, run=store.get_run(run_id))

    def __len__(self) -> int:
        return len(self.events)

    # ------------------------------------------------------------------ seeking
    def tree_at(self, k: int) -> Tree:
        """The tree after the first k events (0 <= k <= len(self)); a fresh object each call."""
        if not 0 <= k <= len(self.events):
            raise IndexError(f"event index {k} is outside 0..{len(self.events)}")
        index = k // self._every
        with gc_paused():
            tree = self._restore(self._snapshots[index])
            for event in self.events[index * self._every : k]:
                tree.apply(event)
        return tree

    @property
    def final(self) -> Tree:
        return self.tree_at(len(self.events))

    # ------------------------------------------------------------------ building
    def _build(self) -> Tree:
        tree = Tree()
        positions: dict[int, int] = {}
        states: list[dict[str, Any]] = []
        dirty: set[int] = set()
        self._snapshots.append(self._snapshot(tree, positions, states, dirty))
        for count, event in enumerate(self.events, start=1):
            tree.apply(event)
            touched: set[int] = set()
            referenced_nodes(event.data, touched)
            dirty |= touched
            if len(tree.nodes) != len(self._order):
                self._track_new_nodes(tree, positions, touched, dirty)
            if count % self._every == 0:
                states = self._snapshots[-1].node_states
                self._snapshots.append(self._snapshot(tree, positions, states, dirty))
                dirty.clear()
        return tree

    def _track_new_nodes(
        self, tree: Tree, positions: dict[int, int], touched: set[int], dirty: set[int]
    ) -> None:
        """Record node ids in insertion order (cheaply when the event named the one new node)."""
        new = [n for n in touched | {ROOT_ID} if n in tree.nodes and n not in positions]
        if len(new) != 1 or len(tree.nodes) != len(self._order) + 1:
            new = [n for n in tree.nodes if n not in positions]
        for node_id in new:
            positions[node_id] = len(self._order)
            self._order.append(node_id)
            dirty.add(node_id)

    def _snapshot(
        self, tree: Tree, positions: dict[int, int], previous: list[dict[str, Any]], dirty: set[int]
    ) -> _Snapshot:
        states = previous + [{}] * (len(self._order) - len(previous))
        for node_id in dirty:
            if node_id in positions:
                states[positions[node_id]] = _capture_node(tree.nodes[node_id])
        return _Snapshot(_capture_tree(tree), len(self._order), states)

    def _restore(self, snapshot: _Snapshot) -> Tree:
        final_nodes = self._final.nodes
        nodes: dict[int, Node] = {}
        for node_id, state in zip(self._order[: snapshot.node_count], snapshot.node_states, strict=False):
            nodes[node_id] = _restore_node(state, final_nodes[node_id])
        tree = Tree.__new__(Tree)
        fields = dict(snapshot.tree_state)
        for name in _TREE_APPEND_ONLY:
            fields[name] = getattr(self._final, name)[: fields[name]]
        for name in _TREE_COPY:
            fields[name] = _shallow(fields[name])
        fields["nodes"] = nodes
        tree.__dict__.update(fields)
        return tree


def _shallow(value: Any) -> Any:
    return value.copy() if isinstance(value, dict | list) else value


def _capture_node(node: Node) -> dict[str, Any]:
    state = dict(node.__dict__)
    for name in _NODE_APPEND_ONLY:
        state[name] = len(state[name])
    for name in _NODE_COPY:
        state[name] = _shallow(state[name])
    return state


def _restore_node(state: dict[str, Any], final: Node) -> Node:
    """Hot path of a seek (once per node): unrolled rather than looping over field names."""
    node = Node.__new__(Node)
    fields = node.__dict__
    fields.update(state)
    done = final.__dict__
    fields["children"] = done["children"][: state["children"]]
    fields["rollouts"] = done["rollouts"][: state["rollouts"]]
    fields["event_seqs"] = done["event_seqs"][: state["event_seqs"]]
    fields["scores"] = state["scores"].copy()
    fields["step_scores"] = state["step_scores"].copy()
    if state["self_eval"] is not None:
        fields["self_eval"] = state["self_eval"].copy()
    return node


def _capture_tree(tree: Tree) -> dict[str, Any]:
    state = {key: value for key, value in tree.__dict__.items() if key != "nodes"}
    for name in _TREE_APPEND_ONLY:
        state[name] = len(state[name])
    for name in _TREE_COPY:
        state[name] = _shallow(state[name])
    return state


def replay_events(events: Sequence[Event], *, every: int = SNAPSHOT_EVERY) -> Replay:
    """Index an in-memory log (e.g. a live search's events) for seeking."""
    return Replay(events, every=every)
