"""The closed event vocabulary every search speaks, and the append-only log that carries it.

Why events: the live UI, the SQLite recorder and replay all follow a search through the same
stream, so a strategy never has to know who is watching, and `Tree.from_events` can rebuild
any tree exactly.  Each kind lists the payload keys it must carry; `make_event` refuses
anything else, which keeps the vocabulary closed and documented in one place.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    """Every event kind a search may emit (the README documents each one)."""

    SEARCH_STARTED = "search_started"
    NODE_ADDED = "node_added"
    NODE_SCORED = "node_scored"
    SELF_EVALUATED = "self_evaluated"
    SELECTED = "selected"
    EXPANDED = "expanded"
    ROLLOUT = "rollout"
    BACKPROPAGATED = "backpropagated"
    PRUNED = "pruned"
    BACKTRACKED = "backtracked"
    TERMINAL_REACHED = "terminal_reached"
    ANSWER_CHOSEN = "answer_chosen"
    SPEND = "spend"
    FINISHED = "finished"
    CANCELLED = "cancelled"
    FAILED = "failed"
    UNSCORED = "unscored"

    @classmethod
    def _missing_(cls, value: object) -> EventKind | None:
        """Old names still parse: logs written before the rename say ``budget`` for ``spend``."""
        return {"budget": cls.SPEND}.get(value) if isinstance(value, str) else None


#: Required payload keys per kind, with a one-line meaning each (rendered into the README).
EVENT_SCHEMA: dict[EventKind, dict[str, str]] = {
    EventKind.SEARCH_STARTED: {
        "problem": "the problem text",
        "task": "task name (arith, countdown, freeform, ...)",
        "strategy": "strategy name from the registry",
        "config": "the strategy config as plain JSON",
        "budget": "max_nodes / max_tokens / max_seconds (null = unlimited)",
        "seed": "the search seed",
        "models": "names of the policy, PRM and outcome verifier",
        "reference": "the known answer, or null",
        "prompt": "the exact text the policy was given at the root (chat template applied when used)",
    },
    EventKind.NODE_ADDED: {
        "node": "new node id",
        "parent": "parent node id",
        "text": "the step text (without the delimiter)",
        "token_count": "tokens the policy generated for this step",
        "logprob": "sum of the step's token log-probabilities under the policy (null: refused, see unscored)",
        "terminal": "true when the step ends the solution",
        "answer": "extracted final answer, or null",
    },
    EventKind.NODE_SCORED: {
        "node": "node id",
        "source": "prm, orm, rollout, self_eval, ...",
        "value": "the node's score from that source",
        "step_scores": "per-step scores along the root path (PRM), or null",
    },
    EventKind.SELF_EVALUATED: {
        "node": "node id",
        "question": "exactly what the policy was asked",
        "p_yes": "P(yes) read from the policy's next-token distribution",
        "words": "what the model said when asked",
    },
    EventKind.SELECTED: {
        "node": "the chosen child",
        "parent": "the node the choice was made at",
        "rule": "uct or puct",
        "c": "exploration constant",
        "parent_visits": "visits of the parent at choice time",
        "candidates": "every child: node, q, prior, visits, exploration, score (best first)",
        "wave": "the parallel wave this descent belongs to (1, 2, ...), or null when parallel == 1",
        "virtual_loss": "virtual visits on the chosen child from earlier picks of the wave (0 when off)",
    },
    EventKind.EXPANDED: {
        "node": "node id that was expanded",
        "children": "ids of the children it received",
        "priors": "PUCT priors of those children (softmax of length-normalised log-probabilities)",
    },
    EventKind.ROLLOUT: {
        "node": "node the rollout started from",
        "steps": "the rollout's steps",
        "answer": "extracted answer or null",
        "value": "the rollout's value",
        "correct": "checker verdict when a checker and reference exist, else null",
    },
    EventKind.BACKPROPAGATED: {
        "path": "node ids from the root to the evaluated leaf",
        "value": "the value added along the path",
    },
    EventKind.PRUNED: {"node": "node id", "reason": "why the node was dropped"},
    EventKind.BACKTRACKED: {
        "from_node": "leaf of the path the search had been extending",
        "to_node": "the node where it turned to another branch",
        "reason": "plain-words reason",
        "breakdown": "the numbers that made the other branch win",
    },
    EventKind.TERMINAL_REACHED: {
        "node": "terminal node id",
        "answer": "extracted answer or null",
        "correct": "checker verdict, or null when there is no checker or reference",
    },
    EventKind.ANSWER_CHOSEN: {
        "answer": "the chosen answer, or null",
        "node": "the node that carries it, or null",
        "method": "argmax, majority, prm_vote, most_visits, best_value",
        "table": "votes or weights per answer, best first",
        "correct": "checker verdict or null",
    },
    EventKind.SPEND: {
        "tokens_generated": "policy tokens generated so far",
        "prm_tokens": "tokens read by reward models",
        "model_calls": "model calls so far",
        "nodes": "nodes in the tree",
        "elapsed_s": "wall seconds since the start",
    },
    EventKind.FINISHED: {"reason": "completed, or which budget stopped the search"},
    EventKind.CANCELLED: {"reason": "who or what asked to stop"},
    EventKind.FAILED: {"error": "error type and message"},
    EventKind.UNSCORED: {
        "node": "node whose number was refused",
        "source": "prm, orm, self_eval, logprob or rollout",
        "model": "name of the model that returned it",
        "step": "1-based step of the node's root path the number belonged to",
        "value": "the refused value as text (nan, inf, -inf, ...)",
        "reason": "the sentence: model, path and step (on_bad_number=unscored)",
    },
}

#: Keys added to a kind after logs were already recorded, with the value they mean when absent:
#: `Event.from_json` fills them in so older exports still load (emitters always send them).
ADDED_KEYS: dict[EventKind, dict[str, Any]] = {
    EventKind.SELECTED: {"wave": None, "virtual_loss": 0},
    EventKind.SEARCH_STARTED: {"prompt": None},
}

#: Keys a kind MAY carry, sent only when they apply (absent otherwise, so logs without them are unchanged).
OPTIONAL_KEYS: dict[EventKind, dict[str, str]] = {
    EventKind.SEARCH_STARTED: {
        "score_name": "what the PRM's step score is called when it is not a PRM score (a value model: "
        "'value-model score')",
    },
    EventKind.SELF_EVALUATED: {
        "doubt": "self_check=recompute with doubt_below: the probability of the least likely token the "
        "policy wrote in the step, when it fell below doubt_below and so failed the recheck (p_yes 0)",
    },
    EventKind.SPEND: {
        "server": "per role, what an inference server reported spending (requests, prompt/completion/cached "
        "tokens, retries); only for models served over HTTP",
    },
}

#: Kinds after which nothing else may be emitted.
FINAL_KINDS = frozenset({EventKind.FINISHED, EventKind.CANCELLED, EventKind.FAILED})


class EventError(ValueError):
    """An event that is not part of the vocabulary or misses required payload."""


@dataclass(frozen=True)
class Event:
    """One immutable entry of the log: sequence number, monotonic time, kind and JSON payload."""

    seq: int
    t: float
    kind: EventKind
    data: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-compatible dict (what the recorder stores and exports carry)."""
        return {"seq": self.seq, "t": self.t, "kind": self.kind.value, "data": dict(self.data)}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Event:
        """Inverse of `to_json`, validating the kind and payload keys."""
        try:
            kind = EventKind(obj["kind"])
            data = {**ADDED_KEYS.get(kind, {}), **obj["data"]}
            return make_event(int(obj["seq"]), float(obj["t"]), kind, data)
        except (KeyError, TypeError, ValueError) as exc:
            raise EventError(f"not a ThoughtScope event: {exc}") from exc


