"""Bearer-token authorization: who is calling, with which role, limited to what.

Every route's policy dependency (:func:`loopml.server.deps.allow`) calls :func:`authorize`
before the handler runs and before the body is validated (FastAPI solves a route's
``dependencies=`` first; only a body that is not JSON at all is refused with 400 before them,
having been read but never used).

* **Origin** (RELIABILITY S6), with auth on or off: a request that carries an ``Origin``
  header (only browsers send one) must come from the server's own origin or one of the CORS
  origins given, else 403. A page on another site cannot make a browser call the server.
* **Auth off** (the default on 127.0.0.1): everything else is allowed; the actor is ``None``.
* **Auth on**: ``Authorization: Bearer <token>`` is required. None or a malformed header is
  401 (``UNAUTHENTICATED``, with ``WWW-Authenticate: Bearer``), so is an unknown or revoked
  token; a role below the route's is 403 (``PERMISSION_DENIED``); so is a token whose scopes
  leave out the experiment, run or model the route names in its path (see below). The
  token's name becomes ``request.state.actor``, recorded as who did what.
* **Failed attempts** (a credential sent that is malformed, unknown or revoked) are counted
  per client address: after :data:`MAX_FAILURES` within :data:`WINDOW_SECONDS`, that address
  gets 429 with ``Retry-After`` on every call until the oldest failure leaves the window
  (RELIABILITY S10). Behind a reverse proxy every client shares the proxy's address; the
  ``X-Forwarded-For`` header is not trusted (any client could set it).

Scopes: a token may be limited to experiments (by name) and registered models. The routes
whose path names a resource are checked here, by convention on the path: a path parameter
``experiment_id`` (the experiment), ``run_id`` (the run's experiment), and ``name`` in a path
under ``models/{name}`` (the model). A route that names its resource in the body or the
query (creating a run in an experiment, creating a model, searching runs) must call
:func:`require_scope` itself, and a route that lists resources should leave out what
:func:`scopes_of` excludes (:func:`runs_in_scope` for lists of runs). A route that acts on
every experiment at once (reaping stale runs) calls :func:`require_every_experiment`.
Blobs are content-addressed and shared by every experiment: any reader may fetch a blob whose
digest it knows; digests are only revealed through the scoped routes (artifact listings, model
versions, dataset versions).
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import Request

from loopml.entities import Token, TokenScopes
from loopml.errors import (
    LoopmlError,
    PermissionDeniedError,
    RateLimitedError,
    StoreUnavailableError,
    UnauthenticatedError,
)
from loopml.server.deps import Role
from loopml.storage.protocols import TokenStore

__all__ = [
    "MAX_FAILURES",
    "WINDOW_SECONDS",
    "FailedAuthLimiter",
    "authorize",
    "limiter_of",
    "require_every_experiment",
    "require_scope",
    "runs_in_scope",
    "scopes_of",
    "token_of",
]

#: failed authentications one client address may make within the window ...
MAX_FAILURES = 10
#: ... of this many seconds, before it gets 429
WINDOW_SECONDS = 60.0
#: a route under this (after any prefix) names a registered model in its ``name`` parameter
_MODEL_ROUTE = re.compile(r"(^|/)models/\{name\}(/|$)")
_LIMITER_LOCK = threading.Lock()


class FailedAuthLimiter:
    """Failed authentications per client address in a sliding window (thread-safe).

    Memory is bounded: at most ``max_clients`` addresses are tracked; when more fail at once,
    those whose failures are oldest are forgotten first.
    """

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window: float = WINDOW_SECONDS,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self._clock = clock
        self._max_clients = max_clients
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float] | None:
        times = self._failures.get(client)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[client]
            return None
        return times

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try again, or ``None`` if it is not blocked."""
        with self._lock:
            now = self._clock()
            times = self._recent(client, now)
            if times is None or len(times) < self.max_failures:
                return None
            return max(1, math.ceil(times[0] + self.window - now))

    def failed(self, client: str) -> None:
        """Count one failed authentication from ``client``."""
        with self._lock:
            now = self._clock()
            times = self._recent(client, now)
            if times is None:
                if len(self._failures) >= self._max_clients:
                    self._forget_oldest(now)
                times = self._failures[client] = deque()
            times.append(now)
            while len(times) > self.max_failures:
                times.popleft()

    def _forget_oldest(self, now: float) -> None:
        for client in list(self._failures):
            self._recent(client, now)
        excess = len(self._failures) - self._max_clients + 1
        if excess > 0:
            oldest = sorted(self._failures, key=lambda c: self._failures[c][-1])[:excess]
            for client in oldest:
                del self._failures[client]

    def reset(self) -> None:
        with self._lock:
            self._failures.clear()


