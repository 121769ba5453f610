"""Routes: monitors, the result of each window they checked, and their events.

Each route is one call into :class:`~loopml.storage.protocols.MonitorStore`; the store checks
names, specs, statuses, times, summaries, kinds and payloads (see
:mod:`loopml.storage.monitors`), so the bodies take their values as they come (``Any``) and a
bad one gets the store's error, with its ``field``.

Paths: ``/monitors`` and ``/monitors/{name}`` (``PUT`` replaces the spec), the windows'
results under ``/monitors/{name}/results`` (``POST`` records one, replacing a result of the
same window: a re-check), the events under ``/monitors/{name}/events``, and the events of
every monitor at ``/monitor-events`` (a path of its own: ``events`` is a valid monitor name).

Access: reading needs ``READER``; creating, changing and deleting monitors and recording
results and events need ``WRITER``.

Scopes: a monitor belongs to the model its spec names in ``spec["model"]``. A token limited to
some models may only see and use the monitors of those models: creating one, or changing its
spec, needs the new spec's model in scope (and changing it the old one's too), so a scoped
token can neither take over another model's monitor nor move its own away; every route that
names a monitor refuses one outside the scope, and one that does not exist (403 either way,
so the answer does not reveal which monitors exist); listings leave the others out. A monitor
whose spec names no model is outside every model scope. The events such a token sees are
those of the monitors in its scope, since each was created (a monitor of the same name
deleted earlier may have watched another model). A token limited to experiments only is not
limited here (monitors are not part of an experiment).

Who did it: the ``actor`` of a change is the bearer token's name with auth on (whatever the
client sends is ignored), and the ``actor`` the client sent with auth off.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, Field

from loopml.entities import Monitor, MonitorEvent
from loopml.errors import MonitorNotFoundError, PermissionDeniedError
from loopml.server.auth import scopes_of
from loopml.server.deps import Role, actor_of, allow, store_of
from loopml.storage.monitors import check_event_query, check_monitor_name
from loopml.storage.rest.wire import to_wire

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["monitors"])

_READ = [allow(Role.READER)]
_WRITE = [allow(Role.WRITER)]


# ---------------------------------------------------------------------------- bodies


class CreateMonitor(BaseModel):
    name: Any = Field(description="1 to 128 letters, digits, '_', '.' and '-'.")
    spec: Any = Field(description="A JSON object; spec.model names the model watched.")
    actor: Any = Field(None, description="Who creates it; ignored when the server has auth on.")


class UpdateMonitor(BaseModel):
    spec: Any = Field(description="The new spec (replaces the old one).")
    actor: Any = Field(None, description="Who changes it; ignored when the server has auth on.")


class RecordResult(BaseModel):
    window_start: Any = Field(description="The window's start (ms since the epoch).")
    window_end: Any = Field(description="The window's end, excluded (ms since the epoch).")
    status: Any = Field(description="ok, drift, alert, insufficient_data or error.")
    summary: Any = Field(description="A JSON object: what the check measured.")
    late: Any = Field(False, description="True for the window of late rows of that span.")


class RecordEvent(BaseModel):
    kind: Any = Field(description="Such as alert.opened: 1 to 64 of a-z, 0-9, '_', '.', '-'.")
    payload: Any = Field(description="A JSON object.")
    actor: Any = Field(None, description="Who records it; ignored when the server has auth on.")


# ---------------------------------------------------------------------------- helpers


def _actor(request: Request, sent: Any) -> Any:
    """The actor to record: the token's name with auth on, else what the client sent."""
    token_name = actor_of(request)
    if token_name is not None:
        return token_name
    if request.app.state.config.auth:
        return None  # never trust a client-sent name when tokens decide who is calling
    return sent


def _model_scope(request: Request) -> tuple[str, ...] | None:
    """The models the caller is limited to, or ``None`` when it is not limited to models."""
    scopes = scopes_of(request)
    if scopes is None or not scopes.models:
        return None
    return scopes.models


def _watched(spec: Any) -> str | None:
    """The model a spec names, if it names one."""
    model = spec.get("model") if isinstance(spec, Mapping) else None
    return model if isinstance(model, str) else None


def _out_of_scope(models: tuple[str, ...], what: str) -> PermissionDeniedError:
    shown = ", ".join(repr(m) for m in models)
    return PermissionDeniedError(
        f"This token is limited to the models {shown}; it cannot use {what}.", scope="model"
    )


def _require_spec_in_scope(request: Request, spec: Any) -> None:
    """Refuse a spec whose model is outside the caller's models (see the module docs)."""
    models = _model_scope(request)
    if models is None:
        return
    model = _watched(spec)
    if model not in models:
        what = "a monitor of no model" if model is None else f"a monitor of the model {model!r}"
        raise _out_of_scope(models, what)


def _require_monitor_in_scope(request: Request, name: str) -> Monitor | None:
    """The monitor, when the caller is limited to models and it is in their scope (else 403,
    for a monitor that does not exist too); ``None`` when the caller is not limited."""
    models = _model_scope(request)
    if models is None:
        return None
    name = check_monitor_name(name)
    try:
        monitor = store_of(request).get_monitor(name)
    except MonitorNotFoundError:
        monitor = None
    if monitor is None or _watched(monitor.spec) not in models:
        raise _out_of_scope(models, f"the monitor {name!r}")
    return monitor


def _in_scope(request: Request, found: list[Monitor]) -> list[Monitor]:
    models = _model_scope(request)
    if models is None:
        return found
    return [monitor for monitor in found if _watched(monitor.spec) in models]


