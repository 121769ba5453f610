"""Buffered metric logging: points collect in memory and are written in batches.

One background thread per store writes whatever has collected every ``flush_interval``
seconds, or sooner once ``flush_max_points`` are waiting. :meth:`MetricBuffer.flush` writes
everything synchronously; it runs at the end of every run and at interpreter exit, so nothing
logged is lost on a normal exit or an exception.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from collections import defaultdict

from loopml.entities import MetricRow
from loopml.errors import InvalidArgumentError, LoopmlError, NotFoundError
from loopml.storage.protocols import MetricStore

__all__ = ["MetricBuffer", "flush_all"]

_log = logging.getLogger(__name__)
_buffers: weakref.WeakSet[MetricBuffer] = weakref.WeakSet()
_MAX_BACKOFF = 30.0


class MetricBuffer:
    """Validated metric rows waiting to be written, of any runs of one store."""

    def __init__(
        self, store: MetricStore, *, interval: float = 1.0, max_points: int = 20_000
    ) -> None:
        self._store = store
        self._interval = interval
        self._max_points = max_points
        self._pending: list[MetricRow] = []
        self._inflight = 0  # rows taken by a write that has not finished
        self._lock = threading.Lock()  # guards _pending
        self._flush_lock = threading.Lock()  # one batch write at a time, so flush() is complete
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._dropped: list[LoopmlError] = []
        _buffers.add(self)
        _register_exit_flush()

    def _reset_after_fork(self) -> None:
        self._pending = []
        self._inflight = 0
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = None

    def add(self, row: MetricRow) -> None:
        """Queue one row; the caller has validated it (see ``Client.log_metric``)."""
        with self._lock:
            pending = self._pending
            pending.append(row)
            if self._thread is None:
                self._start_thread()
        if len(pending) >= self._max_points and not self._wake.is_set():
            self._wake.set()

    def _start_thread(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name="loopml-metric-flusher", daemon=True
        )
        self._thread.start()

    def _take(self) -> list[MetricRow]:
        """Everything waiting, counted as in flight until ``_write`` finishes with it."""
        with self._lock:
            taken, self._pending = self._pending, []
            self._inflight = len(taken)
            return taken

    def _put_back(self, rows: list[MetricRow]) -> None:
        with self._lock:
            self._pending[:0] = rows

    def _write(self, rows: list[MetricRow]) -> None:
        """Write ``rows``; the caller holds ``_flush_lock``."""
        if not rows:
            return
        try:
            self._store.append_metric_rows(rows)
        except NotFoundError:
            self._write_per_run(rows)
        except BaseException:
            self._put_back(rows)
            raise
        finally:
            self._inflight = 0

    def _write_per_run(self, rows: list[MetricRow]) -> None:
        """Some run is gone: write the other runs' points and drop that run's, keeping the
        error for the next flush() (retrying cannot help)."""
        by_run: dict[str, list[MetricRow]] = defaultdict(list)
        for row in rows:
            by_run[row[0]].append(row)
        groups = list(by_run.items())
        for index, (run_id, points) in enumerate(groups):
            try:
                self._store.append_metric_rows(points)
            except (NotFoundError, InvalidArgumentError) as exc:
                self._dropped.append(exc)
                _log.error("dropped %d metric points of run %s: %s", len(points), run_id, exc)
            except BaseException:
                self._put_back([row for _, rest in groups[index:] for row in rest])
                raise

    def flush(self) -> None:
        """Write every buffered point now; raise if any was refused."""
        with self._flush_lock:
            self._write(self._take())
        if self._dropped:
            errors, self._dropped = self._dropped, []
            raise errors[0]

    def pending(self) -> int:
        """Points not yet written: waiting, or in a write the flusher thread has begun (a
        reader that sees zero here reads every point logged before)."""
        return len(self._pending) + self._inflight

    def _loop(self) -> None:
        backoff = self._interval
        while True:  # a daemon thread: it ends with the process, after the exit flush
            self._wake.wait(backoff)
            self._wake.clear()
            try:
                with self._flush_lock:
                    self._write(self._take())
                backoff = self._interval
            except Exception as exc:  # the store is down: keep the points and retry later
                backoff = min(_MAX_BACKOFF, backoff * 2)
                _log.warning("metric flush failed (%s); retrying in %.1fs", exc, backoff)


def flush_all(*, raise_errors: bool = False) -> None:
    """Flush every live buffer (also registered to run at interpreter exit)."""
    for buffer in list(_buffers):
        try:
            buffer.flush()
        except Exception as exc:
            if raise_errors:
                raise
            _log.error("could not flush buffered metrics at exit: %s", exc)


_registered = False


def _register_exit_flush() -> None:
    global _registered
    if not _registered:
        atexit.register(flush_all)
        os.register_at_fork(after_in_child=_forget_after_fork)
        _registered = True


def _forget_after_fork() -> None:
    """In a forked child, drop the parent's pending points (the parent writes them) and the
    flusher thread, which did not survive the fork."""
    for buffer in list(_buffers):
        buffer._reset_after_fork()
