"""Monitors: named checks of a served model, the result of each window they checked, and the
events of their history (alerts opened and resolved, the monitor created or changed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["Monitor", "MonitorEvent", "MonitorResult", "MonitorStatus"]


class MonitorStatus(StrEnum):
    """The outcome of one check of one window (a ``str``: pass it where a status is taken)."""

    OK = "ok"
    DRIFT = "drift"
    ALERT = "alert"
    INSUFFICIENT_DATA = "insufficient_data"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Monitor:
    """A monitor as the store keeps it: its unique ``name`` and its ``spec``, a JSON object
    the monitoring layer defines (by convention ``spec["model"]`` names the model it watches).
    Times are milliseconds since the epoch."""

    name: str
    spec: dict[str, Any]
    creation_time: int
    last_update_time: int


@dataclass(frozen=True, slots=True)
class MonitorResult:
    """The outcome of checking the window ``[window_start, window_end)`` (ms): its ``status``
    (one of :class:`MonitorStatus`'s values) and a JSON ``summary`` of what was measured.
    Checking a window again replaces its result; ``created_time`` is when it was recorded.
    ``late`` marks a window of late rows: rows that arrived after their own window was
    checked, gathered by when they arrived (it is a separate result beside the on-time one
    of the same span)."""

    name: str
    window_start: int
    window_end: int
    status: str
    summary: dict[str, Any]
    created_time: int
    late: bool = False


@dataclass(frozen=True, slots=True)
class MonitorEvent:
    """Something that happened to the monitor named ``monitor``: ``kind`` such as
    ``alert.opened``, ``alert.resolved``, ``monitor.created``; ``actor`` is who did it (a user
    or token name, or ``None``). Events are append-only and outlive their monitor; ``event_id``
    grows with each event recorded."""

    event_id: int
    time: int
    kind: str
    monitor: str
    actor: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
