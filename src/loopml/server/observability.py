"""Prometheus metrics and structured access logs for the server.

``/metrics`` serves, per route template (not per raw path, so ids do not explode the label
set): ``loopml_http_requests_total{method,route,status}``,
``loopml_http_request_seconds{method,route}`` (a histogram) and
``loopml_http_errors_total{method,route,status}``. Each request is logged on the
``loopml.server.access`` logger as one JSON line (method, route, path, status, duration).

The measuring is a plain ASGI middleware (:class:`Measure`): it wraps ``send`` to see the
status, so it adds no task or stream per request and leaves streamed responses alone. A
request's duration runs until its response is sent, the body of a streamed download
included; an exception that escapes the app counts as a 500. The route template is read from
the scope after the app ran (``scope["route"]``, set by routing), ``unmatched`` for a path
that no route serves.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loopml.server.deps import Role, allow

__all__ = ["Measure", "install"]

access_log = logging.getLogger("loopml.server.access")


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class Measure:
    """Count, time and log every HTTP request (pure ASGI middleware)."""

    def __init__(
        self, app: ASGIApp, *, requests: Counter, latency: Histogram, errors: Counter
    ) -> None:
        self.app = app
        self._requests = requests
        self._latency = latency
        self._errors = errors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception escaped the app

        async def send_and_see(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_see)
        finally:
            self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, elapsed: float) -> None:
        method, route, code = scope["method"], _route_of(scope), str(status)
        self._requests.labels(method, route, code).inc()
        self._latency.labels(method, route).observe(elapsed)
        if status >= 400:
            self._errors.labels(method, route, code).inc()
        if access_log.isEnabledFor(logging.INFO):
            entry: dict[str, Any] = {
                "method": method,
                "route": route,
                "path": scope["path"],
                "status": status,
                "ms": round(elapsed * 1000, 2),
            }
            access_log.info(json.dumps(entry))


def install(app: FastAPI) -> None:
    """Add the metrics middleware and the ``/metrics`` endpoint to ``app``."""
    registry = CollectorRegistry()
    requests = Counter(
        "loopml_http_requests_total",
        "HTTP requests",
        ["method", "route", "status"],
        registry=registry,
    )
    latency = Histogram(
        "loopml_http_request_seconds",
        "HTTP request latency",
        ["method", "route"],
        registry=registry,
    )
    errors = Counter(
        "loopml_http_errors_total",
        "HTTP requests that failed",
        ["method", "route", "status"],
        registry=registry,
    )
    app.state.metrics_registry = registry
    app.add_middleware(Measure, requests=requests, latency=latency, errors=errors)

    @app.get(
        "/metrics", tags=["operations"], include_in_schema=False, dependencies=[allow(Role.READER)]
    )
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
