"""State and helpers shared by the SQL store's per-resource parts."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Executable, Table

from loopml.storage.sql.engine import SqlEngine
from loopml.storage.sql.schema import events

__all__ = ["SqlBase", "now_ms"]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class SqlBase:
    """Holds the engine; each resource mixin adds its methods on top."""

    _db: SqlEngine
    _statements: dict[str, Any]

    def _statement(self, name: str, build: Callable[[], Executable]) -> Any:
        """A statement built once per store and reused: SQLAlchemy then skips rebuilding
        and recompiling it, which is most of the cost of a small write."""
        stmt = self._statements.get(name)
        if stmt is None:
            stmt = self._statements[name] = build()
        return stmt

    def _event(
        self,
        conn: Connection,
        kind: str,
        subject_type: str,
        subject_id: str,
        payload: dict[str, Any] | None = None,
        actor: str | None = None,
    ) -> None:
        """Append to the event log, in the caller's transaction."""
        conn.execute(
            self._statement("event", events.insert),
            {
                "time": now_ms(),
                "kind": kind,
                "subject_type": subject_type,
                "subject_id": subject_id,
                "actor": actor,
                "payload": json.dumps(payload or {}, sort_keys=True),
            },
        )

    def _insert(self, table: Table) -> Any:
        """A dialect insert that supports ON CONFLICT (SQLite and PostgreSQL both do)."""
        if self._db.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:
            from sqlalchemy.dialects.postgresql import (  # type: ignore[assignment]
                insert as dialect_insert,
            )
        return dialect_insert(table)

    def _upsert(
        self,
        conn: Connection,
        table: Table,
        rows: list[dict[str, Any]] | dict[str, Any],
        keys: list[str],
        columns: list[str],
    ) -> None:
        """Insert rows, replacing ``columns`` of rows whose ``keys`` already exist."""

        def build() -> Executable:
            stmt = self._insert(table)
            return stmt.on_conflict_do_update(
                index_elements=keys, set_={c: stmt.excluded[c] for c in columns}
            )

        conn.execute(self._statement(f"upsert:{table.name}:{keys}:{columns}", build), rows)

    def _insert_ignore(
        self, conn: Connection, table: Table, rows: list[dict[str, Any]], keys: list[str]
    ) -> None:
        """Insert rows, silently skipping those whose ``keys`` already exist."""
        stmt = self._statement(
            f"ignore:{table.name}:{keys}",
            lambda: self._insert(table).on_conflict_do_nothing(index_elements=keys),
        )
        conn.execute(stmt, rows)