def limiter_of(request: Request) -> FailedAuthLimiter:
    """The app's limiter of failed authentications (created on first use)."""
    state = request.app.state
    limiter: FailedAuthLimiter | None = getattr(state, "auth_limiter", None)
    if limiter is None:
        with _LIMITER_LOCK:
            limiter = getattr(state, "auth_limiter", None)
            if limiter is None:
                limiter = state.auth_limiter = FailedAuthLimiter()
    return limiter


def token_of(request: Request) -> Token | None:
    """The token that authenticated this request (``None`` with auth off)."""
    return getattr(request.state, "token", None)


def scopes_of(request: Request) -> TokenScopes | None:
    """What the caller is limited to, or ``None`` for no limit (auth off, or a token without
    scopes). An empty tuple of one kind means no limit on that kind."""
    token = token_of(request)
    if token is None or token.scopes.unlimited:
        return None
    return token.scopes


# -- the policy check ---------------------------------------------------------------------------


def authorize(request: Request, role: Role) -> None:
    """Allow the request or raise; with auth off only the Origin check applies."""
    config = request.app.state.config
    _check_origin(request, tuple(config.cors_origins))
    if not config.auth:
        return
    client = request.client.host if request.client is not None else "unknown"
    limiter = limiter_of(request)
    wait = limiter.retry_after(client)
    if wait is not None:
        raise RateLimitedError(
            f"Too many failed authentications from this address; try again in {wait} s.",
            retry_after=wait,
        )
    token = _authenticate(request, client, limiter)
    request.state.token = token
    request.state.actor = token.name
    _check_role(request, token, role)
    _check_path_scopes(request)


def _check_origin(request: Request, cors_origins: tuple[str, ...]) -> None:
    origin = request.headers.get("origin")
    if origin is None or origin in cors_origins:
        return
    host = request.headers.get("host", "")
    if origin.lower() in (f"http://{host}".lower(), f"https://{host}".lower()):
        return
    raise PermissionDeniedError(
        f"Requests from the origin {origin!r} are not accepted here; start the server with "
        "--cors-origin to allow a web app on another origin.",
        origin=origin,
    )


def _authenticate(request: Request, client: str, limiter: FailedAuthLimiter) -> Token:
    header = request.headers.get("authorization")
    if header is None:
        raise UnauthenticatedError(
            "This server requires a token: send 'Authorization: Bearer <token>' "
            "(loopml clients read it from LOOPML_TOKEN)."
        )
    scheme, _, secret = header.strip().partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret or " " in secret:
        limiter.failed(client)
        raise UnauthenticatedError(
            "The Authorization header must be 'Bearer <token>'.", reason="malformed"
        )
    token = _token_store(request).verify_token(secret)
    if token is None:
        limiter.failed(client)
        raise UnauthenticatedError("The token is not valid: it is unknown or was revoked.")
    return token


def _token_store(request: Request) -> TokenStore:
    store = request.app.state.store
    if not isinstance(store, TokenStore):
        raise StoreUnavailableError(
            f"Authentication needs a store that keeps tokens (a SQL store); this server "
            f"serves a {type(store).__name__}."
        )
    return store


def _check_role(request: Request, token: Token, role: Role) -> None:
    held = Role[token.role.name]
    if held >= role:
        return
    route = request.scope.get("route")
    what = f"{request.method} {getattr(route, 'path', request.url.path)}"
    raise PermissionDeniedError(
        f"This token's role {held.name.lower()!r} cannot call {what}; it needs "
        f"{role.name.lower()!r}.",
        role=held.name.lower(),
        required=role.name.lower(),
    )


