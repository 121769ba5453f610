"""Which run is active in this thread or asyncio task.

The fluent tracking API (:mod:`loopml.tracking.fluent`) starts and ends runs; the stack of
active runs lives here, below it, so that the other layers that log into "the active run"
(``loopml.models.log_model``, ``loopml.evaluate``) can find it without importing the
tracking layer. Each entry is an object with a ``run_id`` and the ``store`` it logs to.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Protocol

from loopml.storage.protocols import TrackingStore

__all__ = ["RunContext", "active_runs", "current_run", "set_active_runs"]


class RunContext(Protocol):
    @property
    def run_id(self) -> str: ...

    @property
    def store(self) -> TrackingStore: ...

    def flush(self) -> None: ...


_active: ContextVar[tuple[Any, ...]] = ContextVar("loopml_active_runs", default=())


def active_runs() -> tuple[Any, ...]:
    """The active runs of this thread or task, oldest first."""
    return _active.get()


def set_active_runs(runs: tuple[Any, ...]) -> None:
    _active.set(runs)


def current_run() -> RunContext | None:
    """The run started last in this thread or task and not yet ended, if any."""
    runs = _active.get()
    return runs[-1] if runs else None
