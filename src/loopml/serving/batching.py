"""Adaptive batching: concurrent requests to one model version merged into one predict call.

A :class:`Batcher` keeps the requests waiting for one model version. While the model is
busy, requests gather; as soon as it is free, everything waiting (up to ``max_batch_size``
rows) goes to it in one call, run in a worker thread so the event loop keeps reading
requests. So under load the batches grow by themselves, and at low load a request waits for
nobody (``max_latency_ms=0``, the default); a positive ``max_latency_ms`` holds a batch that
is not full for up to that long while the model is idle, trading latency for fuller batches.

Results are split back by each request's rows and are the same as predicting each request
alone (a test checks this), as every model here predicts rows independently.

Past ``max_queue_rows`` waiting rows a request is refused at once with :class:`Overloaded`
(503 with Retry-After) instead of queueing without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from loopml.errors import LoopmlError
from loopml.serving.inputs import Batch

__all__ = ["Batcher", "OnAnswer", "Overloaded", "merge"]

logger = logging.getLogger(__name__)


class Overloaded(LoopmlError):
    """More rows are waiting for the model than the server queues (503)."""

    http_status = 503
    code = "OVERLOADED"


@dataclass(slots=True)
class _Waiting:
    batch: Batch
    future: asyncio.Future[Any]
    request_id: str | None = None
    queued: float = field(default_factory=time.perf_counter)


#: told the requests a predict call answered: their ids, rows each, the merged batch and the
#: model's output for it (rows first)
OnAnswer = Callable[[list[str | None], list[int], Batch, Any], None]


def merge(batches: list[Batch]) -> Batch:
    """One batch holding the rows of ``batches`` in order."""
    if len(batches) == 1:
        return batches[0]
    rows = sum(b.rows for b in batches)
    if batches[0].tensor is not None:
        return Batch(None, np.concatenate([b.tensor for b in batches]), rows)  # type: ignore[misc]
    names: dict[str, None] = {}
    for b in batches:
        names.update(dict.fromkeys(b.columns or {}))
    columns = {}
    for name in names:
        parts = []
        for b in batches:
            part = (b.columns or {}).get(name)
            if part is None:  # an optional column some requests left out
                part = np.full(b.rows, None, dtype=object)
            parts.append(part)
        columns[name] = np.concatenate(parts)
    return Batch(columns, None, rows)


def split(result: Any, sizes: list[int]) -> list[Any]:
    """``result`` (rows first) cut back into one piece per request."""
    if len(sizes) == 1:
        return [result]
    out, start = [], 0
    for size in sizes:
        out.append(result[start : start + size])
        start += size
    return out


class Batcher:
    """The queue in front of one model version.

    Args:
        predict: Called in a worker thread with a merged :class:`Batch`; returns rows-first
            results (a numpy array, or a dict of them).
        max_batch_size: The most rows in one call (a single larger request goes alone).
        max_latency_ms: How long an idle model waits for a batch to fill (0: not at all).
        max_queue_rows: Rows allowed to wait; past this, :class:`Overloaded`.
        on_batch: Told each call's batch size, queue wait and predict time (metrics).
        on_answer: Told the requests each successful call answered, with the merged batch
            and its output, on the event loop before the requests get their results (the
            prediction log and live monitors: one call per batch instead of per request).
            It must not block; what it raises is logged and ignored.
    """

    def __init__(
        self,
        predict: Callable[[Batch], Any],
        *,
        max_batch_size: int = 64,
        max_latency_ms: float = 0.0,
        max_queue_rows: int = 4096,
        on_batch: Callable[[int, float, float], None] | None = None,
        on_answer: OnAnswer | None = None,
        name: str = "model",
    ) -> None:
        self._predict = predict
        self.max_batch_size = max_batch_size
        self._max_latency = max_latency_ms / 1000.0
        self.max_queue_rows = max_queue_rows
        self._on_batch = on_batch
        self._on_answer = on_answer
        self._waiting: deque[_Waiting] = deque()
        self.queued_rows = 0
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._name = name
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"predict-{name}")
        self._closing = False
        self.in_flight = 0

    # ------------------------------------------------------------------------------ use

    def refuse_if_full(self) -> None:
        """Raise :class:`Overloaded` when the queue is at its limit already: called before a
        request's body is parsed and checked, so that shedding load costs little."""
        if self.queued_rows >= self.max_queue_rows:
            raise Overloaded(
                f"{self.queued_rows:,} rows are waiting for this model already (the limit is "
                f"{self.max_queue_rows:,}); retry shortly.",
                queued_rows=self.queued_rows,
                retry_after=1,
            )

    async def submit(self, batch: Batch, request_id: str | None = None) -> Any:
        """The model's output for ``batch`` (its rows only); ``request_id`` is handed to
        ``on_answer`` with it.

        Raises:
            Overloaded: too many rows are waiting already.
            Exception: whatever the model raised (for every request in its batch).
        """
        if self._closing:
            raise Overloaded("This model version is being replaced; retry.", retry_after=1)
        if self.queued_rows and self.queued_rows + batch.rows > self.max_queue_rows:
            raise Overloaded(
                f"{self.queued_rows:,} rows are waiting for this model already (the limit is "
                f"{self.max_queue_rows:,}); retry shortly.",
                queued_rows=self.queued_rows,
                retry_after=1,
            )
        loop = asyncio.get_running_loop()
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run())
        waiting = _Waiting(batch, loop.create_future(), request_id)
        self._waiting.append(waiting)
        self.queued_rows += batch.rows
        self.in_flight += 1
        assert self._wake is not None
        self._wake.set()
        try:
            return await waiting.future
        finally:
            self.in_flight -= 1

    async def close(self, *, drain: bool = True) -> None:
        """Stop taking requests; with ``drain``, answer the waiting ones first."""
        self._closing = True
        if drain:
            while self._waiting or self.in_flight:
                await asyncio.sleep(0.005)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for waiting in self._waiting:
            if not waiting.future.done():
                waiting.future.set_exception(Overloaded("The server is stopping.", retry_after=1))
        self._executor.shutdown(wait=False)

    # ------------------------------------------------------------------------------ loop

    def _take(self) -> list[_Waiting]:
        taken = [self._waiting.popleft()]
        rows = taken[0].batch.rows
        while self._waiting and rows + self._waiting[0].batch.rows <= self.max_batch_size:
            item = self._waiting.popleft()
            rows += item.batch.rows
            taken.append(item)
        self.queued_rows -= rows
        return taken

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wake is not None
        while True:
            if not self._waiting:
                self._wake.clear()
                await self._wake.wait()
                continue
            if self._max_latency and self.queued_rows < self.max_batch_size:
                deadline = self._waiting[0].queued + self._max_latency
                while self.queued_rows < self.max_batch_size:
                    left = deadline - time.perf_counter()
                    if left <= 0:
                        break
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), left)
                    except TimeoutError:
                        break
            taken = self._take()
            started = time.perf_counter()
            merged = merge([t.batch for t in taken])
            try:
                result = await loop.run_in_executor(self._executor, self._predict, merged)
            except Exception as exc:
                await self._one_by_one(taken, exc)
                continue
            finally:
                if self._on_batch is not None:
                    wait = started - taken[0].queued
                    self._on_batch(merged.rows, wait, time.perf_counter() - started)
            sizes = [t.batch.rows for t in taken]
            pieces = _split_result(result, sizes)
            if self._on_answer is not None:
                if all(not t.future.done() for t in taken):
                    self._answered([t.request_id for t in taken], sizes, merged, result)
                else:  # a client went away: only the requests still waiting were answered
                    for t, piece in zip(taken, pieces, strict=True):
                        if not t.future.done():
                            self._answered([t.request_id], [t.batch.rows], t.batch, piece)
            for t, piece in zip(taken, pieces, strict=True):
                if not t.future.done():
                    t.future.set_result(piece)

    def _answered(self, ids: list[str | None], sizes: list[int], batch: Batch, out: Any) -> None:
        assert self._on_answer is not None
        try:
            self._on_answer(ids, sizes, batch, out)
        except Exception:  # the log and the monitors never fail a request
            logger.exception("%s: on_answer failed", self._name)

    async def _one_by_one(self, taken: list[_Waiting], exc: Exception) -> None:
        """A merged call failed: one request's rows may be to blame (a NaN the model cannot
        take), so each request is tried alone and only the ones that fail get the error."""
        if len(taken) == 1:
            if not taken[0].future.done():
                taken[0].future.set_exception(exc)
            return
        loop = asyncio.get_running_loop()
        for t in taken:
            try:
                result = await loop.run_in_executor(self._executor, self._predict, t.batch)
            except Exception as own:
                if not t.future.done():
                    t.future.set_exception(own)
            else:
                if not t.future.done():
                    if self._on_answer is not None:
                        self._answered([t.request_id], [t.batch.rows], t.batch, result)
                    t.future.set_result(result)


def _split_result(result: Any, sizes: list[int]) -> list[Any]:
    if isinstance(result, dict):
        parts = {k: split(v, sizes) for k, v in result.items()}
        return [{k: parts[k][i] for k in parts} for i in range(len(sizes))]
    return split(result, sizes)