def _check_path_scopes(request: Request) -> None:
    """Scopes of the resource the route's path names (see the module docs)."""
    if scopes_of(request) is None:
        return
    params = request.path_params
    route_path = getattr(request.scope.get("route"), "path", "")
    require_scope(
        request,
        experiment_id=params.get("experiment_id"),
        run_id=params.get("run_id"),
        model=params.get("name") if _MODEL_ROUTE.search(route_path) else None,
    )


# -- scopes --------------------------------------------------------------------------------------


def require_scope(
    request: Request,
    *,
    experiment_id: str | None = None,
    experiment_name: str | None = None,
    run_id: str | None = None,
    model: str | None = None,
    experiment_ids: Iterable[str] = (),
    run_ids: Iterable[str] = (),
) -> None:
    """Raise PermissionDeniedError (403) unless the caller's token may use these resources.

    Give what the call touches: experiments by id or by name, runs (their experiments are
    checked), a registered model by name. With auth off, or for a token without scopes, this
    does nothing. An experiment or run that does not exist is refused to a scoped token (it
    cannot be in its scope, and the answer must not reveal whether it exists). Each distinct
    id is looked up once.
    """
    scopes = scopes_of(request)
    if scopes is None:
        return
    if scopes.experiments:
        names = _ExperimentNames(request.app.state.store)
        if experiment_name is not None and experiment_name not in scopes.experiments:
            raise _out_of_scope("experiment", experiment_name, scopes.experiments)
        ids = _distinct(experiment_id, experiment_ids)
        runs = _distinct(run_id, run_ids)
        for name in [names.of_experiment(i) for i in ids] + [names.of_run(r) for r in runs]:
            if name not in scopes.experiments:
                raise _out_of_scope("experiment", name, scopes.experiments)
    if scopes.models and model is not None and model not in scopes.models:
        raise _out_of_scope("model", model, scopes.models)


def runs_in_scope(request: Request, run_ids: Iterable[str]) -> set[str] | None:
    """The runs among ``run_ids`` whose experiment the caller's token may use, or ``None``
    when every run is (auth off, or no experiment scope): for filtering listings."""
    scopes = scopes_of(request)
    if scopes is None or not scopes.experiments:
        return None
    names = _ExperimentNames(request.app.state.store)
    return {run for run in set(run_ids) if names.of_run(run) in scopes.experiments}


def require_every_experiment(request: Request, action: str) -> None:
    """Refuse (403) a token limited to some experiments: ``action`` touches them all."""
    scopes = scopes_of(request)
    if scopes is None or not scopes.experiments:
        return
    shown = ", ".join(repr(a) for a in scopes.experiments)
    raise PermissionDeniedError(
        f"This token is limited to the experiments {shown}; it cannot {action}, which acts on "
        "every experiment. Use a token without an experiment scope.",
        scope="experiment",
    )


def _distinct(one: str | None, many: Iterable[str]) -> list[str]:
    found = [] if one is None else [one]
    found.extend(many)
    return list(dict.fromkeys(str(item) for item in found))


class _ExperimentNames:
    """Experiment names by experiment id and by run id (``None``: not found), each looked
    up once."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._by_id: dict[str, str | None] = {}

    def of_experiment(self, experiment_id: str) -> str | None:
        if experiment_id not in self._by_id:
            try:
                self._by_id[experiment_id] = self._store.get_experiment(experiment_id).name
            except LoopmlError:
                self._by_id[experiment_id] = None
        return self._by_id[experiment_id]

    def of_run(self, run_id: str) -> str | None:
        try:
            experiment_id = self._store.get_run(run_id).info.experiment_id
        except LoopmlError:
            return None
        return self.of_experiment(experiment_id)


def _out_of_scope(kind: str, name: str | None, allowed: tuple[str, ...]) -> PermissionDeniedError:
    shown = ", ".join(repr(a) for a in allowed)
    what = f"the {kind} {name!r}" if name is not None else f"this {kind}"
    return PermissionDeniedError(
        f"This token is limited to the {kind}s {shown}; it cannot use {what}.", scope=kind
    )
