"""Initial schema: experiments, runs, params, tags, metrics, artifacts, events.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _run_fk() -> sa.ForeignKey:
    return sa.ForeignKey("runs.run_id", ondelete="CASCADE")


def _run_key_value(name: str) -> None:
    op.create_table(
        name,
        sa.Column("run_id", sa.String(32), _run_fk(), primary_key=True),
        sa.Column("key", sa.String(500), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sqlite_with_rowid=False,
    )


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("experiment_id", _Id, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(500), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("lifecycle_stage", sa.String(16), nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_update_time", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "experiment_tags",
        sa.Column(
            "experiment_id",
            _Id,
            sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("key", sa.String(500), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column(
            "experiment_id",
            _Id,
            sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("run_name", sa.String(500), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("start_time", sa.BigInteger, nullable=False),
        sa.Column("end_time", sa.BigInteger),
        sa.Column("parent_run_id", sa.String(32)),
        sa.Column("user_name", sa.String(256)),
        sa.Column("host", sa.String(256)),
        sa.Column("entry_point", sa.Text),
        sa.Column("git_commit", sa.String(64)),
        sa.Column("git_dirty", sa.Boolean),
        sa.Column("python_version", sa.String(32)),
        sa.Column("packages", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("heartbeat_time", sa.BigInteger),
    )
    op.create_index("ix_runs_experiment_start", "runs", ["experiment_id", "start_time"])
    op.create_index("ix_runs_parent", "runs", ["parent_run_id"])
    op.create_index("ix_runs_status_heartbeat", "runs", ["status", "heartbeat_time"])
    _run_key_value("params")
    _run_key_value("run_tags")
    op.create_table(
        "metrics",
        sa.Column("run_id", sa.String(32), _run_fk(), primary_key=True),
        sa.Column("key", sa.String(500), primary_key=True),
        sa.Column("step", sa.BigInteger, primary_key=True),
        sa.Column("timestamp", sa.BigInteger, primary_key=True),
        sa.Column("value", sa.Float(precision=53), primary_key=True),
        sa.Column("is_nan", sa.Boolean, primary_key=True),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "latest_metrics",
        sa.Column("run_id", sa.String(32), _run_fk(), primary_key=True),
        sa.Column("key", sa.String(500), primary_key=True),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("value", sa.Float(precision=53), nullable=False),
        sa.Column("is_nan", sa.Boolean, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_latest_metrics_key_value", "latest_metrics", ["key", "value"])
    op.create_table(
        "artifacts",
        sa.Column("run_id", sa.String(32), _run_fk(), primary_key=True),
        sa.Column("path", sa.String(1000), primary_key=True),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_time", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "events",
        sa.Column("event_id", _Id, primary_key=True, autoincrement=True),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("subject_type", sa.String(32), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(256)),
        sa.Column("payload", sa.Text, nullable=False),
    )
    op.create_index("ix_events_subject", "events", ["subject_type", "subject_id"])


def downgrade() -> None:
    for name in (
        "events",
        "artifacts",
        "latest_metrics",
        "metrics",
        "run_tags",
        "params",
        "runs",
        "experiment_tags",
        "experiments",
    ):
        op.drop_table(name)
