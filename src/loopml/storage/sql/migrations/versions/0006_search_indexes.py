"""Indexes for filtering runs by a param or tag value (``params.lr = '0.1'``, ``tags.team IN``).

SQLite gets a btree on ``(key, value)``, which serves equality, ``IN`` and prefix ``LIKE``.
PostgreSQL gets a hash index on ``value``: a btree entry must fit in about 2.7 KB, and a param
or tag value may be 8,000 characters (up to 32 KB of UTF-8), so a btree on the raw value would
refuse such a write ("index row size exceeds maximum"); a hash index stores only a hash, for
any length, and serves ``=`` and ``IN`` (the key is checked on the rows it finds).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TABLES = ("params", "run_tags")


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for table in _TABLES:
            op.create_index(f"ix_{table}_value_hash", table, ["value"], postgresql_using="hash")
    else:
        for table in _TABLES:
            op.create_index(f"ix_{table}_key_value", table, ["key", "value"])


def downgrade() -> None:
    postgres = op.get_context().dialect.name == "postgresql"
    for table in _TABLES:
        name = f"ix_{table}_value_hash" if postgres else f"ix_{table}_key_value"
        op.drop_index(name, table_name=table)
