"""Alembic owns the schema: the head constant, the model and the migrations agree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text

from loopml.errors import StoreUnavailableError
from loopml.storage.blobs import BlobStore
from loopml.storage.sql import SqlStore
from loopml.storage.sql.migrate import alembic_head, current_revision, upgrade
from loopml.storage.sql.migrations import HEAD, VERSION_TABLE
from loopml.storage.sql.schema import metadata


def test_head_constant_matches_alembic() -> None:
    assert alembic_head() == HEAD


def test_migrated_schema_matches_model(backend_url: str, tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    store = SqlStore(backend_url, BlobStore(str(tmp_path / "b")))
    dialect = store._db.dialect

    def on_this_backend(item: Any, name: Any, type_: str, reflected: bool, other: Any) -> bool:
        # an index of the model meant for another backend only (``ddl_if``) is not compared
        return reflected or item.info.get("dialect", dialect) == dialect

    with store._db.engine.connect() as conn:
        opts = {"version_table": VERSION_TABLE, "include_object": on_this_backend}
        context = MigrationContext.configure(conn, opts=opts)
        diff = compare_metadata(context, metadata)
        assert current_revision(conn) == HEAD
    store.close()
    assert diff == []


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'w.db'}", BlobStore(str(tmp_path / "b")))
    with store._db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    store.close()


def test_upgrade_is_idempotent(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'i.db'}")
    upgrade(engine)
    upgrade(engine)
    assert "runs" in inspect(engine).get_table_names()
    engine.dispose()


def test_unknown_revision_is_a_clear_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'future.db'}"
    SqlStore(url, BlobStore(str(tmp_path / "b"))).close()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE loopml_alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StoreUnavailableError, match="9999"):
        SqlStore(url, BlobStore(str(tmp_path / "b")))


def test_unreachable_database(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailableError, match=r"127\.0\.0\.1:1"):
        SqlStore("postgresql://nobody@127.0.0.1:1/none", BlobStore(str(tmp_path / "b")))
