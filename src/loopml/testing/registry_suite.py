"""The registry part of the store conformance suite (models, versions, aliases, events).

:class:`loopml.testing.store_suite.TrackingStoreSuite` includes it; it needs the same
``store`` fixture.
"""

from __future__ import annotations

import threading
import uuid

import pytest

from loopml.entities import ModelVersionStatus
from loopml.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidArgumentError,
    ModelNotFoundError,
    RunNotFoundError,
)
from loopml.storage.protocols import TrackingStore

__all__ = ["RegistryStoreSuite"]


def _digest(n: int) -> str:
    return "blake3:" + f"{n:064x}"


def _run(store: TrackingStore) -> str:
    exp = store.create_experiment(f"exp-{uuid.uuid4().hex[:8]}").experiment_id
    return store.create_run(exp).run_id


def _version(store: TrackingStore, name: str = "churn", n: int = 1, **kwargs: object) -> int:
    return store.create_model_version(name, package_digest=_digest(n), **kwargs).version  # type: ignore[arg-type]


class RegistryStoreSuite:
    def test_registered_models(self, store: TrackingStore) -> None:
        created = store.create_registered_model("churn", "predicts churn", {"team": "growth"})
        assert (created.name, created.description, created.tags) == (
            "churn",
            "predicts churn",
            {"team": "growth"},
        )
        assert created.latest_version is None
        with pytest.raises(AlreadyExistsError, match="churn"):
            store.create_registered_model("churn")
        store.set_registered_model_tag("churn", "owner", "ana")
        store.delete_registered_model_tag("churn", "team")
        store.update_registered_model("churn", description="v2 of the text")
        got = store.get_registered_model("churn")
        assert (got.tags, got.description) == ({"owner": "ana"}, "v2 of the text")
        store.create_registered_model("alpha")
        assert [m.name for m in store.list_registered_models()] == ["alpha", "churn"]
        with pytest.raises(ModelNotFoundError, match="nope"):
            store.get_registered_model("nope")

    def test_versions_are_numbered_and_create_the_model(self, store: TrackingStore) -> None:
        run_id = _run(store)
        first = store.create_model_version(
            "churn",
            package_digest=_digest(1),
            run_id=run_id,
            source=f"runs:/{run_id}/model",
            flavor="sklearn",
            tags={"stage": "dev"},
            description="baseline",
        )
        assert (first.version, first.run_id, first.flavor, first.tags) == (
            1,
            run_id,
            "sklearn",
            {"stage": "dev"},
        )
        assert first.status is ModelVersionStatus.READY
        assert first.uri == "models:/churn/1"
        assert _version(store, n=2) == 2
        assert [v.version for v in store.list_model_versions("churn")] == [2, 1]
        assert store.get_registered_model("churn").latest_version == 2
        assert store.get_model_version("churn", 1) == first

    def test_deleted_version_numbers_are_not_reused(self, store: TrackingStore) -> None:
        _version(store, n=1)
        _version(store, n=2)
        store.delete_model_version("churn", 2)
        assert _version(store, n=3) == 3
        with pytest.raises(ModelNotFoundError, match="no version 2"):
            store.get_model_version("churn", 2)

    def test_version_tags_and_description(self, store: TrackingStore) -> None:
        _version(store)
        store.set_model_version_tag("churn", 1, "validated", "yes")
        store.set_model_version_tag("churn", 1, "validated", "no")
        store.set_model_version_tag("churn", 1, "gone", "x")
        store.delete_model_version_tag("churn", 1, "gone")
        store.update_model_version("churn", 1, description="checked")
        got = store.get_model_version("churn", 1)
        assert (got.tags, got.description) == ({"validated": "no"}, "checked")

    def test_aliases_move_atomically_and_are_recorded(self, store: TrackingStore) -> None:
        _version(store, n=1)
        _version(store, n=2)
        assert store.set_alias("churn", "champion", 1, actor="ana", reason="first") is None
        assert store.set_alias("churn", "champion", 2, actor="bot", reason="better f1") == 1
        store.set_alias("churn", "challenger", 1)
        assert store.get_model_version_by_alias("churn", "champion").version == 2
        assert store.get_registered_model("churn").aliases == {"challenger": 1, "champion": 2}
        assert store.get_model_version("churn", 1).aliases == ("challenger",)
        assert store.delete_alias("churn", "challenger", reason="retired") == 1
        with pytest.raises(ModelNotFoundError, match="challenger"):
            store.get_model_version_by_alias("churn", "challenger")
        moves = [e for e in store.list_registry_events("churn") if e.kind.startswith("model.alias")]
        assert [
            (e.kind, e.actor, e.payload.get("version"), e.payload["previous"]) for e in moves
        ] == [
            ("model.alias_set", "ana", 1, None),
            ("model.alias_set", "bot", 2, 1),
            ("model.alias_set", None, 1, None),
            ("model.alias_deleted", None, None, 1),
        ]
        assert moves[1].payload["reason"] == "better f1"

    def test_no_alias_ever_dangles(self, store: TrackingStore) -> None:
        _version(store, n=1)
        _version(store, n=2)
        store.set_alias("churn", "champion", 1)
        with pytest.raises(ConflictError, match="champion"):
            store.set_model_version_status("churn", 1, "ARCHIVED")
        with pytest.raises(ConflictError, match="champion"):
            store.delete_model_version("churn", 1)
        assert store.get_model_version_by_alias("churn", "champion").version == 1
        archived = store.set_model_version_status("churn", 1, "ARCHIVED", force=True, actor="ana")
        assert (archived.status, archived.aliases) == (ModelVersionStatus.ARCHIVED, ())
        assert store.get_registered_model("churn").aliases == {}
        with pytest.raises(ConflictError, match="READY"):
            store.set_alias("churn", "champion", 1)
        restored = store.set_model_version_status("churn", 1, "READY")
        assert restored.status is ModelVersionStatus.READY
        store.set_alias("churn", "champion", 2)
        store.delete_model_version("churn", 2, force=True)
        assert store.get_registered_model("churn").aliases == {}
        kinds = [e.kind for e in store.list_registry_events("churn")]
        assert "model.version_archived" in kinds
        assert "model.version_restored" in kinds
        assert kinds.count("model.alias_deleted") == 2

    def test_deleting_a_model_keeps_its_history(self, store: TrackingStore) -> None:
        _version(store)
        store.set_alias("churn", "champion", 1)
        store.delete_registered_model("churn", actor="ana", reason="obsolete")
        with pytest.raises(ModelNotFoundError):
            store.get_registered_model("churn")
        assert store.list_registry_events("churn")[-1].kind == "model.deleted"
        assert _version(store) == 1  # a new model of the same name starts again

    @pytest.mark.parametrize(
        ("call", "field"),
        [
            (lambda s: s.create_registered_model("bad name"), "name"),
            (lambda s: s.create_registered_model("a/b"), "name"),
            (lambda s: s.create_model_version("m", package_digest="md5:x"), "digest"),
            (
                lambda s: s.create_model_version("m", package_digest=_digest(1), run_id="x"),
                "run_id",
            ),
            (lambda s: s.get_model_version("m", 0), "version"),
            (lambda s: s.set_alias("m", "v3", 1), "alias"),
            (lambda s: s.set_alias("m", "latest", 1), "alias"),
            (lambda s: s.set_alias("m", "7", 1), "alias"),
            (lambda s: s.set_model_version_status("m", 1, "GONE"), "status"),
        ],
    )
    def test_bad_registry_arguments(self, store: TrackingStore, call: object, field: str) -> None:
        _version(store, "m")
        with pytest.raises(InvalidArgumentError) as info:
            call(store)  # type: ignore[operator]
        assert info.value.details["field"] == field

    def test_version_needs_an_existing_run(self, store: TrackingStore) -> None:
        with pytest.raises(RunNotFoundError):
            store.create_model_version("m", package_digest=_digest(1), run_id=uuid.uuid4().hex)
        with pytest.raises(ModelNotFoundError):
            store.get_registered_model("m")  # nothing was half-created

    def test_concurrent_alias_moves_and_versions(self, store: TrackingStore) -> None:
        for n in range(1, 5):
            _version(store, n=n)
        errors: list[BaseException] = []

        def work(i: int) -> None:
            try:
                for j in range(5):
                    store.set_alias("churn", "champion", 1 + (i + j) % 4, actor=f"t{i}")
                _version(store, n=100 + i)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert sorted(v.version for v in store.list_model_versions("churn")) == list(range(1, 11))
        moves = [e for e in store.list_registry_events("churn") if e.kind == "model.alias_set"]
        assert len(moves) == 30
        # the recorded history is a chain: each move's "previous" is the move before it
        assert [m.payload["previous"] for m in moves[1:]] == [
            m.payload["version"] for m in moves[:-1]
        ]
        final = store.get_model_version_by_alias("churn", "champion").version
        assert final == moves[-1].payload["version"]

    def test_models_trained_on_a_dataset(self, store: TrackingStore) -> None:
        store.create_dataset_version("train", digest=_digest(1), kind="table", num_files=1, size=1)
        store.create_dataset_version("train", digest=_digest(2), kind="table", num_files=1, size=1)
        run_a, run_b = _run(store), _run(store)
        store.log_dataset_inputs(run_a, [("train", 1, "training")])
        store.log_dataset_inputs(run_b, [("train", 2, "training")])
        store.create_model_version("churn", package_digest=_digest(7), run_id=run_a)
        store.create_model_version("churn", package_digest=_digest(8), run_id=run_b)
        store.create_model_version("other", package_digest=_digest(9))
        assert [(m.name, m.version) for m in store.list_dataset_models("train", 1)] == [
            ("churn", 1)
        ]
        assert [(m.name, m.version) for m in store.list_dataset_models("train")] == [
            ("churn", 1),
            ("churn", 2),
        ]
