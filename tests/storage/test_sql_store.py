"""The store conformance suite, run against SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from loopml.storage.sql import SqlStore
from loopml.testing.store_suite import TrackingStoreSuite


class TestSqlStore(TrackingStoreSuite):
    @pytest.fixture
    def store(self, sql_store: SqlStore) -> SqlStore:
        return sql_store


def test_store_parts_do_not_shadow_each_other() -> None:
    """SqlStore is assembled from one mixin per resource: a helper defined in two of them
    would silently resolve to one (this once broke the registry's version lookups)."""
    import inspect

    from loopml.storage.sql.store import SqlStore

    owners: dict[str, list[str]] = {}
    for cls in inspect.getmro(SqlStore)[1:]:
        if cls.__module__.startswith("loopml.storage.sql"):
            for name in vars(cls):
                if not name.startswith("__"):
                    owners.setdefault(name, []).append(cls.__name__)
    assert {name: where for name, where in owners.items() if len(where) > 1} == {}
