"""The prediction log: segments written asynchronously, bounded memory, nothing acknowledged
lost on close, read back and joined with feedback (locally and through a live server)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loopml.entities import PredictionLogKind
from loopml.errors import InvalidArgumentError, StoreUnavailableError
from loopml.serving.predlog import (
    BASE_SCHEMA,
    FEEDBACK_TIMESTAMP,
    STAGE_ROW_BYTES,
    PredictionLog,
    join_feedback,
    read_feedback,
    read_predictions,
)
from loopml.storage.blobs import BlobRef, BlobStore
from loopml.storage.rest import RestStore
from loopml.storage.sql import SqlStore
from loopml.testing.server import live_server

T0 = 1_700_000_000_000


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    store = SqlStore(f"sqlite:///{tmp_path / 'meta.db'}", BlobStore(str(tmp_path / "blobs")))
    yield store
    store.close()


class _Blobs:
    """A blob store that runs ``before_put`` before each write."""

    def __init__(self, inner: BlobStore, before_put: Callable[[], None]) -> None:
        self.inner = inner
        self.before_put = before_put
        self.puts = 0

    def put_bytes(self, data: bytes) -> BlobRef:
        self.puts += 1
        self.before_put()
        return self.inner.put_bytes(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _Store:
    """``inner`` with its blob writes going through :class:`_Blobs`."""

    def __init__(self, inner: SqlStore, before_put: Callable[[], None]) -> None:
        self.inner = inner
        self.blobs = _Blobs(inner.blobs, before_put)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _one(log: PredictionLog, i: int, model: str = "churn", version: int | None = 1) -> bool:
    return log.log(
        f"req-{i}",
        model,
        version,
        {"x": np.array([float(i)])},
        {"y": np.array([i % 2])},
        T0 + i,
    )


def _wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# -- round trips ----------------------------------------------------------------------------------


def _log_varied(log: PredictionLog) -> None:
    """Requests with numbers, booleans, text, missing values, 2-D and 3-D arrays."""
    assert log.log(
        "a",
        "churn",
        3,
        {
            "age": np.array([31, 45], dtype=np.int32),
            "income": np.array([1.5, np.nan]),
            "member": np.array([True, False]),
            "city": np.array(["Oslo", "Zürich 🚀"]),
            "note": np.array(["x", None], dtype=object),
            "emb": np.arange(6, dtype=np.float32).reshape(2, 3),
            "img": np.arange(16, dtype=np.uint8).reshape(2, 2, 2, 2),
        },
        {"proba": np.array([[0.2, 0.8], [0.6, 0.4]]), "label": np.array(["yes", "no"])},
        T0,
    )
    # a later request without some features and one more
    assert log.log(
        "b",
        "churn",
        3,
        {"age": np.int64(50), "extra": np.array(["new"])},
        {"proba": np.array([[0.5, 0.5]]), "label": np.array(["no"])},
        T0 + 10,
    )


def _check_varied(table: pa.Table) -> None:
    assert table.num_rows == 3
    assert table.schema.names[:4] == BASE_SCHEMA.names
    rows = table.to_pylist()
    assert [(r["request_id"], r["row"], r["timestamp"]) for r in rows] == [
        ("a", 0, T0),
        ("a", 1, T0),
        ("b", 0, T0 + 10),
    ]
    assert [r["model_version"] for r in rows] == [3, 3, 3]
    assert [r["input.age"] for r in rows] == [31, 45, 50]
    assert rows[0]["input.income"] == 1.5
    assert np.isnan(rows[1]["input.income"])
    assert rows[2]["input.income"] is None  # the request did not have it
    assert [r["input.member"] for r in rows] == [True, False, None]
    assert [r["input.city"] for r in rows] == ["Oslo", "Zürich 🚀", None]
    assert [r["input.note"] for r in rows] == ["x", None, None]
    assert [r["input.extra"] for r in rows] == [None, None, "new"]
    assert [r["input.emb"] for r in rows] == [[0, 1, 2], [3, 4, 5], None]
    assert rows[1]["input.img"] == list(range(8, 16))
    assert [r["output.proba"] for r in rows] == [[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]]
    assert [r["output.label"] for r in rows] == ["yes", "no", "no"]
    types = {field.name: field.type for field in table.schema}
    assert types["input.age"] == pa.int64()  # int32 and int64 requests: the wider type
    assert types["input.member"] == pa.bool_()
    assert types["input.emb"] == pa.list_(pa.float32())
    shape = table.schema.field("input.img").metadata[b"loopml.row_shape"]
    assert shape == b"[2, 2, 2]"
    img = np.asarray(table.column("input.img")[0].as_py(), dtype=np.uint8).reshape(2, 2, 2)
    assert (img == np.arange(8).reshape(2, 2, 2)).all()


def test_round_trip_through_a_local_store(sql_store: SqlStore) -> None:
    log = PredictionLog(sql_store)
    _log_varied(log)
    assert log.close()
    assert log.stats() == {
        "logged_rows": 3,
        "dropped_rows": 0,
        "lost_rows": 0,
        "written_rows": 3,
        "pending_rows": 0,
        "written_segments": 1,
        "failed_segments": 0,
        "dropped_requests": 0,
    }
    (segment,) = sql_store.list_prediction_segments("churn")
    assert (segment.model_version, segment.kind, segment.row_count) == (3, "predictions", 3)
    assert (segment.start_time, segment.end_time) == (T0, T0 + 10)
    raw = pq.read_table(pa.BufferReader(sql_store.blobs.read_bytes(segment.digest)))
    assert raw.schema.metadata[b"loopml.prediction_log"] == b"1"
    assert raw.schema.metadata[b"loopml.model"] == b"churn"
    metadata = pq.ParquetFile(pa.BufferReader(sql_store.blobs.read_bytes(segment.digest))).metadata
    assert metadata.row_group(0).column(0).compression == "ZSTD"
    _check_varied(read_predictions(sql_store, "churn"))
    _check_varied(read_predictions(sql_store, "churn", version=3))
    assert read_predictions(sql_store, "churn", version=4).num_rows == 0


def test_round_trip_through_a_live_server(store: SqlStore) -> None:
    with live_server(store) as url:
        remote = RestStore(url, retry_seconds=0)
        try:
            log = PredictionLog(remote)
            _log_varied(log)
            assert log.log_feedback("a", "churn", {"label": np.array(["no", "no"])}, T0 + 99)
            assert log.close()
            assert log.written_segments == 2
            # segments and blobs are the server's, read back through it
            assert len(store.list_prediction_segments("churn")) == 1
            assert len(store.list_prediction_segments("churn", kind="feedback")) == 1
            predictions = read_predictions(remote, "churn")
            _check_varied(predictions)
            joined = join_feedback(predictions, read_feedback(remote, "churn"))
            assert joined.column("label.label").to_pylist() == ["no", "no", None]
        finally:
            remote.close()


# -- rolling --------------------------------------------------------------------------------------


def test_segments_roll_by_size(store: SqlStore) -> None:
    log = PredictionLog(store, max_rows=10, max_seconds=3600)
    for i in range(25):
        assert _one(log, i)
    _wait_for(lambda: log.written_segments == 2)  # the writer rolled them, no flush
    assert log.pending_rows == 5
    assert [s.row_count for s in store.list_prediction_segments("churn")] == [10, 10]
    assert log.close()
    segments = store.list_prediction_segments("churn")
    assert [(s.row_count, s.start_time, s.end_time) for s in segments] == [
        (10, T0, T0 + 9),
        (10, T0 + 10, T0 + 19),
        (5, T0 + 20, T0 + 24),
    ]
    assert read_predictions(store, "churn").column("request_id").to_pylist() == [
        f"req-{i}" for i in range(25)
    ]


def test_a_request_larger_than_a_segment_is_not_split(store: SqlStore) -> None:
    log = PredictionLog(store, max_rows=10, max_seconds=3600)
    assert log.log("big", "churn", 1, {"x": np.zeros(25)}, {}, T0)
    assert log.close()
    assert [s.row_count for s in store.list_prediction_segments("churn")] == [25]


def test_segments_roll_by_age(store: SqlStore) -> None:
    log = PredictionLog(store, max_rows=1000, max_seconds=0.2)
    started = time.monotonic()
    for i in range(3):
        assert _one(log, i)
    _wait_for(lambda: log.written_segments == 1)
    assert time.monotonic() - started >= 0.2
    assert [s.row_count for s in store.list_prediction_segments("churn")] == [3]
    for i in range(3, 5):  # the next segment starts its own clock
        assert _one(log, i)
    _wait_for(lambda: log.written_segments == 2)
    assert log.close()


def test_segments_are_per_model_version_and_kind(store: SqlStore) -> None:
    log = PredictionLog(store)
    for i in range(6):
        _one(log, i, model="churn", version=1 + i % 2)
    _one(log, 6, model="churn", version=None)
    _one(log, 7, model="fraud", version=1)
    assert log.log_feedback("req-0", "churn", 1, T0 + 100)
    assert log.flush()
    assert log.written_segments == 5
    listed = store.list_prediction_segments
    assert [(s.model_version, s.row_count) for s in listed("churn")] == [(1, 3), (2, 3), (None, 1)]
    assert [s.row_count for s in listed("churn", kind="feedback")] == [1]
    assert [s.row_count for s in listed("fraud")] == [1]
    assert read_predictions(store, "churn", version=2).column("request_id").to_pylist() == [
        "req-1",
        "req-3",
        "req-5",
    ]
    assert log.close()


def test_reading_a_time_range(store: SqlStore) -> None:
    log = PredictionLog(store, max_rows=4)
    for i in range(10):
        _one(log, i)
    assert log.close()
    table = read_predictions(store, "churn", start=T0 + 3, end=T0 + 7)
    assert table.column("request_id").to_pylist() == ["req-3", "req-4", "req-5", "req-6"]
    assert read_predictions(store, "churn", start=T0 + 100).num_rows == 0
    assert read_predictions(store, "nothing").schema == BASE_SCHEMA


# -- bounded memory, failures ---------------------------------------------------------------------


def test_a_blocked_store_never_blocks_log_and_drops_are_counted_exactly(store: SqlStore) -> None:
    release = threading.Event()
    blocked = _Store(store, lambda: release.wait(30))
    log = PredictionLog(blocked, max_rows=10, max_seconds=3600, max_pending_rows=50)  # type: ignore[arg-type]
    accepted: list[bool] = []
    durations: list[float] = []

    def client() -> None:
        for i in range(210):
            started = time.perf_counter()
            accepted.append(_one(log, i))
            durations.append(time.perf_counter() - started)
            if i == 9:  # the first segment is due: let the writer take it and block
                _wait_for(lambda: blocked.blobs.puts == 1)

    thread = threading.Thread(target=client)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "log() blocked"
    assert max(durations) < 0.5
    assert sum(accepted) == 50  # 10 being written + 40 buffered: the limit
    assert accepted == [True] * 50 + [False] * 160
    assert (log.logged_rows, log.dropped_rows, log.dropped_requests) == (50, 160, 160)
    assert log.pending_rows == 50
    assert log.flush(timeout=0.05) is False  # the writer holds the log
    release.set()
    assert log.close()
    assert log.stats()["written_rows"] == 50
    assert read_predictions(store, "churn").column("request_id").to_pylist() == [
        f"req-{i}" for i in range(50)
    ]


def _fail() -> None:
    raise StoreUnavailableError("the blob store is down")


def test_a_failing_store_never_raises_into_log(store: SqlStore) -> None:
    failing = _Store(store, _fail)
    log = PredictionLog(failing, max_rows=5, max_seconds=3600, retry_seconds=3600)  # type: ignore[arg-type]
    for i in range(12):
        assert _one(log, i)
    _wait_for(lambda: log.failed_segments == 2)  # two full segments failed in the background
    assert log.pending_rows == 12  # kept for their retry
    assert log.flush() is False  # retries the two, fails the last 2 rows' first attempt
    assert (log.failed_segments, log.lost_rows, log.pending_rows) == (5, 10, 2)
    assert log.close(timeout=0.2) is False  # the last retry is an hour away
    assert log.flush() is False  # ... or now: and it fails
    assert (log.lost_rows, log.pending_rows) == (12, 0)
    assert log.dropped_rows == 12
    assert log.logged_rows == log.written_rows + log.pending_rows + log.lost_rows
    assert store.list_prediction_segments("churn") == []


def test_a_failed_segment_is_written_on_its_retry(store: SqlStore) -> None:
    failures = [1]

    def fail_once() -> None:
        if failures:
            failures.pop()
            _fail()

    log = PredictionLog(_Store(store, fail_once), retry_seconds=0.05)  # type: ignore[arg-type]
    for i in range(7):
        assert _one(log, i)
    assert log.flush() is False
    assert log.pending_rows == 7
    _wait_for(lambda: log.written_segments == 1)  # the writer retried it
    assert (log.failed_segments, log.lost_rows, log.pending_rows) == (1, 0, 0)
    assert log.close()
    assert read_predictions(store, "churn").num_rows == 7


def test_a_failing_record_is_retried_without_a_second_blob(store: SqlStore) -> None:
    """The blob is written, then recording fails: the retry records the same blob."""
    calls = []

    class FailingRecord(_Store):
        def record_prediction_segment(self, *args: Any, **kwargs: Any) -> Any:
            calls.append(kwargs["digest"])
            if len(calls) == 1:
                _fail()
            return self.inner.record_prediction_segment(*args, **kwargs)

    log = PredictionLog(FailingRecord(store, lambda: None))  # type: ignore[arg-type]
    _one(log, 0)
    assert log.flush() is False
    assert log.flush() is True
    assert calls[0] == calls[1]
    assert len(store.list_prediction_segments("churn")) == 1


# -- shutdown -------------------------------------------------------------------------------------


def test_close_writes_everything_acknowledged(store: SqlStore) -> None:
    log = PredictionLog(store, max_rows=1000, max_seconds=3600)
    for i in range(100):
        assert _one(log, i, version=1 + i % 3)
    assert log.log_feedback("req-1", "churn", 0, T0 + 1000)
    assert log.close()
    assert log.closed
    total = sum(s.row_count for s in store.list_prediction_segments("churn"))
    assert total == 100
    assert read_feedback(store, "churn").num_rows == 1
    # after close nothing is accepted (and it is counted)
    assert _one(log, 100) is False
    assert log.dropped_rows == 1
    assert log.close()


def test_interpreter_exit_writes_what_was_not_closed(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import numpy as np
        from loopml.serving.predlog import PredictionLog
        from loopml.storage.blobs import BlobStore
        from loopml.storage.sql import SqlStore

        store = SqlStore("sqlite:///{tmp_path / "exit.db"}", BlobStore("{tmp_path / "b"}"))
        log = PredictionLog(store, max_seconds=3600)
        for i in range(500):
            assert log.log(f"r{{i}}", "churn", 1, {{"x": np.array([i])}}, {{}}, {T0} + i)
        print("logged", flush=True)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    store = SqlStore(f"sqlite:///{tmp_path / 'exit.db'}", BlobStore(str(tmp_path / "b")))
    try:
        assert read_predictions(store, "churn").num_rows == 500
    finally:
        store.close()


@pytest.mark.parametrize("max_pending_rows", [3_000, 1_000_000])
def test_concurrent_logging_loses_nothing(store: SqlStore, max_pending_rows: int) -> None:
    """8 threads log at once (with drops when the limit is low, none when it is high):
    every accepted row is written exactly once, and accepted + dropped = attempted."""
    log = PredictionLog(store, max_rows=700, max_seconds=0.05, max_pending_rows=max_pending_rows)
    accepted: dict[int, list[str]] = {}
    attempts = 3000

    def client(t: int) -> None:
        mine = accepted[t] = []
        for i in range(attempts):
            request_id = f"t{t}-{i}"
            rows = 1 + i % 3
            ok = log.log(
                request_id,
                "churn",
                1 + t % 2,
                {"x": np.full(rows, i), "t": np.full(rows, t)},
                {"y": np.zeros(rows)},
                T0 + i,
            )
            if ok:
                mine.extend([request_id] * rows)

    threads = [threading.Thread(target=client, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert log.close()
    expected = sorted(r for rows in accepted.values() for r in rows)
    table = read_predictions(store, "churn")
    assert table.num_rows == len(expected) == log.logged_rows == log.written_rows
    assert sorted(table.column("request_id").to_pylist()) == expected
    attempted_rows = 8 * sum(1 + i % 3 for i in range(attempts))
    assert log.logged_rows + log.dropped_rows == attempted_rows
    assert log.lost_rows == 0
    assert log.written_segments > 1
    if max_pending_rows > attempted_rows:
        assert log.dropped_rows == 0


# -- feedback -------------------------------------------------------------------------------------


def test_feedback_joins_on_request_id_and_row(store: SqlStore) -> None:
    log = PredictionLog(store)
    log.log("r1", "churn", 1, {"x": np.array([1.0, 2.0, 3.0])}, {"y": np.array([0, 1, 1])}, T0)
    log.log("r2", "churn", 1, {"x": np.array([4.0])}, {"y": np.array([0])}, T0 + 1)
    log.log("r3", "churn", 2, {"x": np.array([5.0])}, {"y": np.array([1])}, T0 + 2)
    assert log.log_feedback("r1", "churn", {"y": np.array([0, 0, 1])}, T0 + 50)
    assert log.log_feedback("r3", "churn", 1, T0 + 60)  # a scalar: the label "label"
    assert log.log_feedback("r1", "churn", {"y": np.array([1, 1, 1])}, T0 + 70)  # the latest wins
    assert log.log_feedback("unknown", "churn", {"y": np.array([1])}, T0 + 80)
    assert log.close()
    predictions = read_predictions(store, "churn")
    feedback = read_feedback(store, "churn")
    assert feedback.num_rows == 8
    joined = join_feedback(predictions, feedback)
    assert joined.num_rows == predictions.num_rows == 5
    labels = ["label.y", "label.label"]
    assert joined.column_names == [*predictions.column_names, FEEDBACK_TIMESTAMP, *labels]
    got = joined.select(["request_id", "row", *labels, FEEDBACK_TIMESTAMP]).to_pylist()
    assert [tuple(row.values()) for row in got] == [
        ("r1", 0, 1, None, T0 + 70),
        ("r1", 1, 1, None, T0 + 70),
        ("r1", 2, 1, None, T0 + 70),
        ("r2", 0, None, None, None),
        ("r3", 0, None, 1, T0 + 60),
    ]
    # the predictions' own columns are unchanged
    assert joined.select(predictions.column_names).equals(predictions)


def test_join_without_feedback(store: SqlStore) -> None:
    log = PredictionLog(store)
    _one(log, 0)
    assert log.close()
    joined = join_feedback(read_predictions(store, "churn"), read_feedback(store, "churn"))
    assert joined.column(FEEDBACK_TIMESTAMP).to_pylist() == [None]
    assert join_feedback(BASE_SCHEMA.empty_table(), BASE_SCHEMA.empty_table()).num_rows == 0


# -- types ----------------------------------------------------------------------------------------


def test_types_that_change_between_requests(store: SqlStore) -> None:
    log = PredictionLog(store)
    log.log("a", "m", 1, {"n": np.array([1]), "s": np.array([1])}, {}, T0)
    log.log("b", "m", 1, {"n": np.array([2.5]), "s": np.array(["two"])}, {}, T0 + 1)
    log.log("c", "m", 1, {"n": np.array([True]), "s": np.array([3 + 1j])}, {}, T0 + 2)
    log.log("d", "m", 1, {"when": np.array(["2024-01-02"], dtype="datetime64[D]")}, {}, T0 + 3)
    assert log.close()
    table = read_predictions(store, "m")
    assert table.column("input.n").to_pylist() == [1.0, 2.5, 1.0, None]  # promoted to float
    assert table.column("input.s").to_pylist() == ["1", "two", "(3+1j)", None]  # text
    assert table.column("input.when").to_pylist()[3].isoformat().startswith("2024-01-02")


def test_types_that_change_between_segments(store: SqlStore) -> None:
    log = PredictionLog(store, max_rows=1)
    log.log("a", "m", 1, {"n": np.array([1]), "s": np.array([1])}, {}, T0)
    log.log("b", "m", 1, {"n": np.array([2.5]), "s": np.array(["two"])}, {}, T0 + 1)
    assert log.close()
    assert log.written_segments == 2
    table = read_predictions(store, "m")
    assert table.column("input.n").to_pylist() == [1.0, 2.5]
    assert table.column("input.s").to_pylist() == ["1", "two"]


def test_layouts_that_change_within_a_segment(store: SqlStore) -> None:
    """Requests of one layout are copied into column buffers; a request of another layout
    (names, dtype, row shape), a structured dtype or a row wider than STAGE_ROW_BYTES starts
    a new part: the segment reads back the same either way."""
    wide = np.arange(2 * (STAGE_ROW_BYTES // 8 + 1), dtype=np.float64).reshape(2, -1)
    records = np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")])
    requests: list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] = [
        ({"x": np.array([1.0, 2.0]), "s": np.array(["a", "bb"])}, {"y": np.array([0, 1])}),
        ({"x": np.array([3.0]), "s": np.array(["ccc"])}, {"y": np.array([1])}),  # same layout
        ({"x": np.array([4.0])}, {"y": np.array([0])}),  # no "s"
        ({"x": np.array([5], dtype=np.int32)}, {"y": np.array([1])}),  # another dtype
        ({"t": np.ones((1, 2, 2))}, {"y": np.array([0])}),  # a tensor
        ({"t": np.ones((1, 3))}, {"y": np.array([0])}),  # another row shape
        ({"w": wide}, {"y": np.array([1, 0])}),  # too wide to copy
        ({"r": records}, {"y": np.array([1])}),  # structured
        ({"x": np.array([6.0]), "s": np.array(["d"])}, {"y": np.array([0])}),
    ]
    log = PredictionLog(store)
    for i, (inputs, outputs) in enumerate(requests):
        assert log.log(f"r{i}", "m", 1, inputs, outputs, T0 + i)
    assert log.close()
    assert log.written_segments == 1
    table = read_predictions(store, "m")
    assert table.column("request_id").to_pylist() == [
        "r0", "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r6", "r7", "r8"
    ]  # fmt: skip
    assert table.column("row").to_pylist() == [0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0]
    x = [1.0, 2.0, 3.0, 4.0, 5.0, None, None, None, None, None, 6.0]
    assert table.column("input.x").to_pylist() == x
    s = ["a", "bb", "ccc", None, None, None, None, None, None, None, "d"]
    assert table.column("input.s").to_pylist() == s
    assert table.column("output.y").to_pylist() == [0, 1, 1, 0, 1, 0, 0, 1, 0, 1, 0]
    t = table.column("input.t").to_pylist()
    assert (t[0], t[5], t[6]) == (None, [1.0] * 4, [1.0] * 3)
    assert table.column("input.w").to_pylist()[7:9] == wide.tolist()


def test_a_logged_array_changed_afterwards(store: SqlStore) -> None:
    """Narrow numeric rows are copied when logged, so a caller reusing its buffer does not
    change what was logged (the documented rule is still: do not change logged arrays)."""
    log = PredictionLog(store)
    buffer = np.array([1.0, 2.0])
    assert log.log("a", "m", 1, {"x": buffer}, {}, T0)
    buffer[:] = 9.0
    assert log.log("b", "m", 1, {"x": buffer}, {}, T0 + 1)
    assert log.close()
    assert read_predictions(store, "m").column("input.x").to_pylist() == [1.0, 2.0, 9.0, 9.0]


@pytest.mark.parametrize("alternate", [False, True])
def test_memory_per_pending_row_stays_small(store: SqlStore, alternate: bool) -> None:
    """With the writer held up (its store blocks) rows pile up to max_pending_rows; each
    still costs about its own size, whether the requests share one layout or alternate
    between two (each request then cuts the stage short)."""
    release = threading.Event()
    blocked = _Store(store, lambda: release.wait(30))
    log = PredictionLog(blocked, max_rows=1_000, max_seconds=3600, max_pending_rows=20_000)  # type: ignore[arg-type]
    row = np.arange(30, dtype=np.float64).reshape(1, 30)
    other = np.arange(20, dtype=np.float32).reshape(1, 20)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(20_000):
            inputs = {"y": other} if alternate and i % 2 else {"x": row}
            assert log.log(f"req-{i:06d}", "m", 1, inputs, {"p": np.array([i % 2])}, T0 + i)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        release.set()
    assert log.close()
    assert log.written_rows == 20_000
    # a row: 240 bytes of inputs, 8 of output, its id and time (a request of its own when
    # the layouts alternate); a stage of 64 rows or more per request cost 15 KB a row
    assert held / 20_000 < (1_500 if alternate else 600), held


def test_log_batch_writes_what_one_log_per_request_writes(tmp_path: Path) -> None:
    rows = [2, 0, 1, 3]
    ids = [f"req-{i}" for i in range(len(rows))]
    x = np.arange(12, dtype=np.float64).reshape(6, 2)
    y = np.array([0, 1, 1, 0, 1, 0])
    tables = []
    for name, batched in (("one", False), ("batch", True)):
        store = SqlStore(f"sqlite:///{tmp_path / name}.db", BlobStore(str(tmp_path / name)))
        log = PredictionLog(store)
        if batched:
            assert log.log_batch(ids, rows, "m", 2, {"x": x}, {"y": y}, T0)
        else:
            start = 0
            for request_id, n in zip(ids, rows, strict=True):
                part = slice(start, start + n)
                assert log.log(request_id, "m", 2, {"x": x[part]}, {"y": y[part]}, T0)
                start += n
        assert log.close()
        assert log.logged_rows == 6
        tables.append(read_predictions(store, "m"))
        store.close()
    assert tables[0].equals(tables[1])
    assert tables[1].column("request_id").to_pylist() == [
        "req-0", "req-0", "req-2", "req-3", "req-3", "req-3"
    ]  # fmt: skip
    assert tables[1].column("row").to_pylist() == [0, 1, 0, 0, 1, 2]


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("request_ids", {"request_ids": []}),
        ("request_ids", {"request_ids": "ab"}),
        ("request_ids", {"request_ids": ["a", 2]}),
        ("request_ids", {"request_ids": ["a", ""]}),
        ("request_ids", {"request_ids": ["a", None]}),
        ("request_ids", {"request_ids": 5}),
        ("rows", {"rows": [1]}),  # one count for two ids
        ("rows", {"rows": [1, -1]}),
        ("rows", {"rows": [1, 1.0]}),
        ("rows", {"rows": None}),
        ("inputs", {"inputs": {"x": np.zeros(3)}}),  # 3 rows, the counts say 2
        ("outputs", {"outputs": {"y": np.zeros(1)}}),
        ("inputs", {"inputs": {}, "outputs": {}}),
        ("model", {"model": "a/b"}),
        ("version", {"version": 0}),
        ("timestamp_ms", {"timestamp_ms": -5}),
    ],
)
def test_bad_log_batch_arguments_name_the_field(
    store: SqlStore, field: str, kwargs: dict[str, Any]
) -> None:
    log = PredictionLog(store)
    args: dict[str, Any] = {
        "request_ids": ["a", "b"],
        "rows": [1, 1],
        "model": "m",
        "version": 1,
        "inputs": {"x": np.zeros(2)},
        "outputs": {"y": np.zeros(2)},
        "timestamp_ms": T0,
    }
    args.update(kwargs)
    with pytest.raises(InvalidArgumentError) as info:
        log.log_batch(**args)
    assert info.value.details["field"] == field
    assert log.logged_rows == log.dropped_rows == 0
    assert log.close()


# -- bad arguments --------------------------------------------------------------------------------


_GOOD: dict[str, Any] = {
    "request_id": "r1",
    "model": "churn",
    "version": 1,
    "inputs": {"x": np.array([1.0])},
    "outputs": {"y": np.array([0])},
    "timestamp_ms": T0,
}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("request_id", ""),
        ("request_id", None),
        ("request_id", 5),
        ("request_id", "x" * 257),
        ("model", "a b"),
        ("model", ""),
        ("model", None),
        ("model", ["churn"]),
        ("version", 0),
        ("version", "1"),
        ("version", True),
        ("version", 2**31),
        ("timestamp_ms", -1),
        ("timestamp_ms", 1.5),
        ("timestamp_ms", "now"),
        ("timestamp_ms", 2**63),
        ("inputs", [1, 2]),
        ("inputs", {"": np.array([1])}),
        ("inputs", {3: np.array([1])}),
        ("inputs", {"x": [[1, 2], [3]]}),  # ragged
        ("inputs", {}),  # and no outputs either (below)
        ("outputs", {"y": np.array([0, 1])}),  # two rows against the inputs' one
        ("outputs", None),
    ],
)
def test_bad_arguments_name_the_field(store: SqlStore, field: str, value: Any) -> None:
    log = PredictionLog(store)
    args = {**_GOOD, field: value}
    if field == "inputs" and value == {}:
        args["outputs"] = {}
    with pytest.raises(InvalidArgumentError) as info:
        log.log(**args)
    assert info.value.details["field"] == field
    assert log.logged_rows == log.dropped_rows == 0
    assert log.close()


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("labels", {"labels": {}}),
        ("labels", {"labels": {"y": [[1], [1, 2]]}}),
        ("request_id", {"request_id": ""}),
        ("model", {"model": "../x"}),
        ("timestamp_ms", {"timestamp_ms": None}),
        ("version", {"version": -1}),
    ],
)
def test_bad_feedback_arguments_name_the_field(
    store: SqlStore, field: str, kwargs: dict[str, Any]
) -> None:
    log = PredictionLog(store)
    args: dict[str, Any] = {"request_id": "r", "model": "churn", "labels": 1, "timestamp_ms": T0}
    args.update(kwargs)
    with pytest.raises(InvalidArgumentError) as info:
        log.log_feedback(**args)
    assert info.value.details["field"] == field
    assert log.close()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_rows", 0),
        ("max_rows", 1.5),
        ("max_seconds", 0),
        ("max_seconds", float("inf")),
        ("max_pending_rows", -1),
        ("retry_seconds", -1),
    ],
)
def test_bad_settings_name_the_field(store: SqlStore, field: str, value: Any) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        PredictionLog(store, **{field: value})
    assert info.value.details["field"] == field


def test_a_store_that_cannot_hold_segments_is_refused() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        PredictionLog(object())  # type: ignore[arg-type]
    assert info.value.details["field"] == "store"


def test_zero_rows_are_accepted_and_write_nothing(store: SqlStore) -> None:
    log = PredictionLog(store)
    assert log.log("r", "churn", 1, {"x": np.zeros((0, 3))}, {"y": np.zeros(0)}, T0)
    assert log.close()
    assert log.logged_rows == 0
    assert store.list_prediction_segments("churn") == []


def test_kinds_are_the_store_kinds() -> None:
    assert {k.value for k in PredictionLogKind} == {"predictions", "feedback"}
