"""Conversions between engine objects (Event, Tree) and table rows, shared by recorder,
store, import and replay so every path writes and reads exactly the same shapes."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, insert

from search.events import Event, EventKind
from search.request import CHOICE_KEY
from search.tree import Node, Tree
from storage.schema import EventRow

_DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode

#: The status a run ends in, per closing event.
END_STATUS = {EventKind.FINISHED: "finished", EventKind.CANCELLED: "cancelled", EventKind.FAILED: "failed"}


_EVENT_COLUMNS = ("run_id", "seq", "t", "kind", "data")
_SQLITE_INSERT = f"INSERT INTO events ({', '.join(_EVENT_COLUMNS)}) VALUES (?, ?, ?, ?, ?)"


def event_row(run_id: int, event: Event) -> tuple[int, int, float, str, str]:
    return (run_id, event.seq, event.t, event.kind.value, _DUMPS(event.data))


def insert_events(conn: Connection, rows: list[tuple[int, int, float, str, str]]) -> None:
    """Append event rows; on SQLite straight through the driver's executemany.

    The recorder's hot path: SQLAlchemy's per-row parameter processing costs about as much
    as the insert itself, and these rows are plain tuples of str/int/float anyway.
    """
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(_SQLITE_INSERT, rows)
    else:
        conn.execute(insert(EventRow), [dict(zip(_EVENT_COLUMNS, row, strict=True)) for row in rows])


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building many long-lived objects at once.

    Decoding or indexing a 100k-event log allocates millions of containers; with the GC on,
    every few thousand allocations start a collection that walks all the objects built so
    far, which more than doubles the time.  Nothing built here is cyclic garbage, so the
    collection simply runs later.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def decode_events(rows: Iterable[tuple[int, float, str, str]]) -> list[Event]:
    """Rebuild events from their rows without re-validating them.

    Rows are only ever written from validated events (live, or imported through
    `events_from_json`), so the plain constructor is safe; the payloads are parsed in one
    `json.loads` call over the whole log, which is much faster than one call per event.
    """
    rows = list(rows)
    kinds = {kind.value: kind for kind in EventKind}
    with gc_paused():
        payloads = json.loads("[" + ",".join(row[3] for row in rows) + "]")
        return [
            Event(seq=seq, t=t, kind=kinds[kind], data=data)
            for (seq, t, kind, _), data in zip(rows, payloads, strict=True)
        ]


def run_start_fields(started: Event) -> dict[str, Any]:
    """Run columns taken from a search_started event."""
    data = started.data
    return {
        "task": data["task"],
        "problem": data["problem"],
        "strategy": data["strategy"],
        "config": dict(data["config"]),
        "seed": int(data["seed"]),
        "reference": data["reference"],
        "limits": dict(data["budget"]),
    }


def models_column(names: Mapping[str, Any], info: Mapping[str, Any] | None) -> dict[str, Any]:
    """Per role: name, path (local dir or hub id) and weights hash, from the event's names
    overlaid with whatever the caller knows (`models_info`); its `choice` entry (the model choice
    the run was launched with, search.request.CHOICE_KEY) is kept as it is."""
    out: dict[str, Any] = {}
    for role, name in names.items():
        if name is not None:
            out[role] = {"name": name, "path": None, "weights_hash": None}
    for role, extra in (info or {}).items():
        if role == CHOICE_KEY:
            out[role] = dict(extra)
            continue
        merged = dict(out.get(role, {"name": None, "path": None, "weights_hash": None}))
        merged.update(extra if isinstance(extra, Mapping) else {"name": extra})
        out[role] = merged
    return json.loads(_DUMPS(out))


def run_progress_fields(tree: Tree, event_count: int) -> dict[str, Any]:
    """Run columns that follow the log: spend, size, and how it ended (once it has)."""
    fields: dict[str, Any] = {
        "event_count": event_count,
        "node_count": max(len(tree) - 1, 0),
        "spend": dict(tree.spend) or None,
    }
    if tree.status in ("finished", "cancelled", "failed"):
        chosen = tree.chosen or {}
        fields.update(
            status=tree.status,
            end_reason=tree.end_reason,
            answer=chosen.get("answer"),
            correct=chosen.get("correct"),
            error=tree.end_reason if tree.status == "failed" else None,
        )
    return fields


def node_fields(node: Node) -> dict[str, Any]:
    """A node's scalar facts, shared by the nodes table and the graph exports."""
    return {
        "depth": node.depth,
        "text": node.text,
        "token_count": node.token_count,
        "logprob": node.logprob,
        "terminal": node.terminal,
        "answer": node.answer,
        "correct": node.correct,
        "pruned": node.pruned,
        "prune_reason": node.prune_reason,
        "expanded": node.expanded,
        "prior": node.prior,
        "visits": node.visits,
        "value_max": node.value_max,
    }


def node_rows(run_id: int, tree: Tree) -> list[dict[str, Any]]:
    return [
        {
            "run_id": run_id,
            "node_id": node.id,
            "parent": node.parent,
            **node_fields(node),
            "value_sum": node.value_sum,
            "scores": dict(node.scores),
            "step_scores": {key: list(values) for key, values in node.step_scores.items()},
            "self_eval": node.self_eval,
        }
        for node in tree
    ]
