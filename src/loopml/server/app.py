"""The tracking server: the store interface over HTTP, under ``/api/v1``.

``create_app(store)`` builds a FastAPI app around any :class:`TrackingStore` (normally the
SQL store). Each resource has its router in :mod:`loopml.server.routes`; every route is one
call into the store. What every route shares lives here:

* **Errors**: a :class:`~loopml.errors.LoopmlError` becomes its HTTP status with the body
  ``{"error_code", "message", "details"}`` (the remote store raises the same class again);
  request validation errors are 400 with the field's path; anything else is a 500 whose body
  carries an id to find the logged traceback, never the traceback or a server path.
* **Hardening** (RELIABILITY S6, V2): the ``Host`` header must be one of the allowed hosts
  (127.0.0.1, localhost, ::1 and those given), so a DNS-rebinding page cannot reach a local
  server; a body-carrying request must say ``application/json`` (blob uploads
  ``application/octet-stream``), so a cross-site form or ``text/plain`` POST is refused with
  415; bodies over the limit get 413 before they are read. No CORS unless origins are given.
* **Operations**: ``/health`` (the process answers), ``/ready`` (the metadata and blob stores
  answer), ``/metrics`` (Prometheus: requests, latencies and errors per route).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loopml._version import __version__
from loopml.errors import LoopmlError, StoreUnavailableError
from loopml.server import observability
from loopml.server._uploads import UploadFolder
from loopml.server.deps import public
from loopml.storage.protocols import TrackingStore

__all__ = ["ServerConfig", "create_app"]

logger = logging.getLogger("loopml.server")

ROUTER_MODULES = (
    "loopml.server.routes.tracking",
    "loopml.server.routes.artifacts",
    "loopml.server.routes.datasets",
    "loopml.server.routes.registry",
    "loopml.server.routes.predictions",
    "loopml.server.routes.monitors",
    "loopml.server.routes.tokens",
)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_JSON = "application/json"
_OCTETS = "application/octet-stream"
#: error codes of the framework's own errors (no route, wrong method, an unreadable body)
_HTTP_CODES = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}


@dataclass(frozen=True)
class ServerConfig:
    """How a server behaves (the ``loopml server`` options)."""

    #: extra values accepted in the Host header (127.0.0.1, localhost and ::1 always are)
    allowed_hosts: Sequence[str] = ()
    #: origins allowed by CORS; none by default (same-origin only)
    cors_origins: Sequence[str] = ()
    #: the largest JSON body accepted, in bytes
    max_json_bytes: int = 16 * 1024 * 1024
    #: the largest upload (artifact or blob), in bytes
    max_upload_bytes: int = 5 * 1024**3
    #: seconds an interrupted upload's partial file is kept for the client to continue it
    upload_ttl: float = 24 * 3600.0
    #: require a bearer token on every non-public route
    auth: bool = False
    public_paths: frozenset[str] = field(default_factory=lambda: frozenset({"/health", "/ready"}))


def _error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error_code": code, "message": message, "details": details or {}}


def _validation_response(exc: RequestValidationError) -> JSONResponse:
    problems = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        problem = str(error.get("msg", ""))
        if error.get("type") == "json_invalid":  # loc is ("body", the character's offset)
            location, problem = "", f"{problem} at character {location}"
        problems.append({"field": location or "body", "problem": problem})
    first = problems[0] if problems else {"field": "body", "problem": "invalid"}
    message = f"Invalid request: {first['field']}: {first['problem']}"
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more)"
    body = _error_body("INVALID_ARGUMENT", message, {"field": first["field"], "problems": problems})
    return JSONResponse(body, status_code=400)


_DISK_FULL_TEXTS = ("disk is full", "no space left", "could not extend file", "quota exceeded")


def _storage_failure(request: Request, exc: StoreUnavailableError) -> JSONResponse:
    """A failure of the server's own stores, told without their location (logged in full):
    507 when the disk is full, else 503."""
    logger.error("storage failure on %s %s: %s", request.method, request.url.path, exc.message)
    reason = str(exc.details.get("reason") or "")
    full = any(text in (reason or exc.message).lower() for text in _DISK_FULL_TEXTS)
    if full:
        message = "The server's disk is full; nothing was stored. Reads still work."
    else:
        message = "The server's storage is unavailable; the server log has the details."
    details = {"reason": reason} if reason else {}
    return JSONResponse(
        _error_body(exc.code, message, details), status_code=507 if full else exc.http_status
    )


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoopmlError)
    async def loopml_error(request: Request, exc: LoopmlError) -> JSONResponse:
        if isinstance(exc, StoreUnavailableError) and "uri" in exc.details:
            return _storage_failure(request, exc)
        details = {k: v for k, v in exc.details.items() if _jsonable(v)}
        return JSONResponse(
            _error_body(exc.code, exc.message, details),
            status_code=exc.http_status,
            headers=getattr(exc, "headers", None),  # WWW-Authenticate (401), Retry-After (429)
        )

    @app.exception_handler(StarletteHTTPException)
    async def framework_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
        message, details = str(exc.detail), dict[str, Any]()
        if isinstance(exc, _BodyTooLarge):
            code, details = "PAYLOAD_TOO_LARGE", {"limit": exc.limit}
        elif exc.status_code == 400:  # FastAPI's only 400: a body json.loads could not decode
            message = "The request body is not readable JSON (not UTF-8, or nested too deep)."
            details = {"field": "body"}
        return JSONResponse(
            _error_body(code, message, details),
            status_code=exc.status_code,
            headers=exc.headers,  # Allow (405)
        )

    @app.exception_handler(UnicodeEncodeError)
    async def lone_surrogate(_request: Request, exc: UnicodeEncodeError) -> JSONResponse:
        # JSON may escape half a surrogate pair ("\\ud800"): json.loads gives a str that no
        # database can encode, so the store's write fails (and is rolled back)
        message = (
            "The request holds a string that is not valid Unicode (a lone surrogate escape "
            "such as \\ud800); nothing was stored."
        )
        return JSONResponse(_error_body("INVALID_ARGUMENT", message), status_code=400)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_response(exc)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        incident = uuid.uuid4().hex[:12]
        logger.exception("internal error %s on %s %s", incident, request.method, request.url.path)
        body = _error_body(
            "INTERNAL_ERROR",
            f"Internal server error (incident {incident}); the server log has the details.",
            {"incident": incident},
        )
        return JSONResponse(body, status_code=500)


def _jsonable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | type(None) | list | dict)


def _is_upload(path: str) -> bool:
    if path.endswith("/blobs/which-exist"):  # a JSON query
        return False
    return path.endswith(("/content", "/upload")) or "/blobs/" in path


class _BodyTooLarge(StarletteHTTPException):
    """A JSON body found over the limit while it is read (sent without a Content-Length, or
    with a false one); FastAPI passes an HTTPException raised by the body's reader on."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is over {limit:,} bytes, the most taken here.")
        self.limit = limit


