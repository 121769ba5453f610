"""The prediction log: every answered request, and the ground truth that arrives later, kept as
Parquet segments in the blob store.

:class:`PredictionLog` is called on the request path, so :meth:`PredictionLog.log` (one
request) and :meth:`PredictionLog.log_batch` (the requests of one predict call) only check
their arguments and add the rows to an in-memory buffer, under a lock that is never held
during I/O: rows of one layout are copied into growing column arrays, other rows are kept by
reference (:mod:`loopml.serving.segments`). One background thread rolls each buffer into a segment
when it holds ``max_rows`` rows or its oldest row is ``max_seconds`` old, writes it as Parquet
(zstd) to the blob store, and records it with
:meth:`~loopml.storage.protocols.PredictionLogStore.record_prediction_segment`. Segments are
per model, model version and kind (predictions or feedback).

Guarantees:

* **Never blocks or fails a request.** Memory is bounded by ``max_pending_rows``: rows not yet
  written (buffered, being written, or waiting for their retry) count against it, and a
  request that would pass it is dropped and counted (``log`` returns ``False``). A segment
  that cannot be written is logged and counted (``failed_segments``) and its rows are kept
  for one retry ``retry_seconds`` later; if that fails too they are dropped and counted
  (``lost_rows``). Nothing the store does raises into the caller.
* **Nothing acknowledged is lost on a graceful shutdown.** :meth:`PredictionLog.close` (also
  run at interpreter exit) writes every row ``log`` accepted before it returns, as long as
  the store takes the writes.

Arrays must not be changed after they were logged (wide rows are kept by reference). The
segment format and reading it back are described in ``docs/prediction-log.md``.
"""

from __future__ import annotations

import atexit
import io
import logging
import math
import os
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from loopml.entities import PredictionLogKind, PredictionSegment
from loopml.errors import InvalidArgumentError
from loopml.serving.segments import STAGE_ROW_BYTES, Chunk, Stage, build_table
from loopml.storage.prediction_segments import (  # the format, shared with the readers
    BASE_SCHEMA,
    DEFAULT_LABEL,
    FEEDBACK_TIMESTAMP,
    FORMAT_VERSION,
    INPUT_PREFIX,
    LABEL_PREFIX,
    OUTPUT_PREFIX,
    join_feedback,
    read_feedback,
    read_predictions,
)
from loopml.storage.protocols import PredictionLogStore
from loopml.storage.validation import validate_model_name, validate_model_version

__all__ = [
    "BASE_SCHEMA",
    "DEFAULT_LABEL",
    "FEEDBACK_TIMESTAMP",
    "FORMAT_VERSION",
    "INPUT_PREFIX",
    "LABEL_PREFIX",
    "OUTPUT_PREFIX",
    "STAGE_ROW_BYTES",
    "PredictionLog",
    "join_feedback",
    "read_feedback",
    "read_predictions",
]

_log = logging.getLogger(__name__)

MAX_REQUEST_ID_LENGTH = 256
_INT64 = 2**63 - 1
_KNOWN_MODELS_LIMIT = 10_000

# (model, version, kind) -> one buffer, one segment series
_Key = tuple[str, int | None, PredictionLogKind]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# ---------------------------------------------------------------------------------- buffers


@dataclass(slots=True, eq=False)
class _Buffer:
    since: float  # monotonic time of its oldest row
    chunks: list[Chunk] = field(default_factory=list)
    stage: Stage | None = None  # the newest requests, after the chunks
    rows: int = 0

    def seal(self) -> None:
        if self.stage is not None:  # a stage holds at least one request
            self.chunks.append(self.stage.seal())
            self.stage = None


@dataclass(slots=True, eq=False)
class _Batch:
    key: _Key
    chunks: list[Chunk]
    rows: int
    attempts: int = 0
    not_before: float = 0.0
    data: bytes | None = None  # the Parquet bytes, kept for the retry


