"""The dataset part of the store conformance suite (datasets, versions, lineage).

:class:`loopml.testing.store_suite.TrackingStoreSuite` includes it; it needs the same
``store`` fixture.
"""

from __future__ import annotations

import threading
import uuid

import pytest

from loopml.entities import DatasetKind
from loopml.errors import (
    AlreadyExistsError,
    DatasetNotFoundError,
    InvalidArgumentError,
    RunNotFoundError,
)
from loopml.storage.protocols import TrackingStore

__all__ = ["DatasetStoreSuite"]


def _digest(n: int) -> str:
    return "blake3:" + f"{n:064x}"


def _version(store: TrackingStore, name: str, n: int, **kwargs: object) -> tuple[int, bool]:
    info, created = store.create_dataset_version(
        name,
        digest=_digest(n),
        kind="files",
        num_files=1,
        size=n,
        **kwargs,  # type: ignore[arg-type]
    )
    return info.version, created


def _run(store: TrackingStore) -> str:
    exp = store.create_experiment(f"exp-{uuid.uuid4().hex[:8]}").experiment_id
    return store.create_run(exp).run_id


class DatasetStoreSuite:
    def test_versions_are_numbered_from_one(self, store: TrackingStore) -> None:
        assert _version(store, "customers", 1) == (1, True)
        assert _version(store, "customers", 2) == (2, True)
        assert _version(store, "customers", 3) == (3, True)
        assert [v.version for v in store.list_dataset_versions("customers")] == [3, 2, 1]
        dataset = store.get_dataset("customers")
        assert dataset.latest_version == 3
        assert store.get_dataset_version("customers").version == 3
        assert store.get_dataset_version("customers", 2).digest == _digest(2)

    def test_same_content_as_latest_is_not_a_new_version(self, store: TrackingStore) -> None:
        assert _version(store, "d", 7) == (1, True)
        assert _version(store, "d", 7) == (1, False)
        assert _version(store, "d", 8) == (2, True)
        # going back to earlier content is a new version (history is linear)
        assert _version(store, "d", 7) == (3, True)

    def test_version_fields_round_trip(self, store: TrackingStore) -> None:
        schema = {"num_rows": 3, "columns": [{"name": "é 🚀", "type": "int64"}]}
        profile = {"num_rows": 3, "columns": {"x": {"edges": [0.5, 1.0], "counts": [0, 1, 2]}}}
        info, _ = store.create_dataset_version(
            "tbl",
            digest=_digest(1),
            kind=DatasetKind.TABLE,
            num_files=1,
            size=123,
            num_rows=3,
            schema=schema,
            profile=profile,
            source="data/x.csv",
            description="first",
        )
        got = store.get_dataset_version("tbl", 1)
        assert got == info
        assert (got.kind, got.num_rows, got.size, got.source) == ("table", 3, 123, "data/x.csv")
        assert got.schema == schema
        assert got.profile == profile
        assert got.ref == "tbl@v1"
        assert store.find_dataset_versions(_digest(1)) == [got]

    def test_dedup_lookup_across_datasets(self, store: TrackingStore) -> None:
        _version(store, "a", 5)
        _version(store, "b", 5)
        assert [v.ref for v in store.find_dataset_versions(_digest(5))] == ["a@v1", "b@v1"]
        assert store.find_dataset_versions(_digest(6)) == []

    def test_create_and_list_datasets(self, store: TrackingStore) -> None:
        store.create_dataset("zeta", "last")
        with pytest.raises(AlreadyExistsError, match="zeta"):
            store.create_dataset("zeta")
        _version(store, "alpha", 1)
        listed = store.list_datasets()
        assert [(d.name, d.latest_version) for d in listed] == [("alpha", 1), ("zeta", None)]
        with pytest.raises(DatasetNotFoundError, match="no versions yet"):
            store.get_dataset_version("zeta")

    def test_missing_dataset_and_version(self, store: TrackingStore) -> None:
        with pytest.raises(DatasetNotFoundError, match="nope"):
            store.get_dataset("nope")
        _version(store, "d", 1)
        with pytest.raises(DatasetNotFoundError, match="latest is v1"):
            store.get_dataset_version("d", 9)

    @pytest.mark.parametrize(
        "name", ["", "a b", "a/b", "a@v1", "../x", "-x", "é", "x" * 129, None, 3]
    )
    def test_bad_dataset_names(self, store: TrackingStore, name: object) -> None:
        with pytest.raises(InvalidArgumentError, match="dataset name") as info:
            store.create_dataset(name)  # type: ignore[arg-type]
        assert info.value.details["field"] == "name"

    def test_bad_version_fields(self, store: TrackingStore) -> None:
        bad: list[dict[str, object]] = [
            {"digest": "sha256:abc"},
            {"kind": "tables"},
            {"num_files": -1},
            {"size": 1.5},
            {"num_rows": True},
            {"schema": ["not", "a", "mapping"]},
            {"profile": {"x": float("nan")}},
        ]
        for change in bad:
            fields: dict[str, object] = {
                "digest": _digest(1),
                "kind": "files",
                "num_files": 1,
                "size": 1,
            }
            fields.update(change)
            field = next(iter(change))
            with pytest.raises(InvalidArgumentError) as info:
                store.create_dataset_version("d", **fields)  # type: ignore[arg-type]
            assert info.value.details["field"] == field
        assert store.list_datasets() == []  # nothing half-created

    def test_bad_version_numbers(self, store: TrackingStore) -> None:
        _version(store, "d", 1)
        for version in (0, -1, True, "1", 2**40):
            with pytest.raises(InvalidArgumentError, match="version"):
                store.get_dataset_version("d", version)  # type: ignore[arg-type]

    def test_rules_attach_and_remove(self, store: TrackingStore) -> None:
        store.create_dataset("d")
        rules = {"columns": {"age": {"min": 0}}}
        assert store.set_dataset_rules("d", rules).rules == rules
        assert store.get_dataset("d").rules == rules
        assert store.set_dataset_rules("d", None).rules is None
        with pytest.raises(DatasetNotFoundError):
            store.set_dataset_rules("other", rules)

    def test_concurrent_adds_get_distinct_versions(self, store: TrackingStore) -> None:
        _version(store, "busy", 0)
        errors: list[BaseException] = []

        def add(n: int) -> None:
            try:
                _version(store, "busy", n)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=add, args=(n,)) for n in range(1, 9)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        versions = [v.version for v in store.list_dataset_versions("busy")]
        assert sorted(versions) == list(range(1, 10))

    # -- lineage ---------------------------------------------------------------------------

    def test_run_inputs_and_usages(self, store: TrackingStore) -> None:
        _version(store, "train", 1)
        _version(store, "train", 2)
        _version(store, "test", 3)
        run_a, run_b = _run(store), _run(store)
        store.log_dataset_inputs(run_a, [("train", 2, "training"), ("test", 1, "evaluation")])
        store.log_dataset_inputs(run_a, [("train", 2, "training")])  # repeat: ignored
        store.log_dataset_inputs(run_b, [("train", 1, "training")])
        inputs = store.list_run_inputs(run_a)
        assert [(i.ref, i.context) for i in inputs] == [
            ("test@v1", "evaluation"),
            ("train@v2", "training"),
        ]
        assert [i.run_id for i in store.list_dataset_usages("train", 2)] == [run_a]
        assert {i.run_id for i in store.list_dataset_usages("train")} == {run_a, run_b}
        assert store.list_dataset_usages("test", 1)[0].run_id == run_a

    def test_inputs_are_checked(self, store: TrackingStore) -> None:
        _version(store, "train", 1)
        run = _run(store)
        with pytest.raises(DatasetNotFoundError, match="no version 5"):
            store.log_dataset_inputs(run, [("train", 1, "training"), ("train", 5, "training")])
        assert store.list_run_inputs(run) == []  # the batch is all or nothing
        with pytest.raises(DatasetNotFoundError):
            store.log_dataset_inputs(run, [("ghost", 1, "training")])
        with pytest.raises(RunNotFoundError):
            store.log_dataset_inputs(uuid.uuid4().hex, [("train", 1, "training")])
        with pytest.raises(InvalidArgumentError, match="context"):
            store.log_dataset_inputs(run, [("train", 1, "")])
