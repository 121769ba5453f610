"""Fixtures shared by the whole suite: store backends (SQLite, PostgreSQL) and S3."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import loopml
from loopml.storage.blobs import BlobStore
from loopml.storage.sql import SqlStore
from loopml.storage.sql.schema import metadata
from loopml.storage.uris import clear_store_cache
from loopml.testing.postgres import postgres_available, temporary_database

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session."""
    if not postgres_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432 (CI requires it)")
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    with temporary_database() as url:
        yield url


def _truncate(store: SqlStore) -> None:
    tables = ", ".join(t.name for t in metadata.sorted_tables)
    with store._db.engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL for an empty store, on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    url: str = request.getfixturevalue("postgres_url")
    store = SqlStore(url, BlobStore(str(tmp_path / "unused")))
    _truncate(store)
    store.close()
    return url


@pytest.fixture
def sql_store(backend_url: str, tmp_path: Path) -> Iterator[SqlStore]:
    store = SqlStore(backend_url, BlobStore(str(tmp_path / "blobs")))
    yield store
    store.close()


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test sees the developer's LOOPML_* settings, and each starts with no open store."""
    for name in list(os.environ):
        if name.startswith("LOOPML_") and name != "LOOPML_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("LOOPML_CACHE_DIR", str(tmp_path / ".loopml-cache"))
    monkeypatch.chdir(tmp_path)
    yield
    while (run := loopml.active_run()) is not None:  # a failed test may leave one open
        run.end("KILLED")
    loopml.set_tracking_uri(None)
    clear_store_cache()