def _runs(chunks: list[Chunk], max_rows: int) -> tuple[list[tuple[list[Chunk], int]], int]:
    """``chunks`` cut into runs of at least ``max_rows`` rows (at chunk boundaries): the
    full runs, and the index where the unfinished rest starts."""
    runs: list[tuple[list[Chunk], int]] = []
    start = rows = 0
    for index, chunk in enumerate(chunks):
        rows += chunk.rows
        if rows >= max_rows:
            runs.append((chunks[start : index + 1], rows))
            start, rows = index + 1, 0
    return runs, start


# ---------------------------------------------------------------------------------- the log


class PredictionLog:
    """Logs requests and feedback asynchronously to ``store`` as Parquet segments.

    Args:
        store: Where segments go: its ``blobs`` take the Parquet bytes and
            ``record_prediction_segment`` records them (any
            :class:`~loopml.storage.protocols.TrackingStore`, local or remote).
        max_rows: A buffer becomes a segment once it holds this many rows ...
        max_seconds: ... or once its oldest row is this old.
        max_pending_rows: The most rows held in memory (buffered, being written or waiting
            for a retry); past this, requests are dropped and counted.
        retry_seconds: How long a segment that failed waits for its one retry.

    Counters (attributes, for metrics; rows of predictions and feedback together):
    ``logged_rows`` (accepted), ``dropped_rows`` (never to be written: refused because the
    log was full or closed, or given up after a failed retry), ``lost_rows`` (the part of
    ``dropped_rows`` that had been accepted), ``written_rows``, ``pending_rows``,
    ``written_segments``, ``failed_segments`` (failed writes, retries included) and
    ``dropped_requests`` (calls refused). At any time
    ``logged_rows == written_rows + pending_rows + lost_rows``.
    """

    def __init__(
        self,
        store: PredictionLogStore,
        *,
        max_rows: int = 10_000,
        max_seconds: float = 60.0,
        max_pending_rows: int = 100_000,
        retry_seconds: float = 5.0,
    ) -> None:
        if not callable(getattr(store, "record_prediction_segment", None)) or not hasattr(
            store, "blobs"
        ):
            raise InvalidArgumentError(
                "The store must record prediction segments and hold blobs (a loopml store). "
                f"Got {type(store).__name__}.",
                field="store",
            )
        self._store = store
        self._max_rows = _positive_int("max_rows", max_rows)
        self._max_seconds = _positive_seconds("max_seconds", max_seconds)
        self._max_pending = _positive_int("max_pending_rows", max_pending_rows)
        self._retry_seconds = _positive_seconds("retry_seconds", retry_seconds, allow_zero=True)
        self._models: set[str] = set()
        self._init_state()
        _logs.add(self)
        _register_process_hooks()

    def _init_state(self) -> None:
        self._lock = threading.Lock()  # guards the buffers, retries and counters
        self._write_lock = threading.Lock()  # one writing pass at a time
        self._wake = threading.Event()
        self._buffers: dict[_Key, _Buffer] = {}
        self._retries: list[_Batch] = []
        self._thread: threading.Thread | None = None
        self._closed = False  # log() refuses
        self._stopping = False  # the writer drains everything, then ends
        self.logged_rows = 0
        self.dropped_rows = 0
        self.lost_rows = 0
        self.written_rows = 0
        self.pending_rows = 0
        self.written_segments = 0
        self.failed_segments = 0
        self.dropped_requests = 0

    def __repr__(self) -> str:
        return (
            f"PredictionLog(pending_rows={self.pending_rows}, logged_rows={self.logged_rows}, "
            f"written_segments={self.written_segments}, dropped_rows={self.dropped_rows})"
        )

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def stats(self) -> dict[str, int]:
        """Every counter, by name (a consistent snapshot)."""
        with self._lock:
            return {
                name: getattr(self, name)
                for name in (
                    "logged_rows",
                    "dropped_rows",
                    "lost_rows",
                    "written_rows",
                    "pending_rows",
                    "written_segments",
                    "failed_segments",
                    "dropped_requests",
                )
            }

    # ------------------------------------------------------------------------------ logging

    def log(
        self,
        request_id: str,
        model: str,
        version: int | None,
        inputs: Mapping[str, np.ndarray],
        outputs: Mapping[str, np.ndarray],
        timestamp_ms: int,
    ) -> bool:
        """Log one answered request; ``True`` if it will be written, ``False`` if it was
        dropped (the log is full or closed; counted in ``dropped_rows``).

        Every array (of ``inputs`` and ``outputs``) holds the request's rows first, so all
        have the same length (a 0-d array is one row); 2-D and larger arrays are stored as a
        list per row. A request of zero rows is accepted and writes nothing.

        Raises:
            InvalidArgumentError: an argument is not acceptable (``field`` names it). Only
                for a caller's mistake: the store's failures never raise here.
        """
        _check_request_id(request_id)
        timestamp = self._check_model(model, version, timestamp_ms)
        ins, rows = _arrays("inputs", inputs, None)
        outs, rows = _arrays("outputs", outputs, rows)
        if rows is None:
            raise InvalidArgumentError(
                "A logged request needs at least one input or output array.", field="inputs"
            )
        chunk = Chunk([request_id], [timestamp], [rows], rows, ins, outs)
        return self._append((model, version, PredictionLogKind.PREDICTIONS), chunk)

    def log_batch(
        self,
        request_ids: Sequence[str],
        rows: Sequence[int],
        model: str,
        version: int | None,
        inputs: Mapping[str, np.ndarray],
        outputs: Mapping[str, np.ndarray],
        timestamp_ms: int,
    ) -> bool:
        """Log several requests answered together (one predict call of the model server):
        request ``i`` has ``rows[i]`` rows, and every array holds the rows of all of them in
        that order. Cheaper than one :meth:`log` per request; the same rows are written.
        ``True`` if they will be written, ``False`` if they were dropped (all of them).

        Raises:
            InvalidArgumentError: an argument is not acceptable (``field`` names it).
        """
        timestamp = self._check_model(model, version, timestamp_ms)
        ids = _list_of(request_ids)
        if not ids or not all(_is_request_id(i) for i in ids):
            raise InvalidArgumentError(
                f"The request_ids must be a non-empty list of strings of 1 to "
                f"{MAX_REQUEST_ID_LENGTH} characters. Got {_short(request_ids)}.",
                field="request_ids",
            )
        counts = _list_of(rows)
        if (
            counts is None
            or len(counts) != len(ids)
            or any(type(n) is not int or n < 0 for n in counts)
        ):
            raise InvalidArgumentError(
                f"The rows must be a list of {len(ids)} non-negative integers (one per "
                f"request id). Got {_short(rows)}.",
                field="rows",
            )
        total = sum(counts)
        ins, found = _arrays("inputs", inputs, total)
        outs, found = _arrays("outputs", outputs, found)
        if not ins and not outs:
            raise InvalidArgumentError(
                "A logged request needs at least one input or output array.", field="inputs"
            )
        chunk = Chunk(ids, [timestamp] * len(ids), counts, total, ins, outs)
        return self._append((model, version, PredictionLogKind.PREDICTIONS), chunk)

    def log_feedback(
        self,
        request_id: str,
        model: str,
        labels: Mapping[str, np.ndarray] | Any,
        timestamp_ms: int,
        *,
        version: int | None = None,
    ) -> bool:
        """Log the ground truth of an earlier request (by its id); ``True`` if it will be
        written, ``False`` if it was dropped.

        ``labels`` maps label names to arrays of the request's rows (row ``i`` labels the
        prediction's row ``i``), or is one value (a scalar, or an array of per-row values)
        stored as the label :data:`DEFAULT_LABEL`. Feedback goes to ``kind='feedback'``
        segments of the model (``version`` ``None`` unless given).

        Raises:
            InvalidArgumentError: an argument is not acceptable (``field`` names it).
        """
        _check_request_id(request_id)
        timestamp = self._check_model(model, version, timestamp_ms)
        if not isinstance(labels, Mapping):
            labels = {DEFAULT_LABEL: labels}
        arrays, rows = _arrays("labels", labels, None)
        if rows is None:
            raise InvalidArgumentError("Feedback needs at least one label.", field="labels")
        chunk = Chunk([request_id], [timestamp], [rows], rows, arrays, {})
        return self._append((model, version, PredictionLogKind.FEEDBACK), chunk)

    def _check_model(self, model: Any, version: Any, timestamp: Any) -> int:
        """Check where rows go (``model``, ``version``) and when; the timestamp as an int."""
        if type(model) is not str or model not in self._models:
            try:
                validate_model_name(model)
            except InvalidArgumentError as exc:
                raise InvalidArgumentError(exc.message, field="model") from None
            if len(self._models) < _KNOWN_MODELS_LIMIT:
                self._models.add(model)
        if version is not None and type(version) is not int:
            try:
                validate_model_version(version)
            except InvalidArgumentError as exc:
                raise InvalidArgumentError(exc.message, field="version") from None
        elif version is not None and not 1 <= version < 2**31:
            raise InvalidArgumentError(
                f"The model version must be a positive integer. Got {version} instead.",
                field="version",
            )
        if type(timestamp) is not int:
            if not isinstance(timestamp, int | np.integer) or isinstance(timestamp, bool):
                raise InvalidArgumentError(
                    "The timestamp_ms must be milliseconds since the epoch (an integer). "
                    f"Got {_short(timestamp)} instead.",
                    field="timestamp_ms",
                )
            timestamp = int(timestamp)
        if not 0 <= timestamp <= _INT64:
            raise InvalidArgumentError(
                f"The timestamp_ms must be a non-negative 64-bit integer. Got {timestamp}.",
                field="timestamp_ms",
            )
        return int(timestamp)

    def _append(self, key: _Key, chunk: Chunk) -> bool:
        """Buffer ``chunk``'s requests under ``key``."""
        rows = chunk.rows
        if rows == 0:
            return True
        with self._lock:
            if self._closed or self.pending_rows + rows > self._max_pending:
                self.dropped_rows += rows
                self.dropped_requests += 1
                return False
            buffer = self._buffers.get(key)
            new = buffer is None
            if buffer is None:
                buffer = self._buffers[key] = _Buffer(time.monotonic())
            stage = buffer.stage
            if stage is None or not stage.add(chunk):
                buffer.seal()
                stage = buffer.stage = Stage.start(chunk)
                if stage is None:  # kept by reference
                    buffer.chunks.append(chunk)
            buffer.rows += rows
            if stage is not None and (
                stage.rows >= self._max_rows  # the writer is behind: a segment's worth
                or buffer.rows - rows < self._max_rows <= buffer.rows  # the buffer just filled
            ):
                buffer.seal()  # the next rows go to the next segment
            self.pending_rows += rows
            self.logged_rows += rows
            # a new buffer has the writer's next deadline; a full one is due now
            wake = new or buffer.rows >= self._max_rows
            if self._thread is None:
                self._start_thread()
        if wake:
            self._wake.set()
        return True

    # ------------------------------------------------------------------------------ writing

    def flush(self, timeout: float | None = None) -> bool:
        """Write everything pending now, in the calling thread (failed segments that wait for
        their retry get it now). ``True`` if every segment was written; ``False`` if some
        failed (their rows wait for a retry, or were dropped after it) or ``timeout`` seconds
        passed while another write held the log."""
        if not self._write_lock.acquire(timeout=-1 if timeout is None else max(0.0, timeout)):
            return False
        try:
            return self._write_pass(drain=True, retry_now=True)
        finally:
            self._write_lock.release()

    def close(self, timeout: float = 30.0) -> bool:
        """Stop accepting rows, write everything accepted (a failed segment gets its retry)
        and stop the writer. ``True`` if nothing is left unwritten; ``False`` if rows were
        given up while closing or ``timeout`` seconds passed first (the writer then goes on in the
        background while the process lives). Closing again waits again."""
        with self._lock:
            self._closed = True
            self._stopping = True
            thread = self._thread
            lost = self.lost_rows
        if thread is not None:
            self._wake.set()
            thread.join(timeout)
            if thread.is_alive():
                _log.warning(
                    "the prediction log has %d rows not yet written after %.1f s",
                    self.pending_rows,
                    timeout,
                )
                return False
        return self.pending_rows == 0 and self.lost_rows == lost

    def _start_thread(self) -> None:
        self._thread = threading.Thread(target=self._run, name="loopml-prediction-log", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(self._next_wait())
            self._wake.clear()
            try:
                with self._write_lock:
                    self._write_pass(drain=self._stopping, retry_now=False)
            except Exception:  # a bug: keep the writer alive, the rows stay pending
                _log.exception("the prediction log's writer failed")
                time.sleep(min(1.0, self._max_seconds))
            with self._lock:
                if self._stopping and not self._buffers and not self._retries:
                    return

    def _next_wait(self) -> float | None:
        """Seconds until a buffer or a retry is due (``None``: nothing is pending)."""
        with self._lock:
            if self._stopping and self._buffers:
                return 0.0
            deadlines = [r.not_before for r in self._retries]
            for buffer in self._buffers.values():
                if buffer.rows >= self._max_rows:
                    return 0.0
                deadlines.append(buffer.since + self._max_seconds)
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def _take(self, drain: bool, retry_now: bool) -> list[_Batch]:
        """The batches due now: full or old buffers (every buffer when draining) and the
        retries whose time came (every retry with ``retry_now``)."""
        now = time.monotonic()
        batches: list[_Batch] = []
        with self._lock:
            for key, buffer in list(self._buffers.items()):
                old = drain or now - buffer.since >= self._max_seconds
                if not old and buffer.rows < self._max_rows:
                    continue
                buffer.seal()
                runs, rest = _runs(buffer.chunks, self._max_rows)
                batches.extend(_Batch(key, chunks, rows) for chunks, rows in runs)
                left = buffer.chunks[rest:]
                if left and old:
                    batches.append(_Batch(key, left, sum(c.rows for c in left)))
                    left = []
                if left:  # a part of a segment that is not due yet: it keeps its age
                    buffer.chunks = left
                    buffer.rows = sum(c.rows for c in left)
                else:
                    del self._buffers[key]
            due = [r for r in self._retries if retry_now or r.not_before <= now]
            if due:
                self._retries = [r for r in self._retries if not (retry_now or r.not_before <= now)]
        return batches + due

    def _write_pass(self, *, drain: bool, retry_now: bool) -> bool:
        ok = True
        for batch in self._take(drain, retry_now):
            ok = self._write(batch) and ok
        return ok

    def _write(self, batch: _Batch) -> bool:
        try:
            segment = self._write_segment(batch)
        except Exception as exc:
            model, version, kind = batch.key
            with self._lock:
                self.failed_segments += 1
                retry = batch.attempts == 0
                if retry:
                    batch.attempts = 1
                    batch.not_before = time.monotonic() + self._retry_seconds
                    self._retries.append(batch)
                else:
                    self.pending_rows -= batch.rows
                    self.lost_rows += batch.rows
                    self.dropped_rows += batch.rows
            what = f"{kind.value} segment of {model} v{version} ({batch.rows} rows)"
            if retry:
                # the writer may be asleep until a later deadline (a flush() in another
                # thread failed): wake it so it sleeps until this retry is due instead
                self._wake.set()
                _log.warning(
                    "could not write a %s, retrying in %.1f s: %s", what, self._retry_seconds, exc
                )
            else:
                _log.error("could not write a %s again; its rows are dropped: %s", what, exc)
            return False
        with self._lock:
            self.pending_rows -= batch.rows
            self.written_rows += batch.rows
            self.written_segments += 1
        _log.debug("wrote prediction log segment %s", segment.digest)
        return True

    def _write_segment(self, batch: _Batch) -> PredictionSegment:
        model, version, kind = batch.key
        if batch.data is None:
            table = build_table(kind, version, batch.chunks, model=model)
            sink = io.BytesIO()
            pq.write_table(table, sink, compression="zstd")
            batch.data = sink.getvalue()
        ref = self._store.blobs.put_bytes(batch.data)
        return self._store.record_prediction_segment(
            model,
            kind=kind,
            start_time=min(min(chunk.times) for chunk in batch.chunks),
            end_time=max(max(chunk.times) for chunk in batch.chunks),
            row_count=batch.rows,
            digest=ref.digest,
            size=ref.size,
            model_version=version,
        )

    def _forget_after_fork(self) -> None:
        """In a forked child: the parent writes what it had pending; start afresh."""
        self._init_state()


# ---------------------------------------------------------------------------- validation


def _is_request_id(value: Any) -> bool:
    return type(value) is str and 0 < len(value) <= MAX_REQUEST_ID_LENGTH


def _check_request_id(request_id: Any) -> None:
    if not _is_request_id(request_id):
        raise InvalidArgumentError(
            f"The request_id must be a string of 1 to {MAX_REQUEST_ID_LENGTH} characters. "
            f"Got {_short(request_id)} instead.",
            field="request_id",
        )


def _list_of(values: Any) -> list[Any] | None:
    """A new list of ``values`` (numpy integers as ints), or ``None`` if they are a string or
    not a sequence."""
    if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray):
        return None
    return [v.item() if isinstance(v, np.integer) else v for v in values]


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(
            f"The {name} must be a positive integer. Got {_short(value)} instead.", field=name
        )
    return value


