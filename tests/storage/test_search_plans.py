"""The indexes and statistics run searches depend on (RELIABILITY L3).

* param and tag values have an index that serves ``=`` (migration 0006) and that takes a
  value of any length on either backend (a PostgreSQL btree entry must fit in ~2.7 KB);
* a SQLite store is ``ANALYZE``d after a migration and when opened with missing or stale
  statistics, and then looks ``run_id IN (...)`` up instead of scanning every run;
* ordering by a NOT NULL column adds no NULLS LAST, so PostgreSQL can read its index backwards.
"""

from __future__ import annotations

import random
import sqlite3
import string
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from loopml.storage.blobs import BlobStore
from loopml.storage.sql import SqlStore, statistics
from loopml.storage.sql.schema import params, run_tags, runs


@contextmanager
def _statements(store: SqlStore) -> Iterator[list[tuple[str, Any]]]:
    found: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, text: str, args: Any, context: Any, many: bool) -> None:
        found.append((text, args))

    event.listen(store._db.engine, "before_cursor_execute", capture)
    try:
        yield found
    finally:
        event.remove(store._db.engine, "before_cursor_execute", capture)


def _plan(store: SqlStore, text: str, args: Any, *, postgres_settings: str = "") -> str:
    """The database's plan of a captured statement, as one string."""
    with store._db.engine.connect() as conn:
        cursor = conn.connection.cursor()
        if store._db.dialect == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + text, args)
        else:
            if postgres_settings:
                cursor.execute(postgres_settings)
            cursor.execute("EXPLAIN " + text, args)
        plan = "\n".join(" | ".join(str(c) for c in row) for row in cursor.fetchall())
        cursor.close()
        conn.rollback()
    return plan


def _search_sql(store: SqlStore, *args: Any) -> tuple[str, Any]:
    with _statements(store) as found:
        store.search_runs(*args)
    return next(s for s in found if "FROM runs" in s[0])


def _fill(store: SqlStore, experiment_id: str, count: int, keys: int) -> list[str]:
    """``count`` runs with ``keys`` params and tags each, written in bulk."""
    ids = [f"{i:032x}" for i in range(1, count + 1)]
    rows = [
        {
            "run_id": run_id,
            "experiment_id": int(experiment_id),
            "run_name": f"r{i}",
            "status": "FINISHED",
            "start_time": 1000 + i,
        }
        for i, run_id in enumerate(ids)
    ]
    values = [
        {"run_id": run_id, "key": f"k{j}", "value": f"v{i}-{j}"}
        for i, run_id in enumerate(ids)
        for j in range(keys)
    ]
    with store._db.engine.begin() as conn:
        conn.execute(runs.insert(), rows)
        if values:
            conn.execute(params.insert(), values)
            conn.execute(run_tags.insert(), values)
    return ids


def test_value_indexes_take_any_length_and_serve_equality(backend_url: str, tmp_path: Path) -> None:
    store = SqlStore(backend_url, BlobStore(str(tmp_path / "b")))
    try:
        exp = store.create_experiment("values").experiment_id
        ids = _fill(store, exp, 300, 10)
        rng = random.Random(100_000)
        big = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(100_000))
        with store._db.engine.begin() as conn:  # 100 KB, past the validation's limit
            conn.execute(params.insert(), {"run_id": ids[0], "key": "big", "value": big})
            conn.execute(run_tags.insert(), {"run_id": ids[0], "key": "big", "value": big})
            if store._db.dialect == "postgresql":
                conn.exec_driver_sql("ANALYZE params")
                conn.exec_driver_sql("ANALYZE run_tags")
        store._statistics.refresh(force=True)
        found = store.search_runs([exp], f"params.big = '{big}'")
        assert [r.info.run_id for r in found] == [ids[0]]
        for kind, table in (("params", "params"), ("tags", "run_tags")):
            text, args = _search_sql(store, [exp], f"{kind}.k3 = 'v17-3'")
            plan = _plan(store, text, args, postgres_settings="SET LOCAL enable_seqscan = off")
            if store._db.dialect == "sqlite":
                assert f"ix_{table}_key_value (key=? AND value=?)" in plan, plan
            else:
                assert f"ix_{table}_value_hash" in plan, plan
            assert [r.info.run_id for r in store.search_runs([exp], f"{kind}.k3 = 'v17-3'")] == [
                ids[17]
            ]
    finally:
        store.close()


