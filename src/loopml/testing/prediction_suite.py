"""The prediction-log part of the store conformance suite (segments of predictions and
feedback per model, found by time range).

:class:`loopml.testing.store_suite.TrackingStoreSuite` includes it; it needs the same
``store`` fixture.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from loopml.entities import PredictionLogKind, PredictionSegment
from loopml.errors import ArtifactNotFoundError, InvalidArgumentError
from loopml.storage.protocols import TrackingStore

__all__ = ["PredictionLogStoreSuite"]

MISSING = "blake3:" + "ab" * 32


def _blob(store: TrackingStore, text: str) -> tuple[str, int]:
    ref = store.blobs.put_bytes(text.encode())
    return ref.digest, ref.size


def _segment(
    store: TrackingStore,
    start: int,
    end: int,
    *,
    model: str = "churn",
    kind: str = "predictions",
    version: int | None = 1,
    rows: int = 10,
) -> PredictionSegment:
    digest, size = _blob(store, f"{model} {kind} {version} {start} {end} {rows}")
    return store.record_prediction_segment(
        model,
        kind=kind,
        start_time=start,
        end_time=end,
        row_count=rows,
        digest=digest,
        size=size,
        model_version=version,
    )


def _starts(segments: list[PredictionSegment]) -> list[int]:
    return [s.start_time for s in segments]


class PredictionLogStoreSuite:
    def test_segment_round_trip(self, store: TrackingStore) -> None:
        digest, size = _blob(store, "parquet bytes")
        segment = store.record_prediction_segment(
            "churn",
            kind=PredictionLogKind.PREDICTIONS,
            start_time=1_700_000_000_000,
            end_time=1_700_000_060_000,
            row_count=123,
            digest=digest,
            size=size,
            model_version=3,
        )
        assert (segment.model_name, segment.model_version, segment.kind) == (
            "churn",
            3,
            "predictions",
        )
        assert (segment.start_time, segment.end_time) == (1_700_000_000_000, 1_700_000_060_000)
        assert (segment.row_count, segment.digest, segment.size) == (123, digest, size)
        assert segment.segment_id
        assert segment.created_time > 0
        assert isinstance(segment.kind, PredictionLogKind)
        assert store.list_prediction_segments("churn") == [segment]
        assert store.list_prediction_segments("churn", kind="feedback") == []

    def test_recording_the_same_blob_again_finds_the_first(self, store: TrackingStore) -> None:
        first = _segment(store, 0, 9)
        again = store.record_prediction_segment(
            "churn",
            kind="predictions",
            start_time=0,
            end_time=9,
            row_count=10,
            digest=first.digest,
            size=first.size,
            model_version=1,
        )
        assert again == first
        # the same bytes as another kind or model are another segment
        feedback = store.record_prediction_segment(
            "churn",
            kind="feedback",
            start_time=0,
            end_time=9,
            row_count=10,
            digest=first.digest,
            size=first.size,
        )
        assert feedback.segment_id != first.segment_id
        assert feedback.model_version is None
        assert store.list_prediction_segments("churn") == [first]
        assert store.list_prediction_segments("churn", kind="feedback") == [feedback]

    def test_time_range_is_an_overlap_with_start_inclusive_end_exclusive(
        self, store: TrackingStore
    ) -> None:
        # recorded out of order: listed by start time
        for start in (20, 0, 10):
            _segment(store, start, start + 9)
        lst = store.list_prediction_segments
        assert _starts(lst("churn")) == [0, 10, 20]
        assert _starts(lst("churn", start=10, end=20)) == [10]
        assert _starts(lst("churn", start=9, end=20)) == [0, 10]
        assert _starts(lst("churn", start=10, end=21)) == [10, 20]
        assert _starts(lst("churn", start=29)) == [20]
        assert _starts(lst("churn", start=30)) == []
        assert _starts(lst("churn", end=1)) == [0]
        assert _starts(lst("churn", end=0)) == []
        assert _starts(lst("churn", start=5, end=5)) == []
        assert _starts(lst("churn", start=15, end=16)) == [10]

    def test_versions_kinds_and_models_are_apart(self, store: TrackingStore) -> None:
        _segment(store, 0, 5, version=1)
        _segment(store, 3, 8, version=2)
        _segment(store, 4, 9, version=None)
        _segment(store, 1, 2, kind="feedback", version=None)
        _segment(store, 2, 3, model="fraud.v2_x-1")  # any name the registry allows
        assert _starts(store.list_prediction_segments("churn")) == [0, 3, 4]
        assert _starts(store.list_prediction_segments("churn", version=2)) == [3]
        assert [s.model_version for s in store.list_prediction_segments("churn")] == [1, 2, None]
        assert _starts(store.list_prediction_segments("churn", kind="feedback")) == [1]
        assert _starts(store.list_prediction_segments("fraud.v2_x-1")) == [2]
        assert store.list_prediction_segments("unknown") == []
        # a prediction log does not register the model
        assert "churn" not in [m.name for m in store.list_registered_models()]

    def test_the_blob_must_be_stored(self, store: TrackingStore) -> None:
        with pytest.raises(ArtifactNotFoundError, match=MISSING):
            store.record_prediction_segment(
                "churn",
                kind="predictions",
                start_time=0,
                end_time=1,
                row_count=1,
                digest=MISSING,
                size=10,
            )
        digest, size = _blob(store, "x" * 10)
        with pytest.raises(InvalidArgumentError, match="size") as info:
            store.record_prediction_segment(
                "churn",
                kind="predictions",
                start_time=0,
                end_time=1,
                row_count=1,
                digest=digest,
                size=size + 1,
            )
        assert info.value.details["field"] == "size"
        assert store.list_prediction_segments("churn") == []

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("model_name", ""),
            ("model_name", "a/b"),
            ("model_name", "-x"),
            ("model_name", "x" * 257),
            ("model_name", None),
            ("kind", "logs"),
            ("kind", None),
            ("start_time", -1),
            ("start_time", "now"),
            ("start_time", 2**63),
            ("end_time", None),
            ("end_time", 5),  # before start_time
            ("row_count", 0),
            ("row_count", -3),
            ("row_count", 1.5),
            ("row_count", True),
            ("digest", "md5:00"),
            ("digest", None),
            ("size", 0),
            ("size", "10"),
            ("model_version", 0),
            ("model_version", "1"),
            ("model_version", 2**31),
        ],
    )
    def test_bad_segment_arguments(self, store: TrackingStore, field: str, value: Any) -> None:
        digest, size = _blob(store, "bytes")
        args: dict[str, Any] = {
            "model_name": "churn",
            "kind": "predictions",
            "start_time": 10,
            "end_time": 20,
            "row_count": 1,
            "digest": digest,
            "size": size,
            "model_version": 1,
        }
        args[field] = value
        name = args.pop("model_name")
        with pytest.raises(InvalidArgumentError) as info:
            store.record_prediction_segment(name, **args)
        assert info.value.details["field"] == field
        assert store.list_prediction_segments("churn") == []

    @pytest.mark.parametrize(
        ("field", "kwargs"),
        [
            ("model_name", {"model_name": "a b"}),
            ("kind", {"kind": "everything"}),
            ("start", {"start": -1}),
            ("start", {"start": "yesterday"}),
            ("end", {"end": 2**63}),
            ("end", {"start": 10, "end": 9}),
            ("version", {"version": 0}),
            ("version", {"version": "2"}),
        ],
    )
    def test_bad_listing_arguments(
        self, store: TrackingStore, field: str, kwargs: dict[str, Any]
    ) -> None:
        kwargs = dict(kwargs)  # the parameter is shared by every backend's run
        name = kwargs.pop("model_name", "churn")
        with pytest.raises(InvalidArgumentError) as info:
            store.list_prediction_segments(name, **kwargs)
        assert info.value.details["field"] == field

    def test_concurrent_records_of_one_blob_make_one_segment(self, store: TrackingStore) -> None:
        digest, size = _blob(store, "shared")
        found: list[PredictionSegment] = []
        errors: list[BaseException] = []

        def record() -> None:
            try:
                found.append(
                    store.record_prediction_segment(
                        "churn",
                        kind="predictions",
                        start_time=1,
                        end_time=2,
                        row_count=3,
                        digest=digest,
                        size=size,
                    )
                )
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=record) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len({s.segment_id for s in found}) == 1
        assert len(store.list_prediction_segments("churn")) == 1
