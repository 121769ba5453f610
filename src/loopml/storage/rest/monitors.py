"""The remote store: monitors, their results and events (see
:mod:`loopml.server.routes.monitors`).

Every argument is checked here first with the same functions as the SQL store, so a bad one
raises the same :class:`~loopml.errors.InvalidArgumentError` (same ``field``) without a round
trip, a monitor name always makes a valid path segment, and a spec, summary or payload is
sent as the plain JSON the store keeps (numpy numbers converted, NaN refused).

Retries: reads, and recording a window's result (a re-check replaces it, so sending it twice
is harmless), are retried like reads. Creating, updating and deleting a monitor and recording
an event are sent once: each writes an event, and a repeated delete would fail.

The ``actor`` of a change is sent along; a server with auth on ignores it and records the
token's name instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from loopml.entities import Monitor, MonitorEvent, MonitorResult
from loopml.storage.monitors import (
    check_actor,
    check_event,
    check_event_query,
    check_monitor_name,
    check_result,
    check_result_query,
    check_spec,
)
from loopml.storage.rest.base import RestBase
from loopml.storage.rest.wire import from_wire

__all__ = ["RestMonitorsMixin"]


def _monitor(name: str) -> str:
    return "/monitors/" + quote(check_monitor_name(name), safe="")


class RestMonitorsMixin(RestBase):
    """Implements :class:`~loopml.storage.protocols.MonitorStore` over HTTP."""

    def create_monitor(
        self, name: str, spec: Mapping[str, Any], *, actor: str | None = None
    ) -> Monitor:
        body = {
            "name": check_monitor_name(name),
            "spec": check_spec(spec)[0],
            "actor": check_actor(actor),
        }
        return from_wire(Monitor, self._call("POST", "/monitors", json=body))

    def get_monitor(self, name: str) -> Monitor:
        return from_wire(Monitor, self._call("GET", _monitor(name)))

    def list_monitors(self) -> list[Monitor]:
        return from_wire(list[Monitor], self._call("GET", "/monitors"))

    def update_monitor(
        self, name: str, spec: Mapping[str, Any], *, actor: str | None = None
    ) -> Monitor:
        path = _monitor(name)
        body = {"spec": check_spec(spec)[0], "actor": check_actor(actor)}
        return from_wire(Monitor, self._call("PUT", path, json=body, idempotent=False))

    def delete_monitor(self, name: str, *, actor: str | None = None) -> None:
        path = _monitor(name)
        clean_actor = check_actor(actor)
        params = {} if clean_actor is None else {"actor": clean_actor}
        self._call("DELETE", path, params=params, idempotent=False)

    def record_monitor_result(
        self,
        name: str,
        *,
        window_start: int,
        window_end: int,
        status: str,
        summary: Mapping[str, Any],
        late: bool = False,
    ) -> MonitorResult:
        args = check_result(
            name,
            window_start=window_start,
            window_end=window_end,
            status=status,
            summary=summary,
            late=late,
        )
        body = {
            "window_start": args.window_start,
            "window_end": args.window_end,
            "status": args.status,
            "summary": args.summary,
            "late": args.late,
        }
        path = _monitor(args.name) + "/results"
        return from_wire(MonitorResult, self._call("POST", path, json=body, idempotent=True))

    def list_monitor_results(
        self,
        name: str,
        *,
        start: int | None = None,
        end: int | None = None,
        limit: int = 1000,
        late: bool | None = None,
        newest: bool = False,
    ) -> list[MonitorResult]:
        query = check_result_query(
            name, start=start, end=end, limit=limit, late=late, newest=newest
        )
        params: dict[str, Any] = {"limit": query.limit}
        if query.late is not None:
            params["late"] = "true" if query.late else "false"
        if query.newest:
            params["newest"] = "true"
        if query.start is not None:
            params["start"] = query.start
        if query.end is not None:
            params["end"] = query.end
        answer = self._call("GET", _monitor(query.name) + "/results", params=params)
        return from_wire(list[MonitorResult], answer)

    def record_monitor_event(
        self,
        name: str,
        kind: str,
        payload: Mapping[str, Any],
        *,
        actor: str | None = None,
    ) -> MonitorEvent:
        name, checked_kind, plain, _, clean_actor = check_event(name, kind, payload, actor)
        body = {"kind": checked_kind, "payload": plain, "actor": clean_actor}
        answer = self._call("POST", _monitor(name) + "/events", json=body, idempotent=False)
        return from_wire(MonitorEvent, answer)

    def list_monitor_events(
        self,
        name: str | None = None,
        *,
        kinds: Sequence[str] | None = None,
        since: int | None = None,
        limit: int = 1000,
        newest: bool = False,
    ) -> list[MonitorEvent]:
        query = check_event_query(name, kinds=kinds, since=since, limit=limit, newest=newest)
        if query.kinds == ():
            return []  # no kind asked for (a query string cannot say "none")
        params: dict[str, Any] = {"limit": query.limit}
        if query.newest:
            params["newest"] = "true"
        if query.kinds is not None:
            params["kinds"] = list(query.kinds)
        if query.since is not None:
            params["since"] = query.since
        path = "/monitor-events" if query.name is None else _monitor(query.name) + "/events"
        return from_wire(list[MonitorEvent], self._call("GET", path, params=params))