def test_first_page_order_uses_the_start_time_index(backend_url: str, tmp_path: Path) -> None:
    """``start_time DESC`` (NOT NULL) is read from ``ix_runs_experiment_start`` backwards on
    both backends, with no sort of every run; a nullable column keeps NULLS LAST."""
    store = SqlStore(backend_url, BlobStore(str(tmp_path / "b")))
    try:
        exp = store.create_experiment("order").experiment_id
        _fill(store, exp, 300, 0)
        text, args = _search_sql(store, [exp], None, ["start_time DESC"], 10)
        assert "NULLS" not in text.upper()
        plan = _plan(store, text, args, postgres_settings="SET LOCAL enable_seqscan = off")
        if store._db.dialect == "sqlite":
            assert "ix_runs_experiment_start" in plan
            assert "TEMP B-TREE FOR ORDER BY" not in plan
        else:
            assert "Index Scan Backward using ix_runs_experiment_start" in plan, plan
        text, _ = _search_sql(store, [exp], None, ["end_time DESC"], 10)
        assert "NULLS LAST" in text.upper()
    finally:
        store.close()


# -- SQLite statistics ---------------------------------------------------------------------------


def _stat(db: Path) -> str | None:
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT stat FROM sqlite_stat1 WHERE idx = 'ix_runs_experiment_start'"
        ).fetchone()
    return row[0] if row else None


def test_sqlite_statistics_are_refreshed_when_missing_or_stale(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    blobs = BlobStore(str(tmp_path / "b"))
    store = SqlStore(f"sqlite:///{db}", blobs)  # migrated, so analyzed (empty: no rows)
    exp = store.create_experiment("stats").experiment_id
    ids = _fill(store, exp, 3000, 0)
    assert _stat(db) is None
    store.close()

    store = SqlStore(f"sqlite:///{db}", blobs)  # 3,000 runs, never analyzed: ANALYZE
    stat = _stat(db)
    assert stat is not None
    assert 1500 < int(stat.split()[0]) <= 3000
    chosen = ", ".join(f"'{run_id}'" for run_id in ids[100:200])
    text, args = _search_sql(store, [exp], f"run_id IN ({chosen})", ["start_time DESC"], 100)
    plan = _plan(store, text, args)
    assert "ix_runs_experiment_start" not in plan, plan  # looks the 100 ids up instead
    assert store._statistics.refresh() is False  # current: opening again does not ANALYZE
    store.close()

    began = time.perf_counter()
    for _ in range(20):
        SqlStore(f"sqlite:///{db}", blobs).close()
    per_open = (time.perf_counter() - began) / 20
    assert _stat(db) == stat
    print(f"opening an up-to-date store: {per_open * 1000:.1f} ms")

    store = SqlStore(f"sqlite:///{db}", blobs)
    more = [f"{i:032x}" for i in range(10_000, 14_000)]
    with store._db.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO runs (run_id, experiment_id, run_name, status, start_time) "
            "VALUES (?, ?, 'more', 'FINISHED', 5000)",
            [(run_id, int(exp)) for run_id in more],
        )
    assert store._statistics.refresh() is True  # 7,000 runs, more than twice 3,000
    assert int(str(_stat(db)).split()[0]) > 3500
    store.close()


def test_sqlite_statistics_give_way_to_a_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ANALYZE waits a moment for another writer's lock, then skips; the store's own busy
    timeout is restored."""
    monkeypatch.setattr(statistics, "BUSY_TIMEOUT_MS", 50)
    db = tmp_path / "l.db"
    store = SqlStore(f"sqlite:///{db}", BlobStore(str(tmp_path / "b")), busy_timeout=7)
    try:
        writer = sqlite3.connect(db, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        try:
            began = time.perf_counter()
            assert store._statistics.refresh(force=True) is False
            assert time.perf_counter() - began < 5
        finally:
            writer.execute("ROLLBACK")
            writer.close()
        with store._db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 7000
        assert store._statistics.refresh(force=True) is True
    finally:
        store.close()
