"""Alembic environment, driven programmatically by `storage.migrate` (no alembic.ini).

`storage.migrate` opens the write transaction (BEGIN IMMEDIATE on SQLite, with foreign keys
switched off so batch-mode table rebuilds cannot cascade-delete rows) and hands its
connection over in ``config.attributes["connection"]``; this file only runs the scripts in
that transaction.  ``render_as_batch=True`` makes ALTERs work on SQLite by copying tables.
"""

from __future__ import annotations

from alembic import context

from storage.schema import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("storage migrations run through storage.migrate, which passes a connection")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