# ---------------------------------------------------------------------------- monitors


@router.post(
    "/monitors",
    status_code=status.HTTP_201_CREATED,
    dependencies=_WRITE,
    summary="Create a monitor",
)
def create_monitor(request: Request, body: CreateMonitor) -> Any:
    _require_spec_in_scope(request, body.spec)
    monitor = store_of(request).create_monitor(
        body.name, body.spec, actor=_actor(request, body.actor)
    )
    return to_wire(monitor)


@router.get("/monitors", dependencies=_READ, summary="List monitors, by name")
def list_monitors(request: Request) -> Any:
    """Only the monitors the caller's token may see."""
    return to_wire(_in_scope(request, store_of(request).list_monitors()))


@router.get("/monitors/{name}", dependencies=_READ, summary="Get a monitor")
def get_monitor(request: Request, name: str) -> Any:
    found = _require_monitor_in_scope(request, name)
    return to_wire(found if found is not None else store_of(request).get_monitor(name))


@router.put("/monitors/{name}", dependencies=_WRITE, summary="Replace a monitor's spec")
def update_monitor(request: Request, name: str, body: UpdateMonitor) -> Any:
    _require_monitor_in_scope(request, name)
    _require_spec_in_scope(request, body.spec)
    monitor = store_of(request).update_monitor(name, body.spec, actor=_actor(request, body.actor))
    return to_wire(monitor)


@router.delete(
    "/monitors/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=_WRITE,
    summary="Delete a monitor and its results (its events remain)",
)
def delete_monitor(request: Request, name: str, actor: str | None = None) -> None:
    _require_monitor_in_scope(request, name)
    store_of(request).delete_monitor(name, actor=_actor(request, actor))


# ---------------------------------------------------------------------------- results


@router.post(
    "/monitors/{name}/results",
    dependencies=_WRITE,
    summary="Record a window's result (replacing one of the same window)",
)
def record_monitor_result(request: Request, name: str, body: RecordResult) -> Any:
    _require_monitor_in_scope(request, name)
    result = store_of(request).record_monitor_result(
        name,
        window_start=body.window_start,
        window_end=body.window_end,
        status=body.status,
        summary=body.summary,
        late=body.late,
    )
    return to_wire(result)


@router.get(
    "/monitors/{name}/results",
    dependencies=_READ,
    summary="A monitor's results whose windows overlap [start, end), by window start",
)
def list_monitor_results(
    request: Request,
    name: str,
    start: int | None = None,
    end: int | None = None,
    limit: int = 1000,
    late: bool | None = None,
    newest: bool = False,
) -> Any:
    """``late``: only on-time (false) or late (true) windows; ``newest``: the last ``limit``
    results rather than the first."""
    _require_monitor_in_scope(request, name)
    results = store_of(request).list_monitor_results(
        name, start=start, end=end, limit=limit, late=late, newest=newest
    )
    return to_wire(results)


# ---------------------------------------------------------------------------- events


@router.post(
    "/monitors/{name}/events",
    status_code=status.HTTP_201_CREATED,
    dependencies=_WRITE,
    summary="Record a monitor's event",
)
def record_monitor_event(request: Request, name: str, body: RecordEvent) -> Any:
    _require_monitor_in_scope(request, name)
    event = store_of(request).record_monitor_event(
        name, body.kind, body.payload, actor=_actor(request, body.actor)
    )
    return to_wire(event)


def _events(
    request: Request,
    name: str | None,
    kinds: list[str] | None,
    since: int | None,
    limit: int,
    newest: bool = False,
) -> list[MonitorEvent]:
    query = check_event_query(name, kinds=kinds, since=since, limit=limit, newest=newest)
    store = store_of(request)
    if _model_scope(request) is None:
        return store.list_monitor_events(
            query.name,
            kinds=query.kinds,
            since=query.since,
            limit=query.limit,
            newest=query.newest,
        )
    # a token limited to models: the events of its monitors, each since it was created
    if query.name is not None:
        watched = _require_monitor_in_scope(request, query.name)
        assert watched is not None
        monitors = [watched]
    else:
        monitors = _in_scope(request, store.list_monitors())
    found: list[MonitorEvent] = []
    for monitor in monitors:
        found.extend(
            store.list_monitor_events(
                monitor.name,
                kinds=query.kinds,
                since=max(query.since or 0, monitor.creation_time),
                limit=query.limit,
                newest=query.newest,
            )
        )
    found.sort(key=lambda event: (event.time, event.event_id))
    return found[-query.limit :] if query.newest else found[: query.limit]


@router.get(
    "/monitors/{name}/events",
    dependencies=_READ,
    summary="A monitor's events (kept after it is deleted), by time",
)
def list_monitor_events(
    request: Request,
    name: str,
    kinds: Annotated[list[str] | None, Query()] = None,
    since: int | None = None,
    limit: int = 1000,
    newest: bool = False,
) -> Any:
    """``newest``: the last ``limit`` events rather than the first (still in time order)."""
    return to_wire(_events(request, name, kinds, since, limit, newest))


@router.get(
    "/monitor-events",
    dependencies=_READ,
    summary="The events of every monitor, by time",
)
def list_all_monitor_events(
    request: Request,
    kinds: Annotated[list[str] | None, Query()] = None,
    since: int | None = None,
    limit: int = 1000,
    newest: bool = False,
) -> Any:
    """``newest``: the last ``limit`` events rather than the first (still in time order)."""
    return to_wire(_events(request, None, kinds, since, limit, newest))
