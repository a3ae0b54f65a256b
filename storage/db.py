"""Where the database lives, how we connect to it, and how writes survive contention.

Location rules (first match wins):

1. an explicit argument (the CLI's ``--db``): a file path, or a full SQLAlchemy URL;
2. the environment variable ``THOUGHTSCOPE_DB`` (path or URL);
3. ``thoughtscope.db`` in the current working directory.

A value containing ``://`` is a SQLAlchemy URL.  PostgreSQL works by URL through psycopg 3
(``pip install "psycopg[binary]"``), e.g. ``postgresql+psycopg://user:secret@localhost/thoughtscope``;
a bare ``postgresql://`` or ``postgres://`` URL is read as psycopg 3, not psycopg2.

SQLite is tuned for many writers: WAL mode (readers never block the writer), a 30 s
``busy_timeout``, ``foreign_keys=ON`` and ``synchronous=NORMAL`` (a committed transaction
survives the process being killed; only a power cut may lose the last few).  Every write
transaction starts with ``BEGIN IMMEDIATE``, so two writers queue for the lock up front
instead of deadlocking on a lock upgrade, and `write` retries with backoff whenever SQLite
still answers "database is locked" or "busy".
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from storage.errors import StorageError

ENV_VAR = "THOUGHTSCOPE_DB"
DEFAULT_FILE = "thoughtscope.db"
SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 30_000
#: How long `write` keeps retrying a locked database before giving up.
WRITE_PATIENCE_S = 120.0
WRITE_OPTION = "thoughtscope_write"

T = TypeVar("T")


def resolve_url(target: str | os.PathLike[str] | None = None) -> URL:
    """Turn a path, URL or None into a SQLAlchemy URL following the location rules above."""
    raw = os.fspath(target) if target is not None else os.environ.get(ENV_VAR) or DEFAULT_FILE
    raw = raw.strip()
    if not raw:
        raise StorageError("empty database location; give a file path or a SQLAlchemy URL.")
    if "://" not in raw:
        return URL.create("sqlite", database=str(Path(raw).expanduser().absolute()))
    for prefix in ("postgresql://", "postgres://"):
        if raw.startswith(prefix):
            raw = "postgresql+psycopg://" + raw[len(prefix) :]
    try:
        url = make_url(raw)
    except ArgumentError as exc:
        raise StorageError(f"not a valid database URL: {raw!r} ({exc})") from None
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:") or "mode=memory" in str(url):
            raise StorageError(
                "an in-memory SQLite database would vanish with the process; give a file path."
            )
        url = url.set(database=str(Path(database).expanduser().absolute()))
    return url


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def describe(url: URL) -> str:
    """A user-facing name for the database (the file path, or the URL without its password)."""
    return url.database or "" if is_sqlite(url) else url.render_as_string(hide_password=True)


# ---------------------------------------------------------------------------- preflight
def check_sqlite_file(path: Path) -> None:
    """Refuse, without writing a byte, anything that is not a usable SQLite file of ours.

    Runs before SQLAlchemy connects, because connecting switches the file to WAL mode,
    which would already modify a foreign or newer database.
    """
    if path.is_dir():
        raise StorageError(
            f"{path} is a directory, not a database file; give a file path such as {path / DEFAULT_FILE}."
        )
    parent = path.parent
    if not parent.is_dir():
        raise StorageError(f"cannot create the database {path}: the folder {parent} does not exist.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StorageError(
            f"cannot write to the folder {parent} (SQLite needs it for {path.name} and its journal)."
        )
    if not path.exists():
        return
    if not os.access(path, os.R_OK | os.W_OK):
        raise StorageError(f"the database file {path} is not readable and writable by this user.")
    with path.open("rb") as handle:
        header = handle.read(len(SQLITE_HEADER))
    if header and header != SQLITE_HEADER:
        raise StorageError(
            f"{path} is not a SQLite database (it may be a text or corrupt file); left it untouched."
        )


def sqlite_tables_readonly(path: Path) -> tuple[set[str], str | None]:
    """The table names and the alembic revision of an existing file, read in read-only mode."""
    if not path.exists() or path.stat().st_size == 0:
        return set(), None
    uri = f"file:{quote(path.as_posix())}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            return _retry_locked(lambda: _read_tables(conn))
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"{path} is not a usable SQLite database ({exc}); left it untouched.") from None


def _read_tables(conn: sqlite3.Connection) -> tuple[set[str], str | None]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    tables = {name for (name,) in rows if not name.startswith("sqlite_")}
    revision = None
    if "alembic_version" in tables:
        found = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        revision = found[0] if found else None
    return tables, revision


# ---------------------------------------------------------------------------- engine
def make_engine(url: URL) -> Engine:
    """An engine with the SQLite pragmas and BEGIN IMMEDIATE writes described above."""
    if not is_sqlite(url):
        try:
            return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
        except ModuleNotFoundError as exc:
            raise StorageError(
                f"the driver for {url.drivername} is not installed ({exc.name}); for PostgreSQL run "
                "pip install 'psycopg[binary]'."
            ) from None
    engine = create_engine(
        url,
        connect_args={"timeout": BUSY_TIMEOUT_MS / 1000},
        pool_size=10,
        max_overflow=30,
        pool_timeout=WRITE_PATIENCE_S,
    )
    event.listen(engine, "connect", _on_sqlite_connect)
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from the sqlite3 module so `_on_sqlite_begin` decides.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        _retry_locked(lambda: cursor.execute("PRAGMA journal_mode = WAL").fetchone())
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _on_sqlite_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get(WRITE_OPTION)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _retry_locked(action: Callable[[], T]) -> T:
    """Retry a raw sqlite3 action while the database reports locked/busy."""
    deadline = time.monotonic() + WRITE_PATIENCE_S
    delay = 0.005
    while True:
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if not _is_busy_text(str(exc)) or time.monotonic() > deadline:
                raise
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.25)


def _is_busy_text(text: str) -> bool:
    text = text.lower()
    return "locked" in text or "busy" in text


def is_retryable(exc: BaseException) -> bool:
    """Locked/busy SQLite, or a PostgreSQL serialization failure or deadlock."""
    if isinstance(exc, OperationalError) and _is_busy_text(str(exc.orig)):
        return True
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return isinstance(exc, DBAPIError) and code in ("40001", "40P01")


@contextmanager
def write_connection(engine: Engine) -> Iterator[Connection]:
    """One write transaction (BEGIN IMMEDIATE on SQLite); commits on success."""
    with engine.connect() as conn:
        conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            yield conn


def retrying(action: Callable[[], T]) -> T:
    """Run `action`, retrying the whole of it with backoff while the database is busy."""
    deadline = time.monotonic() + WRITE_PATIENCE_S
    delay = 0.01
    while True:
        try:
            return action()
        except DBAPIError as exc:
            if not is_retryable(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.5)


def write(engine: Engine, work: Callable[[Connection], T]) -> T:
    """Run `work` in one write transaction, retrying the whole transaction while busy."""

    def once() -> T:
        with write_connection(engine) as conn:
            return work(conn)

    return retrying(once)
