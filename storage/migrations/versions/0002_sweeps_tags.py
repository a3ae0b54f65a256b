"""Eval sweeps, run tags, and the indexes that listing and filtering use.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02

`runs` gains a foreign key, which SQLite can only do by rebuilding the table (batch mode);
`storage.migrate` switches foreign keys off around the migration so dropping the old
`runs` table cannot cascade into `events`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sweeps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sweeps"),
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("sweep_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_runs_sweep_id_sweeps", "sweeps", ["sweep_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_index("ix_runs_sweep_id", ["sweep_id"])
        batch.create_index("ix_runs_created", ["created"])
        batch.create_index("ix_runs_status", ["status"])
        batch.create_index("ix_runs_task_strategy", ["task", "strategy"])
    op.create_table(
        "run_tags",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_run_tags_run_id_runs", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "tag", name="pk_run_tags"),
    )
    op.create_index("ix_run_tags_tag", "run_tags", ["tag"])


def downgrade() -> None:
    op.drop_index("ix_run_tags_tag", table_name="run_tags")
    op.drop_table("run_tags")
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_task_strategy")
        batch.drop_index("ix_runs_status")
        batch.drop_index("ix_runs_created")
        batch.drop_index("ix_runs_sweep_id")
        batch.drop_constraint("fk_runs_sweep_id_sweeps", type_="foreignkey")
        batch.drop_column("sweep_id")
    op.drop_table("sweeps")