def _counted(receive: Receive, limit: int) -> Receive:
    """``receive`` raising :class:`_BodyTooLarge` once the body is past ``limit`` bytes."""
    received = 0

    async def counted() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise _BodyTooLarge(limit)
        return message

    return counted


def _host_allowed(host: str, allowed: frozenset[str]) -> bool:
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    return name.lower() in allowed


class Guard:
    """Refuse what no route should see, before routing (a pure ASGI middleware: no task or
    stream per request, and responses pass through untouched).

    A foreign ``Host`` is 400 ``FORBIDDEN_HOST``; a POST, PUT or PATCH whose Content-Type is
    not the one its endpoint takes is 415; one whose Content-Length is over the limit is 413,
    and a JSON body is counted as it is read (413 once past the limit, Content-Length or not).
    """

    def __init__(self, app: ASGIApp, *, config: ServerConfig) -> None:
        self.app = app
        self._allowed = frozenset(
            {"127.0.0.1", "localhost", "[::1]", "::1", "testserver"}
            | {h.lower() for h in config.allowed_hosts}
        )
        self._max_json = config.max_json_bytes
        self._max_upload = config.max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self._refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
            if scope["method"] in _BODY_METHODS and not _is_upload(scope["path"]):
                receive = _counted(receive, self._max_json)  # uploads count their own bytes
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> JSONResponse | None:
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if not _host_allowed(host, self._allowed):
            return JSONResponse(
                _error_body(
                    "FORBIDDEN_HOST",
                    f"Host {host!r} is not served here; start the server with --allowed-host "
                    "to accept it.",
                ),
                status_code=400,
            )
        if scope["method"] not in _BODY_METHODS:
            return None
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        path: str = scope["path"]
        upload = _is_upload(path)
        expected = _OCTETS if upload else _JSON
        if kind != expected:
            return JSONResponse(
                _error_body(
                    "UNSUPPORTED_MEDIA_TYPE",
                    f"This endpoint takes Content-Type {expected}, not {kind or 'none'!r}.",
                ),
                status_code=415,
            )
        limit = self._max_upload if upload else self._max_json
        length = headers.get("content-length")
        if length is not None and length.isascii() and length.isdigit() and int(length) > limit:
            return JSONResponse(
                _error_body(
                    "PAYLOAD_TOO_LARGE",
                    f"The request body is {int(length):,} bytes; this server takes at most "
                    f"{limit:,} here.",
                    {"limit": limit},
                ),
                status_code=413,
            )
        return None


def create_app(store: TrackingStore, config: ServerConfig | None = None) -> FastAPI:
    """The server's ASGI app, serving ``store``."""
    import importlib

    config = config or ServerConfig()
    app = FastAPI(
        title="loopml tracking server",
        version=__version__,
        description="The loopml store interface over HTTP: experiments, runs, metrics, "
        "artifacts, datasets and the model registry.",
    )
    app.state.store = store
    app.state.config = config
    app.state.uploads = UploadFolder(store.blobs, config.upload_ttl)
    app.state.uploads.sweep(now=time.time())  # what a killed server left behind
    _install_error_handlers(app)
    observability.install(app)
    app.add_middleware(Guard, config=config)  # outside the metrics: refusals not counted
    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    for name in ROUTER_MODULES:
        app.include_router(importlib.import_module(name).router)

    @app.get("/health", tags=["operations"], dependencies=[public()])
    async def health() -> dict[str, str]:
        """The process answers (a coroutine: no I/O, so no hop to the thread pool)."""
        return {"status": "ok", "version": __version__}

    @app.get("/ready", tags=["operations"], dependencies=[public()])
    def ready() -> JSONResponse:
        """The metadata store and the blob store answer."""
        checks: dict[str, str] = {}
        for name, probe in (
            ("metadata", lambda: store.list_experiments()),
            ("blobs", lambda: store.blobs.exists("blake3:" + "0" * 64)),
        ):
            started = time.perf_counter()
            try:
                probe()
                checks[name] = f"ok ({(time.perf_counter() - started) * 1000:.1f} ms)"
            except Exception as exc:
                checks[name] = f"unavailable: {type(exc).__name__}"
        ok = all(value.startswith("ok") for value in checks.values())
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    return app