def make_event(seq: int, t: float, kind: EventKind, data: Mapping[str, Any]) -> Event:
    """Build an event after checking that its payload has exactly the documented keys."""
    required = EVENT_SCHEMA[kind]
    missing = [key for key in required if key not in data]
    extra = [key for key in data if key not in required and key not in OPTIONAL_KEYS.get(kind, {})]
    if missing or extra:
        raise EventError(f"{kind.value} event: missing {missing}, unexpected {extra}")
    return Event(seq=seq, t=t, kind=kind, data=_plain_json(dict(data)))


def _plain_json(data: dict[str, Any]) -> dict[str, Any]:
    """Round-trip through json so payloads can only hold plain JSON (no tuples, numpy, NaN)."""
    return json.loads(json.dumps(data, allow_nan=False))


EventSink = Callable[[Event], None]


@dataclass
class EventLog:
    """Append-only, thread-safe log that stamps events and fans them out to sinks.

    Sinks run synchronously in the search thread; slow consumers (the SQLite recorder)
    queue internally so they never hold the search up.
    """

    clock: Callable[[], float] = time.monotonic
    sinks: list[EventSink] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _t0: float | None = None

    def emit(self, kind: EventKind, **data: Any) -> Event:
        """Append one event and notify every sink."""
        with self._lock:
            if self.events and self.events[-1].kind in FINAL_KINDS:
                raise EventError(f"search already ended; refusing {kind.value}")
            now = self.clock()
            if self._t0 is None:
                self._t0 = now
            event = make_event(len(self.events), round(now - self._t0, 6), kind, data)
            self.events.append(event)
        for sink in self.sinks:
            sink(event)
        return event

    def __len__(self) -> int:
        return len(self.events)

    def to_json(self) -> list[dict[str, Any]]:
        return [event.to_json() for event in self.events]


def events_from_json(items: Iterable[Mapping[str, Any]]) -> list[Event]:
    """Parse a JSON list of events, checking that sequence numbers run 0, 1, 2, ..."""
    events = [Event.from_json(item) for item in items]
    for expected, event in enumerate(events):
        if event.seq != expected:
            raise EventError(f"event sequence broken at position {expected}: seq {event.seq}")
    return events


def comparable(events: Iterable[Event]) -> list[dict[str, Any]]:
    """Events with wall-clock fields removed, for determinism and golden comparisons."""
    out = []
    for event in events:
        obj = event.to_json()
        obj.pop("t")
        if event.kind is EventKind.SPEND:
            obj["data"].pop("elapsed_s")
        out.append(obj)
    return out
