"""SQLite connection set-up: WAL mode survives racing connections."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from loopml.storage.sql.engine import _enable_wal


class _Racing:
    """A DB-API connection whose first ``fails`` WAL switches are refused as locked, the way
    SQLite refuses one of several fresh connections switching at once."""

    def __init__(self, fails: int, *, error: str = "database is locked"):
        self.fails, self.error, self.calls = fails, error, 0

    def execute(self, sql: str) -> Any:
        assert sql == "PRAGMA journal_mode = WAL"
        self.calls += 1
        if self.calls <= self.fails:
            raise sqlite3.OperationalError(self.error)
        return self

    def fetchone(self) -> tuple[str]:
        return ("wal",)


def test_wal_switch_is_retried_while_locked() -> None:
    conn = _Racing(fails=3)
    _enable_wal(conn, busy_timeout=5)
    assert conn.calls == 4


def test_wal_switch_gives_up_after_the_busy_timeout() -> None:
    conn = _Racing(fails=10**9)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        _enable_wal(conn, busy_timeout=0.05)
    assert conn.calls > 1


def test_other_errors_are_not_retried() -> None:
    conn = _Racing(fails=1, error="disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        _enable_wal(conn, busy_timeout=5)
    assert conn.calls == 1


def test_real_database_ends_in_wal(tmp_path: Any) -> None:
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    _enable_wal(conn, busy_timeout=5)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()
