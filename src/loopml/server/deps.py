"""What route handlers depend on: the store, and the access policy of every route.

Every route declares its policy with ``dependencies=[allow(Role.WRITER)]`` (or
``public()``); a test walks the route table and fails for a route that has none, so a new
route cannot ship without authorization (RELIABILITY S5). With ``--auth`` off (the default on
127.0.0.1) every call is allowed and the actor is the server's user; with it on, the bearer
token decides (see :mod:`loopml.server.auth`).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from loopml.storage.protocols import TrackingStore

__all__ = ["POLICY_ATTRIBUTE", "Role", "actor_of", "allow", "public", "store_of"]

POLICY_ATTRIBUTE = "loopml_policy"


class Role(IntEnum):
    """Roles, each including the ones below it."""

    READER = 1
    WRITER = 2
    ADMIN = 3


def store_of(request: Request) -> TrackingStore:
    store: TrackingStore = request.app.state.store
    return store


def actor_of(request: Request) -> str | None:
    """Who is calling: the token's name with auth on, else ``None`` (the store's default)."""
    return getattr(request.state, "actor", None)


async def _check(request: Request, role: Role) -> None:
    from loopml.server import auth  # auth imports Role from here

    if request.app.state.config.auth:
        # the token is looked up in the store (blocking I/O): on a worker thread
        await run_in_threadpool(auth.authorize, request, role)
    else:
        auth.authorize(request, role)  # only the Origin check: no I/O, no thread hop


def allow(role: Role) -> Any:
    """The dependency that requires ``role`` (when auth is on).

    It is a coroutine, so with auth off a request costs no hop to the thread pool beyond its
    handler's own; with auth on only the check that queries the store runs on a thread."""

    async def dependency(request: Request) -> None:
        await _check(request, role)

    setattr(dependency, POLICY_ATTRIBUTE, role)
    return Depends(dependency)


def public() -> Any:
    """The dependency of a route open to everyone (health checks)."""

    async def dependency() -> None:
        return None

    setattr(dependency, POLICY_ATTRIBUTE, "public")
    return Depends(dependency)
