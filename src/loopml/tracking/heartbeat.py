"""Heartbeats of active runs, so that a run whose process died is marked KILLED.

One daemon thread per store stamps every registered run every ``interval`` seconds. Readers
call the store's ``mark_stale_runs_killed`` to turn runs without a recent beat into KILLED.
"""

from __future__ import annotations

import logging
import threading

from loopml.storage.protocols import RunStore

__all__ = ["Heartbeat"]

_log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self, store: RunStore, interval: float) -> None:
        self._store = store
        self._interval = interval
        self._runs: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def forget_after_fork(self) -> None:
        """A forked child does not beat for its parent's runs."""
        self._runs = set()
        self._lock = threading.Lock()
        self._thread = None

    def add(self, run_id: str) -> None:
        with self._lock:
            self._runs.add(run_id)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="loopml-heartbeat", daemon=True
                )
                self._thread.start()

    def remove(self, run_id: str) -> None:
        with self._lock:
            self._runs.discard(run_id)

    def _loop(self) -> None:
        while True:
            self._wake.wait(self._interval)
            with self._lock:
                ids = sorted(self._runs)
                if not ids:
                    self._thread = None
                    return
            try:
                self._store.heartbeat(ids)
            except Exception as exc:
                _log.warning("heartbeat failed: %s", exc)
