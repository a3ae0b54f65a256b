"""The tables, as SQLAlchemy 2 typed ORM classes (this must match the head migration).

Why these tables: `events` is the truth (append-only, one row per event, unique per
(run_id, seq)); `runs` is a summary kept up to date by the recorder so listing and filtering
never fold a log; `nodes` is the final tree materialised for queries when a run ends; sweeps
group the runs an eval sweep made; `run_tags` lets a run carry any number of labels.

Event payloads are stored as JSON *text* rather than a JSON column: the recorder writes the
exact bytes it serialised once, and replay decodes them in one pass, which keeps ingest and
replay fast on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, get_args

from sqlalchemy import JSON, BigInteger, DateTime, Float, ForeignKey, Index, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

RunStatus = Literal["running", "finished", "cancelled", "failed", "interrupted"]
RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC and returns aware UTC, identically on SQLite and PostgreSQL."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UTCDateTime needs timezone-aware datetimes")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


#: Deterministic constraint names, so migrations (batch mode on SQLite) can refer to them.
NAMING = {
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "ix": "ix_%(table_name)s_%(column_0_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, datetime: UTCDateTime}


class Sweep(Base):
    """An eval sweep; its runs point at it through `runs.sweep_id`."""

    __tablename__ = "sweeps"
    #: Ids are never reused (migration 0003): SQLite AUTOINCREMENT; PostgreSQL sequences already.
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 - SQLAlchemy reads it as is

    id: Mapped[int] = mapped_column(primary_key=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime)
    name: Mapped[str] = mapped_column(String(200))
    meta: Mapped[dict[str, Any]] = mapped_column(JSON)


class Run(Base):
    """One search: what was asked, with which models, and how it ended."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_created", "created"),
        Index("ix_runs_status", "status"),
        Index("ix_runs_task_strategy", "task", "strategy"),
        Index("ix_runs_sweep_id", "sweep_id"),
        #: Ids are never reused (migration 0003): a deleted run's id never names another run.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime)
    name: Mapped[str | None] = mapped_column(String(200))
    task: Mapped[str] = mapped_column(String(64))
    problem: Mapped[str] = mapped_column(Text)
    strategy: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    seed: Mapped[int] = mapped_column(BigInteger)
    reference: Mapped[str | None] = mapped_column(Text)
    #: The budget the search was given (max_nodes / max_tokens / max_seconds).
    limits: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: Per role (policy, prm, orm): name, path or hub id, weights_hash.
    models: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    end_reason: Mapped[str | None] = mapped_column(Text)
    answer: Mapped[str | None] = mapped_column(Text)
    correct: Mapped[bool | None]
    #: What the search spent (the last `spend` event).  The column kept its first name, "budget".
    spend: Mapped[dict[str, Any] | None] = mapped_column("budget", JSON)
    error: Mapped[str | None] = mapped_column(Text)
    event_count: Mapped[int] = mapped_column(BigInteger, default=0)
    node_count: Mapped[int] = mapped_column(BigInteger, default=0)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Liveness of the recording process (see `storage.liveness`).
    heartbeat: Mapped[datetime | None] = mapped_column(UTCDateTime)
    writer_host: Mapped[str | None] = mapped_column(String(255))
    writer_pid: Mapped[int | None] = mapped_column(BigInteger)
    writer_token: Mapped[str | None] = mapped_column(String(64))
    sweep_id: Mapped[int | None] = mapped_column(ForeignKey("sweeps.id", ondelete="SET NULL"))


class RunTag(Base):
    __tablename__ = "run_tags"
    __table_args__ = (Index("ix_run_tags_tag", "tag"),)

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)


class EventRow(Base):
    """One event of one run, exactly as the search emitted it (append-only)."""

    __tablename__ = "events"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    t: Mapped[float] = mapped_column(Float)
    kind: Mapped[str] = mapped_column(String(32))
    data: Mapped[str] = mapped_column(Text)


class NodeRow(Base):
    """A node of a run's final (or last recorded) tree, for queries without a replay."""

    __tablename__ = "nodes"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    node_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    parent: Mapped[int | None] = mapped_column(BigInteger)
    depth: Mapped[int] = mapped_column(BigInteger)
    text: Mapped[str] = mapped_column(Text)
    token_count: Mapped[int] = mapped_column(BigInteger)
    #: Null when the policy's log-probability was refused as NaN/infinite (on_bad_number=unscored).
    logprob: Mapped[float | None] = mapped_column(Float)
    terminal: Mapped[bool]
    answer: Mapped[str | None] = mapped_column(Text)
    correct: Mapped[bool | None]
    pruned: Mapped[bool]
    prune_reason: Mapped[str | None] = mapped_column(Text)
    expanded: Mapped[bool]
    prior: Mapped[float | None] = mapped_column(Float)
    visits: Mapped[int] = mapped_column(BigInteger)
    value_sum: Mapped[float] = mapped_column(Float)
    value_max: Mapped[float | None] = mapped_column(Float)
    scores: Mapped[dict[str, Any]] = mapped_column(JSON)
    step_scores: Mapped[dict[str, Any]] = mapped_column(JSON)
    self_eval: Mapped[dict[str, Any] | None] = mapped_column(JSON)
