"""Schema migrations, applied automatically when a store opens.

Alembic is configured in code (the scripts live in ``storage/migrations``; there is no
alembic.ini).  The whole upgrade runs in one write transaction: on SQLite that is
``BEGIN IMMEDIATE``, so two processes opening a fresh database at once cannot both migrate,
and a failed upgrade leaves the file as it was.  A database stamped with a revision this
code does not know was written by a newer ThoughtScope: we refuse it rather than guess.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, text

from storage.db import WRITE_OPTION, is_sqlite, retrying
from storage.errors import StorageError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: Advisory lock id that serialises migrations on PostgreSQL ("tsdb").
MIGRATION_LOCK_KEY = 0x74736462


def alembic_config(connection: Connection | None = None) -> Config:
    """An in-memory alembic config pointing at our scripts (and at `connection`, if given)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    return config


@cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = _script().get_current_head()
    assert head is not None
    return head


def known_revisions() -> list[str]:
    """Every revision this code knows, oldest first."""
    return [rev.revision for rev in reversed(list(_script().walk_revisions()))]


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def check_known(revision: str | None, where: str) -> None:
    """Refuse a database from a newer schema (never upgrade or overwrite what we cannot read)."""
    if revision is not None and revision not in known_revisions():
        raise StorageError(
            f"{where} uses database schema revision {revision!r}, which this version of ThoughtScope "
            f"does not know (it knows up to {head_revision()!r}); it was probably written by a newer "
            "ThoughtScope. Upgrade ThoughtScope or use another database; nothing was changed."
        )


def upgrade(engine: Engine, revision: str = "head", where: str = "the database") -> None:
    """Bring the schema to `revision` in one locked transaction (a no-op when already there)."""
    target = head_revision() if revision == "head" else revision
    with engine.connect() as probe:
        current = current_revision(probe)
    check_known(current, where)
    if current != target:  # the common case (already current) takes no write lock at all
        retrying(lambda: _upgrade_once(engine, target, where))


def _upgrade_once(engine: Engine, target: str, where: str) -> None:
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection if is_sqlite(engine.url) else None
        if raw is not None:
            # Batch mode rebuilds `runs`; with foreign keys on, dropping the old table would
            # cascade-delete every event.  The pragma is ignored inside a transaction, so it
            # is switched off before BEGIN and checked by foreign_key_check before COMMIT.
            raw.execute("PRAGMA foreign_keys = OFF")
        try:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                if engine.dialect.name == "postgresql":
                    # PostgreSQL has no BEGIN IMMEDIATE: serialise concurrent migrators explicitly.
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
                current = current_revision(conn)
                check_known(current, where)
                if current == target:  # another process migrated while we waited for the lock
                    return
                _run(conn, target)
                if raw is not None and conn.exec_driver_sql("PRAGMA foreign_key_check").first():
                    raise StorageError("the migration would break foreign keys; nothing was changed.")
        finally:
            if raw is not None:
                raw.execute("PRAGMA foreign_keys = ON")


def _run(conn: Connection, revision: str) -> None:
    try:
        command.upgrade(alembic_config(conn), revision)
    except CommandError as exc:
        raise StorageError(f"cannot migrate the database schema: {exc}") from None


def write_revision(message: str, engine: Engine) -> None:
    """Maintainers: autogenerate the next revision script from the ORM models.

    Point `engine` at a scratch database already at head; alembic compares it with
    `storage.schema` and writes ``storage/migrations/versions/<rev>_<slug>.py``, to be
    reviewed (and given a short numeric revision id like the others) by hand.
    """
    with engine.connect() as conn:
        command.revision(alembic_config(conn), message=message, autogenerate=True)
