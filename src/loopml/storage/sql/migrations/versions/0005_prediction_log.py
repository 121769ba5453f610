"""The serving layer's prediction log: Parquet segments of predictions and feedback per model.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "prediction_segments",
        sa.Column("segment_id", _Id, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(256), nullable=False),
        sa.Column("model_version", sa.Integer),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("start_time", sa.BigInteger, nullable=False),
        sa.Column("end_time", sa.BigInteger, nullable=False),
        sa.Column("row_count", sa.BigInteger, nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_time", sa.BigInteger, nullable=False),
    )
    # monitoring reads one model's predictions (or feedback) by time range: segments that
    # start before the range ends and end after it starts
    op.create_index(
        "ix_prediction_segments_model_kind_start",
        "prediction_segments",
        ["model_name", "kind", "start_time"],
    )
    op.create_index(
        "ix_prediction_segments_model_kind_end",
        "prediction_segments",
        ["model_name", "kind", "end_time"],
    )
    # a blob is recorded once per model and kind, so a retried record finds the first
    op.create_index(
        "ux_prediction_segments_digest",
        "prediction_segments",
        ["model_name", "kind", "digest"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ux_prediction_segments_digest", table_name="prediction_segments")
    op.drop_index("ix_prediction_segments_model_kind_end", table_name="prediction_segments")
    op.drop_index("ix_prediction_segments_model_kind_start", table_name="prediction_segments")
    op.drop_table("prediction_segments")
