"""Monitors and the result of each window they checked; events found by subject and time.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "monitors",
        sa.Column("monitor_id", _Id, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_update_time", sa.BigInteger, nullable=False),
    )
    # one row per checked window; a re-check of the same window replaces it (the primary key)
    # and the monitor's deletion takes its results along. ``late`` marks the window of the
    # rows that arrived after their own window was checked (its own row beside the on-time one)
    op.create_table(
        "monitor_results",
        sa.Column(
            "monitor_id",
            _Id,
            sa.ForeignKey("monitors.monitor_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("window_start", sa.BigInteger, primary_key=True),
        sa.Column("window_end", sa.BigInteger, primary_key=True),
        sa.Column("late", sa.Boolean, primary_key=True, server_default=sa.false()),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("created_time", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )
    # results overlapping [start, end) are those starting before end (the primary key, by
    # monitor then window_start) and ending after start (this index)
    op.create_index("ix_monitor_results_end", "monitor_results", ["monitor_id", "window_end"])
    with op.batch_alter_table("events") as events:
        # a monitor's events since a time, in time order: the subject index gains the time
        # (it still serves every query by subject alone, so writing an event costs no more)
        events.drop_index("ix_events_subject")
        events.create_index("ix_events_subject_time", ["subject_type", "subject_id", "time"])
        # a subject is named by its name: monitors' go to 128 characters and registered
        # models' to 256 (a widening: PostgreSQL rewrites nothing; SQLite copies the table)
        events.alter_column(
            "subject_id",
            existing_type=sa.String(64),
            type_=sa.String(256),
            existing_nullable=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("events") as events:
        events.alter_column(
            "subject_id",
            existing_type=sa.String(256),
            type_=sa.String(64),
            existing_nullable=False,
        )
        events.drop_index("ix_events_subject_time")
        events.create_index("ix_events_subject", ["subject_type", "subject_id"])
    op.drop_index("ix_monitor_results_end", table_name="monitor_results")
    op.drop_table("monitor_results")
    op.drop_table("monitors")
