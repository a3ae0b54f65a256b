"""Export and import of runs, and graph export through networkx.

The JSON format is versioned (``{"format": "thoughtscope-run", "version": 1, "run": {...},
"events": [...]}``) and self-contained: the events alone rebuild the tree, the run block
carries what the events do not (name, tags, models' paths and weight hashes, timestamps).

Import trusts nothing: the document is validated with pydantic, the events with
`events_from_json` (closed vocabulary, exact payload keys, seq 0, 1, 2, ...), and a trial
fold through `Tree.from_events` must succeed and agree with the run block before a single
row is written; the rows are then written in one transaction, so a bad file adds nothing.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import networkx as nx
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Connection, insert
from sqlalchemy.exc import SQLAlchemyError

from search.events import FINAL_KINDS, Event, EventError, EventKind, events_from_json
from search.tree import Tree
from storage.db import write
from storage.errors import StorageError
from storage.rows import (
    END_STATUS,
    event_row,
    insert_events,
    models_column,
    node_fields,
    node_rows,
    run_progress_fields,
)
from storage.schema import NodeRow, Run, RunStatus, RunTag, utcnow
from storage.store import RunDatabase

FORMAT = "thoughtscope-run"
VERSION = 1
GRAPH_FORMATS = ("graphml", "node-link")


class RunBlock(BaseModel):
    """The `run` block of an export (fields the events do not carry, plus a summary)."""

    model_config = ConfigDict(extra="ignore")

    id: int | None = None
    name: str | None = Field(default=None, max_length=200)
    tags: list[str] = Field(default_factory=list)
    created: datetime | None = None
    finished_at: datetime | None = None
    task: str
    problem: str
    strategy: str
    config: dict[str, Any]
    seed: int
    reference: str | None = None
    limits: dict[str, Any] = Field(default_factory=dict)
    models: dict[str, Any] = Field(default_factory=dict)
    status: RunStatus
    end_reason: str | None = None
    answer: str | None = None
    correct: bool | None = None
    #: What the search spent; files written before the rename call it "budget".
    spend: dict[str, Any] | None = Field(default=None, validation_alias=AliasChoices("spend", "budget"))
    error: str | None = None


class ExportDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["thoughtscope-run"]
    version: Literal[1]
    run: RunBlock
    events: list[dict[str, Any]] = Field(min_length=1)


# ---------------------------------------------------------------------- export
def export_run(store: RunDatabase, run_id: int) -> dict[str, Any]:
    summary = store.get_run(run_id)
    events = store.events(run_id)
    run = summary.to_json()
    for key in ("event_count", "node_count", "sweep_id"):
        run.pop(key)
    return {"format": FORMAT, "version": VERSION, "run": run, "events": [event.to_json() for event in events]}


# ---------------------------------------------------------------------- import
def _checked(source: Mapping[str, Any] | str | Path) -> tuple[ExportDocument, list[Event], Tree]:
    """Every check an import makes, without writing: the document, its events and its tree."""
    document = _validated(_read(source))
    events = _validated_events(document)
    tree = _trial_fold(events)
    _check_agreement(document.run, events)
    return document, events, tree


def import_files(store: RunDatabase, paths: Sequence[str | Path]) -> list[tuple[Path, int | None, str | None]]:
    """Import several export files: all are checked first, then each is imported on its own.

    Raises StorageError naming every bad file (and imports nothing) when any file fails the
    checks; after that, a file whose write fails gets its error in its result and the others
    still go in.  Returns (path, new run id or None, error or None) per file, in order.
    """
    bad = []
    for path in map(Path, paths):
        try:
            _checked(path)
        except StorageError as exc:
            bad.append(f"{path}: {exc}")
    if bad:
        listed = "\n  ".join(bad)
        raise StorageError(f"{len(bad)} of {len(paths)} file(s) cannot be imported; nothing was imported.\n  {listed}")
    results: list[tuple[Path, int | None, str | None]] = []
    for path in map(Path, paths):
        try:
            results.append((path, import_run(store, path), None))
        except StorageError as exc:
            results.append((path, None, str(exc)))
    return results


def import_run(store: RunDatabase, source: Mapping[str, Any] | str | Path) -> int:
    document, events, tree = _checked(source)
    run = document.run
    tags = store.clean_tags(run.tags)
    status = "interrupted" if run.status == "running" else run.status
    values = {
        "created": run.created if run.created and run.created.tzinfo else utcnow(),
        "name": run.name,
        "task": run.task,
        "problem": run.problem,
        "strategy": run.strategy,
        "config": run.config,
        "seed": run.seed,
        "reference": run.reference,
        "limits": run.limits,
        "models": models_column({}, run.models),
        **run_progress_fields(tree, len(events)),
        "status": status,
        "end_reason": run.end_reason or tree.end_reason,
        "finished_at": run.finished_at if run.finished_at and run.finished_at.tzinfo else utcnow(),
    }

    def work(conn: Connection) -> int:
        run_id = conn.execute(insert(Run).values(**values).returning(Run.id)).scalar_one()
        if tags:
            conn.execute(insert(RunTag), [{"run_id": run_id, "tag": tag} for tag in tags])
        rows = [event_row(run_id, event) for event in events]
        for start in range(0, len(rows), 2000):
            insert_events(conn, rows[start : start + 2000])
        conn.execute(insert(NodeRow), node_rows(run_id, tree))
        return run_id

    try:
        return write(store.engine, work)
    except SQLAlchemyError as exc:
        raise StorageError(f"could not import into {store.where}: {getattr(exc, 'orig', None) or exc}") from None


def _read(source: Mapping[str, Any] | str | Path) -> Any:
    """A file path is read and parsed; anything else is taken as the parsed document."""
    if not isinstance(source, str | os.PathLike):
        return source
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StorageError(f"cannot read {path}: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        hint = " (the file looks truncated)" if exc.pos >= len(text.rstrip()) - 1 else ""
        raise StorageError(f"{path} is not valid JSON{hint}: {exc.msg} at line {exc.lineno}.") from None


def _validated(obj: Any) -> ExportDocument:
    if not isinstance(obj, Mapping) or obj.get("format") != FORMAT:
        raise StorageError(f"not a ThoughtScope run export (expected a JSON object with format {FORMAT!r}).")
    version = obj.get("version")
    if isinstance(version, int) and version > VERSION:
        raise StorageError(
            f"this export has format version {version}, written by a newer ThoughtScope; "
            f"this one reads version {VERSION}."
        )
    try:
        return ExportDocument.model_validate(obj)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc'])) or 'document'}: {err['msg']}" for err in exc.errors()[:4]
        )
        raise StorageError(f"invalid run export: {problems}.") from None


def _validated_events(document: ExportDocument) -> list[Event]:
    try:
        events = events_from_json(document.events)
    except (EventError, TypeError, ValueError) as exc:
        raise StorageError(f"invalid events in the export: {exc}.") from None
    if events[0].kind is not EventKind.SEARCH_STARTED:
        raise StorageError(
            f"invalid events in the export: the log must begin with search_started, not {events[0].kind}."
        )
    for event in events[:-1]:
        if event.kind in FINAL_KINDS:
            raise StorageError(
                f"invalid events in the export: the log ends at event {event.seq} but continues after it."
            )
    return events


def _trial_fold(events: list[Event]) -> Tree:
    tree = Tree()
    for event in events:
        try:
            tree.apply(event)
        except Exception as exc:  # noqa: BLE001 - any failure means the log does not describe a tree
            raise StorageError(
                f"the events do not rebuild a tree: event {event.seq} ({event.kind.value}) failed with "
                f"{type(exc).__name__}: {exc}."
            ) from None
    return tree


def _check_agreement(run: RunBlock, events: list[Event]) -> None:
    started = events[0].data
    for key in ("task", "problem", "strategy", "seed"):
        if getattr(run, key) != started[key]:
            raise StorageError(f"the run block's {key} disagrees with the search_started event; the file was edited.")
    last = events[-1].kind
    if run.status in ("finished", "cancelled", "failed") and END_STATUS.get(last) != run.status:
        raise StorageError(
            f"the run is marked {run.status} but its log stops at event {events[-1].seq} ({last.value}) "
            "without the closing event: the export is truncated."
        )
    if last in FINAL_KINDS and run.status != END_STATUS[last]:
        raise StorageError(f"the run is marked {run.status} but its log ends with {last.value}.")


# ---------------------------------------------------------------------- graphs
def export_graph(store: RunDatabase, run_id: int, fmt: str) -> str:
    if fmt not in GRAPH_FORMATS:
        raise StorageError(f"graph format must be one of {', '.join(GRAPH_FORMATS)} (got {fmt!r}).")
    summary = store.get_run(run_id)
    tree = store.tree(run_id)
    graph = tree_graph(tree, flat=fmt == "graphml")
    graph.graph.update(
        _scalars(
            xml=fmt == "graphml",
            attrs={
                "run_id": summary.id,
                "name": summary.name,
                "task": summary.task,
                "strategy": summary.strategy,
                "problem": summary.problem,
                "status": summary.status,
                "answer": summary.answer,
                "correct": summary.correct,
            }
        )
    )
    if fmt == "graphml":
        return "\n".join(nx.generate_graphml(graph)) + "\n"
    return json.dumps(nx.node_link_data(graph, edges="edges"), indent=1, allow_nan=False) + "\n"


def tree_graph(tree: Tree, *, flat: bool) -> nx.DiGraph:
    """A DiGraph of the tree; `flat` turns every attribute into a GraphML-safe scalar."""
    graph = nx.DiGraph()
    for node in tree:
        attrs: dict[str, Any] = {**node_fields(node), "q_mean": node.q_mean}
        if flat:
            attrs.update({f"score_{key}": value for key, value in node.scores.items()})
            attrs.update({f"step_scores_{key}": json.dumps(value) for key, value in node.step_scores.items()})
            if node.self_eval:
                attrs["self_eval_p_yes"] = node.self_eval.get("p_yes")
            attrs = _scalars(attrs)
        else:
            attrs.update(scores=dict(node.scores), step_scores=dict(node.step_scores), self_eval=node.self_eval)
        graph.add_node(node.id, **attrs)
        if node.parent is not None:
            graph.add_edge(node.parent, node.id)
    return graph


def _scalars(attrs: Mapping[str, Any], *, xml: bool = True) -> dict[str, Any]:
    """Drop None and non-finite values (GraphML has no null), stringify anything else odd, and
    (for GraphML, `xml`) make every string XML-safe with `xml_safe`."""
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            continue
        value = value if isinstance(value, bool | int | float | str) else json.dumps(value)
        out[key] = xml_safe(value) if xml and isinstance(value, str) else value
    return out


#: What XML 1.0 cannot hold (C0 controls but tab and newline, surrogates, U+FFFE/U+FFFF), plus
#: carriage return (parsers turn it into a newline), plus a backslash that starts ``x{``.
_XML_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\ud800-\udfff\ufffe\uffff]|\\(?=x\{)")
_XML_ESCAPE = re.compile(r"\\x\{([0-9A-F]{1,6})\}")


def xml_safe(text: str) -> str:
    r"""Write each character XML cannot hold as ``\x{HEX}`` (``\x01`` -> ``\x{1}``, CR -> ``\x{D}``).

    A literal backslash that would start such an escape is written ``\x{5C}``, so the mapping is
    reversible: `xml_restore` gives the original text back exactly.  Other text is unchanged.
    """
    return _XML_UNSAFE.sub(lambda m: f"\\x{{{ord(m.group()):X}}}", text)


def xml_restore(text: str) -> str:
    """Inverse of `xml_safe` (for readers of our GraphML files)."""
    return _XML_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
