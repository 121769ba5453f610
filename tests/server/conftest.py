"""A live server on 127.0.0.1 over each metadata backend, and the remote store talking to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from loopml.server.app import ServerConfig
from loopml.storage.blobs import BlobStore
from loopml.storage.rest import RestStore
from loopml.storage.sql import SqlStore
from loopml.testing.server import live_server


@pytest.fixture
def server_store(backend_url: str, tmp_path: Path) -> Iterator[SqlStore]:
    """The store behind the server (SQLite or PostgreSQL, blobs in a folder)."""
    store = SqlStore(backend_url, BlobStore(str(tmp_path / "server-blobs")))
    yield store
    store.close()


@pytest.fixture
def server_url(server_store: SqlStore) -> Iterator[str]:
    with live_server(server_store, ServerConfig()) as url:
        yield url


@pytest.fixture
def rest_store(server_url: str) -> Iterator[RestStore]:
    store = RestStore(server_url, retry_seconds=0)
    yield store
    store.close()
