"""Planner statistics of a SQLite store (PostgreSQL's autovacuum keeps its own).

SQLite plans without statistics until ``ANALYZE`` runs, and then some searches take the wrong
index: ``run_id IN (...)`` ordered by start time walks every run of the experiment in order
(190 ms at 100,000 runs) instead of looking the ids up (0.5 ms). :class:`Statistics` runs a
bounded ``ANALYZE`` (``PRAGMA analysis_limit``: a sample of each index, milliseconds even on a
4 GB store) after a migration, and when the store is opened or searched (at most every
:data:`CHECK_INTERVAL_S`) if the runs table has no statistics yet or has grown or shrunk
two-fold since they were taken. The check is one query that reads an index's last entry, so
opening an up-to-date store stays cheap. A failure (a read-only file, a writer holding the
lock past :data:`BUSY_TIMEOUT_MS`) only skips the refresh.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import Any

from sqlalchemy import Engine

__all__ = ["ANALYSIS_LIMIT", "Statistics"]

_log = logging.getLogger(__name__)

#: rows of each index that ANALYZE samples (SQLite recommends 100-1000)
ANALYSIS_LIMIT = 1000
#: below this many runs the planner's defaults do as well as statistics
MIN_RUNS = 1000
#: how often a search may check the statistics' age
CHECK_INTERVAL_S = 600.0
#: how long ANALYZE waits for another writer's lock before giving up until the next check
BUSY_TIMEOUT_MS = 2000

_AGE_QUERY = (
    "SELECT (SELECT stat FROM sqlite_stat1 WHERE tbl = 'runs' "
    "AND idx = 'ix_runs_experiment_start'), (SELECT max(rowid) FROM runs)"
)


def _stale(analyzed: int | None, runs: int) -> bool:
    if runs < MIN_RUNS:
        return False
    return analyzed is None or runs > 2 * analyzed or 2 * runs < analyzed


class Statistics:
    """Keeps a SQLite store's ``sqlite_stat1`` about right; does nothing on PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        memory = engine.url.database in (None, "", ":memory:")
        self._enabled = engine.dialect.name == "sqlite" and not memory
        self._due = time.monotonic() + CHECK_INTERVAL_S

    def refresh(self, *, force: bool = False) -> bool:
        """ANALYZE if forced (after a migration) or the statistics are stale; True if it ran."""
        if not self._enabled:
            return False
        raw = self._engine.raw_connection()
        cursor = raw.cursor()
        try:
            if not force and not _is_stale(cursor):
                return False
            began = time.perf_counter()
            busy_ms = cursor.execute("PRAGMA busy_timeout").fetchone()[0]
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            try:
                cursor.execute(f"PRAGMA analysis_limit = {ANALYSIS_LIMIT}")
                cursor.execute("ANALYZE")  # its own transaction: the connection autocommits
            finally:
                cursor.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
            _log.debug("ANALYZE took %.1f ms", (time.perf_counter() - began) * 1000)
            return True
        except sqlite3.Error as exc:  # statistics are an optimisation only
            _log.info("skipped refreshing the SQLite statistics: %s", exc)
            return False
        finally:
            cursor.close()
            raw.close()  # back to the pool

    def refresh_if_due(self) -> None:
        """:meth:`refresh` if :data:`CHECK_INTERVAL_S` passed since the last check."""
        if self._enabled and time.monotonic() >= self._due:
            self._due = time.monotonic() + CHECK_INTERVAL_S
            self.refresh()


def _is_stale(cursor: Any) -> bool:
    try:
        stat, last = cursor.execute(_AGE_QUERY).fetchone()
    except sqlite3.OperationalError:  # no sqlite_stat1 yet: never analyzed
        stat, last = None, cursor.execute("SELECT max(rowid) FROM runs").fetchone()[0]
    analyzed = int(str(stat).split()[0]) if stat else None
    return _stale(analyzed, int(last or 0))
