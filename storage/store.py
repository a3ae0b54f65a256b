"""`RunDatabase`: the run database's rows, at the bottom of `storage/`.

It imports no other part of storage that uses it: the recorder, replay and exchange modules
build on it, and `storage.facade.Store` (what the CLI and the app open) adds them on top, so
imports run one way (db/schema/rows -> store -> recorder/replay/exchange -> facade).

Opening a store resolves the location (see `storage.db`), refuses anything that is not a
ThoughtScope database of a schema it knows without touching it, applies pending migrations,
and marks runs whose recording process died as `interrupted` (see `storage.liveness`).
Every method raises `StorageError` with a readable message, never a driver exception.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, ParamSpec, Self, TypeVar

from sqlalchemy import Connection, Engine, delete, func, insert, inspect, or_, select, update
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from search.events import Event
from search.tree import Tree
from storage import liveness, migrate
from storage.db import (
    check_sqlite_file,
    describe,
    is_sqlite,
    make_engine,
    resolve_url,
    sqlite_tables_readonly,
    write,
)
from storage.errors import StorageError
from storage.rows import decode_events, gc_paused, node_rows, run_progress_fields
from storage.schema import RUN_STATUSES, EventRow, NodeRow, Run, RunTag, Sweep, utcnow

P = ParamSpec("P")
T = TypeVar("T")
MAX_TAG = 64
_SQLITE_EVENTS = "SELECT seq, t, kind, data FROM events WHERE run_id = ? ORDER BY seq"


@dataclass(frozen=True)
class RunSummary:
    """One row of `runs` with its tags: everything a listing shows, without the events."""

    id: int
    created: datetime
    name: str | None
    tags: tuple[str, ...]
    task: str
    problem: str
    strategy: str
    config: dict[str, Any]
    seed: int
    reference: str | None
    limits: dict[str, Any]
    models: dict[str, Any]
    status: str
    end_reason: str | None
    answer: str | None
    correct: bool | None
    spend: dict[str, Any] | None
    error: str | None
    event_count: int
    node_count: int
    finished_at: datetime | None
    sweep_id: int | None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["tags"] = list(self.tags)
        for key in ("created", "finished_at"):
            out[key] = out[key].isoformat() if out[key] else None
        return out


_SUMMARY_COLUMNS = [name for name in RunSummary.__dataclass_fields__ if name != "tags"]


def _db_errors(method: Callable[P, T]) -> Callable[P, T]:
    """Translate driver errors into StorageError naming the database."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return method(*args, **kwargs)
        except SQLAlchemyError as exc:
            store = args[0]
            detail = getattr(exc, "orig", None) or exc
            raise StorageError(f"database error in {store.where}: {detail}") from None  # type: ignore[attr-defined]

    return wrapper


