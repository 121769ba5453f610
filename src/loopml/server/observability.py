"""Prometheus metrics and structured access logs for the server.

``/metrics`` serves, per route template (not per raw path, so ids do not explode the label
set): ``loopml_http_requests_total{method,route,status}``,
``loopml_http_request_seconds{method,route}`` (a histogram) and
``loopml_http_errors_total{method,route,code}``. Each request is logged on the
``loopml.server.access`` logger as one JSON line (method, route, path, status, duration).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from loopml.server.deps import Role, allow

__all__ = ["install"]

access_log = logging.getLogger("loopml.server.access")


def _route_of(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", None) or "unmatched"


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

    @app.middleware("http")
    async def measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        elapsed = time.perf_counter() - started
        route = _route_of(request)
        requests.labels(request.method, route, str(response.status_code)).inc()
        latency.labels(request.method, route).observe(elapsed)
        if response.status_code >= 400:
            errors.labels(request.method, route, str(response.status_code)).inc()
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                json.dumps(
                    {
                        "method": request.method,
                        "route": route,
                        "path": request.url.path,
                        "status": response.status_code,
                        "ms": round(elapsed * 1000, 2),
                    }
                )
            )
        return response

    @app.get(
        "/metrics", tags=["operations"], include_in_schema=False, dependencies=[allow(Role.READER)]
    )
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
