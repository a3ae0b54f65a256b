"""The recorder: a search sink that persists every event while the search runs.

Why a queue and a writer thread: sinks run synchronously in the search thread, so the
recorder's ``__call__`` only puts the event on an in-memory queue (well under a
microsecond) and returns.  A background thread commits the queue in batches, at least
every `FLUSH_S` seconds or `BATCH` events, whichever comes first; a closing event
(finished / cancelled / failed) is committed at once together with the run's outcome and
its materialised nodes.  The one synchronous write is the run row, created when
`search_started` arrives, so `recorder.run_id` is known before the first node exists.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from queue import Empty, SimpleQueue
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, delete, insert, update
from sqlalchemy.exc import SQLAlchemyError

from search.events import FINAL_KINDS, Event, EventKind
from search.tree import Tree
from storage import liveness
from storage.db import write
from storage.errors import StorageError
from storage.rows import (
    END_STATUS,
    event_row,
    insert_events,
    models_column,
    node_rows,
    run_progress_fields,
    run_start_fields,
)
from storage.schema import NodeRow, Run, RunTag, utcnow
from storage.store import RunDatabase

FLUSH_S = 0.25
BATCH = 500
_STOP = object()
_open_recorders: weakref.WeakSet[Recorder] = weakref.WeakSet()


class Recorder:
    """Records one search into a store; pass it in ``run_search(..., sinks=[recorder])``."""

    def __init__(
        self,
        store: RunDatabase,
        *,
        name: str | None = None,
        tags: Iterable[str] = (),
        models_info: Mapping[str, Any] | None = None,
        sweep_id: int | None = None,
    ) -> None:
        self._store = store
        self._name = name
        self._tags = store.clean_tags(tags)
        self._models_info = dict(models_info or {})
        self._sweep_id = sweep_id
        self.run_id: int | None = None
        self._queue: SimpleQueue[Any] = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._tree = Tree()
        self._fold_ok = True
        self._ended = False
        self._closed = False
        self._error: BaseException | None = None
        self._count = 0

    # ------------------------------------------------------------------ search thread
    def __call__(self, event: Event) -> None:
        """Sink entry point: create the run on search_started, then only enqueue."""
        if self._closed:
            return
        if event.kind is EventKind.SEARCH_STARTED:
            if self.run_id is not None:
                raise StorageError("a recorder records one search; make a new one per run_search call.")
            self.run_id = self._create_run(event)
            liveness.register(self._store.key, self.run_id)
            _open_recorders.add(self)
            self._thread = threading.Thread(
                target=self._write_loop, name=f"recorder-run-{self.run_id}", daemon=True
            )
            self._thread.start()
        elif self.run_id is None:
            self._error = StorageError(f"the first event must be search_started, got {event.kind.value}")
            return
        self._queue.put(event)

    def _create_run(self, started: Event) -> int:
        host, pid, token = liveness.me()
        now = utcnow()
        values = {
            **run_start_fields(started),
            "created": now,
            "name": self._name,
            "models": models_column(started.data["models"], self._models_info),
            "status": "running",
            "event_count": 0,
            "node_count": 0,
            "heartbeat": now,
            "writer_host": host,
            "writer_pid": pid,
            "writer_token": token,
            "sweep_id": self._sweep_id,
        }

        def work(conn: Connection) -> int:
            run_id = conn.execute(insert(Run).values(**values).returning(Run.id)).scalar_one()
            if self._tags:
                conn.execute(insert(RunTag), [{"run_id": run_id, "tag": tag} for tag in self._tags])
            return run_id

        try:
            return write(self._store.engine, work)
        except SQLAlchemyError as exc:
            detail = getattr(exc, "orig", None) or exc
            raise StorageError(f"cannot record the run in {self._store.where}: {detail}") from None

    # ------------------------------------------------------------------ writer thread
    def _write_loop(self) -> None:
        try:
            self._write_until_stopped()
        except BaseException as exc:  # noqa: BLE001 - reported by close(); the search itself carries on
            self._error = exc

    def _write_until_stopped(self) -> None:
        pending: list[Event] = []
        first_at = last_write = time.monotonic()
        stopping = False
        while not stopping:
            wait = FLUSH_S - (time.monotonic() - first_at) if pending else liveness.HEARTBEAT_S
            was_empty = not pending
            stopping = self._collect(pending, max(wait, 0.0))
            now = time.monotonic()
            if was_empty and pending:
                first_at = now
            due = stopping or len(pending) >= BATCH or now - first_at >= FLUSH_S
            if pending and (due or pending[-1].kind in FINAL_KINDS):
                self._flush(pending)
                pending = []
                last_write = now
            elif not pending and now - last_write >= liveness.HEARTBEAT_S:
                self._heartbeat()
                last_write = now
        if not self._ended:
            self._mark_unfinished()

    def _collect(self, pending: list[Event], wait: float) -> bool:
        """Move queued events into `pending` (up to a batch); True once close() was asked."""
        try:
            item = self._queue.get(timeout=wait)
        except Empty:
            return False
        while True:
            if item is _STOP:
                return True
            pending.append(item)
            if len(pending) >= BATCH or item.kind in FINAL_KINDS:
                return False
            try:
                item = self._queue.get_nowait()
            except Empty:
                return False

    def _fold(self, events: list[Event]) -> None:
        if not self._fold_ok:
            return
        try:
            for event in events:
                self._tree.apply(event)
        except Exception:  # noqa: BLE001 - a broken tree must never stop the events from being saved
            self._fold_ok = False

    def _flush(self, events: list[Event]) -> None:
        assert self.run_id is not None
        run_id = self.run_id
        self._count += len(events)
        self._fold(events)
        ended = events[-1].kind in FINAL_KINDS
        rows = [event_row(run_id, event) for event in events]
        values = {**run_progress_fields(self._tree, self._count), "heartbeat": utcnow()}
        if ended:
            values.setdefault("status", END_STATUS[events[-1].kind])
            values.update(finished_at=utcnow())
            self._ended = True

        def work(conn: Connection) -> None:
            insert_events(conn, rows)
            conn.execute(update(Run).where(Run.id == run_id).values(**values))
            if ended and self._fold_ok:
                conn.execute(delete(NodeRow).where(NodeRow.run_id == run_id))
                conn.execute(insert(NodeRow), node_rows(run_id, self._tree))

        self._guarded(work)

    def _heartbeat(self) -> None:
        run_id = self.run_id
        self._guarded(
            lambda conn: conn.execute(update(Run).where(Run.id == run_id).values(heartbeat=utcnow()))
        )

    def _mark_unfinished(self) -> None:
        """Closed before the search ended (or its last write failed): the run is interrupted."""
        run_id = self.run_id
        values = {
            **run_progress_fields(self._tree, self._count),
            "status": "interrupted",
            "end_reason": "the recorder was closed before the search ended",
            "finished_at": utcnow(),
        }

        def work(conn: Connection) -> None:
            conn.execute(update(Run).where(Run.id == run_id, Run.status == "running").values(**values))
            if self._fold_ok:
                conn.execute(delete(NodeRow).where(NodeRow.run_id == run_id))
                conn.execute(insert(NodeRow), node_rows(run_id, self._tree))

        self._guarded(work)

    def _guarded(self, work: Any) -> None:
        """Write, but after the first failure keep draining without writing (and report it)."""
        if self._error is not None:
            return
        try:
            write(self._store.engine, work)
        except Exception as exc:  # noqa: BLE001 - reported to the caller
            self._error = exc

    # ------------------------------------------------------------------ closing
    def close(self, timeout: float | None = None) -> None:
        """Drain the queue, commit everything and stop the writer; raises if a write failed."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout)
        if self.run_id is not None:
            liveness.unregister(self._store.key, self.run_id)
        _open_recorders.discard(self)
        if self._error is not None:
            error = self._error
            detail = getattr(error, "orig", None) or error
            raise StorageError(f"recording run {self.run_id} to {self._store.where} failed: {detail}")

    @property
    def error(self) -> BaseException | None:
        """The first write error, if any (the search itself is never interrupted by it)."""
        return self._error

    def __enter__(self) -> Recorder:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.close()
        except StorageError:
            if exc is None:
                raise


@atexit.register
def _drain_open_recorders() -> None:
    """At interpreter exit, commit what open recorders still hold (a crash cannot, by design)."""
    for recorder in list(_open_recorders):
        with contextlib.suppress(Exception):  # best effort at shutdown
            recorder.close(timeout=10)
