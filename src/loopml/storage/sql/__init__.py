"""The SQL metadata store (SQLite embedded, PostgreSQL at scale) behind the store protocols."""

from loopml.storage.sql.store import SqlStore

__all__ = ["SqlStore"]
