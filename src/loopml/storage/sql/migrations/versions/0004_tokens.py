"""Bearer tokens of the tracking server (hashed secrets, roles, scopes, revocation).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tokens",
        sa.Column("token_id", _Id, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_used_time", sa.BigInteger),
        sa.Column("revoked_time", sa.BigInteger),
    )
    # a name is unique among the tokens that are not revoked (a revoked name can be reused)
    active = sa.text("revoked_time IS NULL")
    op.create_index(
        "ux_tokens_active_name",
        "tokens",
        ["name"],
        unique=True,
        sqlite_where=active,
        postgresql_where=active,
    )


def downgrade() -> None:
    op.drop_index("ux_tokens_active_name", table_name="tokens")
    op.drop_table("tokens")
