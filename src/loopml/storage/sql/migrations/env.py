"""Alembic environment: always run on a connection handed over by loopml."""

from __future__ import annotations

from alembic import context

from loopml.storage.sql.migrations import VERSION_TABLE
from loopml.storage.sql.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("loopml migrations run through loopml.storage.sql.migrate, not the CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