def _positive_seconds(name: str, value: Any, *, allow_zero: bool = False) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        expected = "a non-negative" if allow_zero else "a positive"
        raise InvalidArgumentError(
            f"The {name} must be {expected} number of seconds. Got {_short(value)} instead.",
            field=name,
        )
    return float(value)


def _arrays(name: str, values: Any, rows: int | None) -> tuple[dict[str, np.ndarray], int | None]:
    """The arrays of ``values`` (a mapping of names to arrays), each with its rows first, and
    the row count they share (``rows`` if already known)."""
    if type(values) is dict:  # the usual case, checked in one tight loop
        count = rows
        for key, array in values.items():
            if type(array) is not np.ndarray or type(key) is not str or not key or not array.ndim:
                break
            if count is None:
                count = len(array)
            elif len(array) != count:
                break
        else:
            return dict(values), count
    if not isinstance(values, Mapping):
        raise InvalidArgumentError(
            f"The {name} must be a mapping of names to arrays. Got {type(values).__name__}.",
            field=name,
        )
    arrays: dict[str, np.ndarray] = {}
    for key, value in values.items():
        if type(key) is not str or not key:
            raise InvalidArgumentError(
                f"The names of the {name} must be non-empty strings. Got {_short(key)}.",
                field=name,
            )
        array = value
        if not isinstance(array, np.ndarray):
            try:
                array = np.asarray(value)
            except (ValueError, TypeError) as exc:
                raise InvalidArgumentError(
                    f"The {name} value {key!r} is not an array: {exc}", field=name
                ) from None
        if array.ndim == 0:
            array = array.reshape(1)
        if rows is None:
            rows = array.shape[0]
        elif array.shape[0] != rows:
            raise InvalidArgumentError(
                f"Every array of a request has its rows first, and the same number of them: "
                f"{name} {key!r} has {array.shape[0]} rows, others {rows}.",
                field=name,
            )
        arrays[key] = array
    return arrays, rows


# ---------------------------------------------------------------------------- process hooks

_logs: weakref.WeakSet[PredictionLog] = weakref.WeakSet()
_hooks_registered = False
_hooks_lock = threading.Lock()
#: how long the exit hook waits for each open log to write what it holds
EXIT_TIMEOUT = 30.0


def _close_all() -> None:
    for log in list(_logs):
        if not log.closed or log.pending_rows:
            try:
                log.close(timeout=EXIT_TIMEOUT)
            except Exception:  # pragma: no cover - the exit must go on
                _log.exception("could not close a prediction log at exit")


def _forget_all_after_fork() -> None:
    for log in list(_logs):
        log._forget_after_fork()


def _register_process_hooks() -> None:
    global _hooks_registered
    with _hooks_lock:
        if _hooks_registered:
            return
        atexit.register(_close_all)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_forget_all_after_fork)
        _hooks_registered = True
