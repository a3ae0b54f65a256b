"""Run and sweep ids are never reused; a node's log-probability may be null.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

Why: SQLite gives a plain ``INTEGER PRIMARY KEY`` the largest id + 1, so deleting the newest
run and recording another reused its id, and anything keyed by the id (the Replay page's
cache, links, exports) then showed the deleted run under the new run's name.  With
``AUTOINCREMENT`` SQLite remembers the largest id ever used (``sqlite_sequence``).  The table
is rebuilt in batch mode with its rows, so existing databases keep every run; the copy seeds
``sqlite_sequence`` with the largest id present.  PostgreSQL's ``SERIAL`` sequences never hand
an id out twice already, so there nothing changes but the nullable column.

`nodes.logprob` becomes nullable: a log-probability refused as NaN/infinite
(``on_bad_number=unscored``) is stored as null, as in the event log.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in ("runs", "sweeps"):
            with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": True}):
                pass
    with op.batch_alter_table("nodes") as batch:
        batch.alter_column("logprob", existing_type=sa.Float(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.alter_column("logprob", existing_type=sa.Float(), nullable=False)
    if op.get_bind().dialect.name == "sqlite":
        for table in ("sweeps", "runs"):
            with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": False}):
                pass
