"""The store conformance suite, run against SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from loopml.storage.sql import SqlStore
from loopml.testing.store_suite import TrackingStoreSuite


class TestSqlStore(TrackingStoreSuite):
    @pytest.fixture
    def store(self, sql_store: SqlStore) -> SqlStore:
        return sql_store