class RunDatabase:
    """A run database.  Use `Store.open(...)` (storage.facade); close it (or use ``with``) when done."""

    def __init__(self, engine: Engine, url: URL) -> None:
        self.engine = engine
        self.url = url
        self.key = url.render_as_string(hide_password=False)
        self.where = describe(url)

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, target: str | Path | None = None) -> Self:
        """Open (creating and migrating if needed) the database at a path or URL.

        None means ``$THOUGHTSCOPE_DB`` or ``./thoughtscope.db``.  Raises StorageError for a
        directory, an unwritable place, a file that is not SQLite, a SQLite file of another
        application, or a schema newer than this code; such files are left untouched.
        """
        url = resolve_url(target)
        where = describe(url)
        if is_sqlite(url):
            try:
                _preflight_sqlite(Path(url.database or ""), where)
            except OSError as exc:
                raise StorageError(f"cannot open the database {where}: {exc.strerror or exc}") from None
        engine = make_engine(url)
        try:
            if not is_sqlite(url):
                _preflight_server(engine, where)
            migrate.upgrade(engine, where=where)
            store = cls(engine, url)
            store.mark_interrupted()
            return store
        except StorageError:
            engine.dispose()
            raise
        except (SQLAlchemyError, OSError) as exc:
            engine.dispose()
            detail = getattr(exc, "orig", None) or exc
            raise StorageError(f"cannot open the database {where}: {detail}") from None

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.where!r})"

    # ------------------------------------------------------------------ liveness
    @_db_errors
    def mark_interrupted(self) -> list[int]:
        """Mark `running` runs whose writer is gone as `interrupted`; returns their ids."""
        columns = (Run.id, Run.writer_host, Run.writer_pid, Run.writer_token, Run.heartbeat)
        with self.engine.connect() as conn:
            running = conn.execute(select(*columns).where(Run.status == "running")).all()
        now = utcnow()
        dead = [row for row in running if not liveness.writer_alive(self.key, *row, now=now)]
        for row in dead:
            writer = f"pid {row.writer_pid} on {row.writer_host}" if row.writer_pid else "unknown"
            self._close_interrupted(row.id, writer)
        return [row.id for row in dead]

    def _close_interrupted(self, run_id: int, writer: str) -> None:
        events = self.events(run_id)
        try:
            tree: Tree | None = Tree.from_events(events)
        except Exception:  # noqa: BLE001 - a partial log that does not fold still keeps its events
            tree = None
        fields = run_progress_fields(tree, len(events)) if tree is not None else {"event_count": len(events)}
        fields.setdefault("status", "interrupted")
        reason = f"the recording process ({writer}) ended without closing the run (killed or crashed)"
        fields.setdefault("end_reason", reason)
        fields["finished_at"] = utcnow()

        def work(conn: Connection) -> None:
            changed = conn.execute(
                update(Run).where(Run.id == run_id, Run.status == "running").values(**fields)
            )
            if changed.rowcount and tree is not None:
                conn.execute(delete(NodeRow).where(NodeRow.run_id == run_id))
                conn.execute(insert(NodeRow), node_rows(run_id, tree))

        write(self.engine, work)

    # ------------------------------------------------------------------ reading
    @_db_errors
    def list_runs(
        self,
        task: str | None = None,
        strategy: str | None = None,
        status: str | None = None,
        correct: bool | None = None,
        text: str | None = None,
        since: datetime | date | str | None = None,
        until: datetime | date | str | None = None,
        limit: int | None = 100,
        tag: str | None = None,
        sweep_id: int | None = None,
    ) -> list[RunSummary]:
        """Runs newest first.  `text` matches name, problem, answer or a tag (case-insensitive);
        `since`/`until` take datetimes or ISO strings (naive means local time; a bare date as
        `until` includes that whole day)."""
        stmt = select(*(getattr(Run, c).label(c) for c in _SUMMARY_COLUMNS)).order_by(
            Run.created.desc(), Run.id.desc()
        )
        if status is not None and status not in RUN_STATUSES:
            raise StorageError(f"status must be one of {', '.join(RUN_STATUSES)} (got {status!r}).")
        for column, value in (
            (Run.task, task),
            (Run.strategy, strategy),
            (Run.status, status),
            (Run.sweep_id, sweep_id),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        if correct is not None:
            stmt = stmt.where(Run.correct.is_(correct))
        if text:
            stmt = stmt.where(_text_filter(text))
        if tag:
            stmt = stmt.where(Run.id.in_(select(RunTag.run_id).where(RunTag.tag == tag)))
        if since is not None:
            stmt = stmt.where(Run.created >= _as_time(since, "since", end=False))
        if until is not None:
            stmt = stmt.where(Run.created <= _as_time(until, "until", end=True))
        if limit is not None:
            if limit < 1:
                raise StorageError(f"limit must be at least 1 (got {limit}).")
            stmt = stmt.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
            tags = self._tags_for(conn, [row.id for row in rows])
        return [RunSummary(tags=tags.get(row.id, ()), **row._asdict()) for row in rows]

    @_db_errors
    def get_run(self, run_id: int) -> RunSummary:
        stmt = select(*(getattr(Run, c).label(c) for c in _SUMMARY_COLUMNS)).where(Run.id == run_id)
        with self.engine.connect() as conn:
            row = conn.execute(stmt).first()
            if row is None:
                raise self._missing(run_id)
            tags = self._tags_for(conn, [run_id])
        return RunSummary(tags=tags.get(run_id, ()), **row._asdict())

    @_db_errors
    def events(self, run_id: int) -> list[Event]:
        """The run's full event log, in order."""
        with self.engine.connect() as conn:
            if conn.execute(select(Run.id).where(Run.id == run_id)).first() is None:
                raise self._missing(run_id)
            if conn.dialect.name == "sqlite":  # the driver's tuples, without per-row processing
                with gc_paused():
                    rows = conn.exec_driver_sql(_SQLITE_EVENTS, (run_id,)).fetchall()
            else:
                cols = (EventRow.seq, EventRow.t, EventRow.kind, EventRow.data)
                stmt = select(*cols).where(EventRow.run_id == run_id).order_by(EventRow.seq)
                rows = conn.execute(stmt).all()
        return decode_events(rows)

    def tree(self, run_id: int) -> Tree:
        """The run's last tree, folded from its events."""
        return Tree.from_events(self.events(run_id))

    # ------------------------------------------------------------------ editing
    @_db_errors
    def rename(self, run_id: int, name: str | None) -> None:
        name = (name or "").strip() or None
        if name is not None and len(name) > 200:
            raise StorageError("a run name is at most 200 characters.")
        self._update_one(run_id, name=name)

    @_db_errors
    def tag(self, run_id: int, add: Iterable[str] = (), remove: Iterable[str] = ()) -> tuple[str, ...]:
        """Add and remove tags; returns the run's tags afterwards."""
        add_set, remove_set = set(self.clean_tags(add)), set(self.clean_tags(remove))

        def work(conn: Connection) -> None:
            if conn.execute(select(Run.id).where(Run.id == run_id)).first() is None:
                raise self._missing(run_id)
            have = set(conn.execute(select(RunTag.tag).where(RunTag.run_id == run_id)).scalars())
            new = sorted(add_set - have - remove_set)
            if new:
                conn.execute(insert(RunTag), [{"run_id": run_id, "tag": tag} for tag in new])
            if remove_set:
                conn.execute(delete(RunTag).where(RunTag.run_id == run_id, RunTag.tag.in_(remove_set)))

        write(self.engine, work)
        return self.get_run(run_id).tags

    @_db_errors
    def delete(self, run_id: int) -> None:
        """Delete a run with its events, nodes and tags."""

        def work(conn: Connection) -> None:
            for table in (RunTag, NodeRow, EventRow):
                conn.execute(delete(table).where(table.run_id == run_id))
            if not conn.execute(delete(Run).where(Run.id == run_id)).rowcount:
                raise self._missing(run_id)

        write(self.engine, work)

    # ------------------------------------------------------------------ sweeps
    @_db_errors
    def create_sweep(self, name: str, meta: Mapping[str, Any] | None = None) -> int:
        """Create an eval sweep; pass its id to `recorder(sweep_id=...)` for each run it makes."""
        values = {"created": utcnow(), "name": name, "meta": dict(meta or {})}
        return write(
            self.engine,
            lambda conn: conn.execute(insert(Sweep).values(**values).returning(Sweep.id)).scalar_one(),
        )

    @_db_errors
    def get_sweep(self, sweep_id: int) -> dict[str, Any]:
        """One sweep as {id, created, name, meta, runs}; StorageError when there is none."""
        runs = select(func.count(Run.id)).where(Run.sweep_id == Sweep.id).scalar_subquery()
        stmt = select(Sweep.id, Sweep.created, Sweep.name, Sweep.meta, runs.label("runs")).where(
            Sweep.id == sweep_id
        )
        with self.engine.connect() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            raise StorageError(f"no sweep {sweep_id} in {self.where}.")
        return row._asdict()

    @_db_errors
    def update_sweep(self, sweep_id: int, meta: Mapping[str, Any]) -> None:
        """Replace a sweep's `meta` (its settings, status and points so far); StorageError when missing."""

        def work(conn: Connection) -> None:
            if not conn.execute(update(Sweep).where(Sweep.id == sweep_id).values(meta=dict(meta))).rowcount:
                raise StorageError(f"no sweep {sweep_id} in {self.where}.")

        write(self.engine, work)

    @_db_errors
    def list_sweeps(self) -> list[dict[str, Any]]:
        runs = select(func.count(Run.id)).where(Run.sweep_id == Sweep.id).scalar_subquery()
        stmt = select(Sweep.id, Sweep.created, Sweep.name, Sweep.meta, runs.label("runs")).order_by(
            Sweep.id.desc()
        )
        with self.engine.connect() as conn:
            return [row._asdict() for row in conn.execute(stmt)]

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def clean_tags(tags: Iterable[str]) -> tuple[str, ...]:
        if isinstance(tags, str):
            tags = [tags]
        out: list[str] = []
        for tag in tags:
            tag = str(tag).strip()
            if not tag:
                continue
            if len(tag) > MAX_TAG:
                raise StorageError(f"tag {tag[:20]!r}... is longer than {MAX_TAG} characters.")
            if tag not in out:
                out.append(tag)
        return tuple(out)

    def _missing(self, run_id: int) -> StorageError:
        return StorageError(f"no run {run_id} in {self.where}.")

    def _update_one(self, run_id: int, **values: Any) -> None:
        def work(conn: Connection) -> None:
            if not conn.execute(update(Run).where(Run.id == run_id).values(**values)).rowcount:
                raise self._missing(run_id)

        write(self.engine, work)

    @staticmethod
    def _tags_for(conn: Connection, run_ids: list[int]) -> dict[int, tuple[str, ...]]:
        if not run_ids:
            return {}
        out: dict[int, list[str]] = {}
        for start in range(0, len(run_ids), 500):
            stmt = select(RunTag.run_id, RunTag.tag).where(RunTag.run_id.in_(run_ids[start : start + 500]))
            for run_id, tag in conn.execute(stmt.order_by(RunTag.tag)):
                out.setdefault(run_id, []).append(tag)
        return {key: tuple(value) for key, value in out.items()}


# ---------------------------------------------------------------------- module helpers
def _preflight_sqlite(path: Path, where: str) -> None:
    check_sqlite_file(path)
    tables, revision = sqlite_tables_readonly(path)
    migrate.check_known(revision, where)
    if tables and revision is None:
        shown = ", ".join(sorted(tables)[:6])
        raise StorageError(
            f"{where} is a SQLite database of another application (tables: {shown}); ThoughtScope will not "
            "modify it. Give another file."
        )


def _preflight_server(engine: Engine, where: str) -> None:
    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
    if tables & {"runs", "events", "nodes"} and "alembic_version" not in tables:
        raise StorageError(
            f"{where} already has tables named runs/events/nodes that ThoughtScope did not create; "
            "use another database or schema."
        )


def _text_filter(text: str) -> Any:
    needle = text.lower()
    tagged = select(RunTag.run_id).where(func.lower(RunTag.tag).contains(needle, autoescape=True))
    return or_(
        func.lower(Run.name).contains(needle, autoescape=True),
        func.lower(Run.problem).contains(needle, autoescape=True),
        func.lower(Run.answer).contains(needle, autoescape=True),
        Run.id.in_(tagged),
    )


def _as_time(value: datetime | date | str, label: str, *, end: bool) -> datetime:
    """An aware datetime from a datetime, date or ISO string (naive values are local time)."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            raise StorageError(
                f"--{label} must be an ISO date or time like 2025-01-31 or 2025-01-31T14:00 (got {text!r})."
            ) from None
    if not isinstance(value, datetime):
        moment = datetime.combine(value, time.min)
        value = moment + timedelta(days=1) - timedelta(microseconds=1) if end else moment
    return value.astimezone(UTC)  # a naive value is taken as local time
