"""Routes: the server's bearer tokens (``ADMIN`` only).

``POST /api/v1/tokens`` answers the new token's secret, once (``Cache-Control: no-store``);
no route ever answers a secret again, nor its hash. A revoked token stays listed with
``include_revoked=true``. The first admin token is made on the server's machine with
``loopml tokens create`` against the database itself (there is no default token).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from loopml.errors import PermissionDeniedError, StoreUnavailableError
from loopml.server.auth import scopes_of
from loopml.server.deps import Role, actor_of, allow
from loopml.storage.protocols import TokenStore
from loopml.storage.rest.wire import to_wire

router = APIRouter(prefix="/api/v1", tags=["tokens"], dependencies=[allow(Role.ADMIN)])


class CreateToken(BaseModel):
    name: str = Field(description="Unique among tokens that are not revoked.")
    role: str = Field(description="reader, writer or admin.")
    experiments: list[str] = Field(
        default_factory=list,
        description="Experiment names or ids the token is limited to (none: every experiment).",
    )
    models: list[str] = Field(
        default_factory=list,
        description="Registered models the token is limited to (none: every model).",
    )


def _unscoped_only(request: Request) -> None:
    """Managing tokens is for unscoped admins: a token limited to some experiments or models
    could otherwise mint one without limits and step outside its scope."""
    scopes = scopes_of(request)
    if scopes is not None:
        raise PermissionDeniedError(
            "Managing tokens needs an admin token without scopes; this token is limited to "
            "some experiments or models.",
            action="manage tokens",
        )


def _tokens(request: Request) -> TokenStore:
    _unscoped_only(request)
    store = request.app.state.store
    if not isinstance(store, TokenStore):
        raise StoreUnavailableError(
            f"This server's store ({type(store).__name__}) does not keep tokens."
        )
    return store


@router.post("/tokens", status_code=status.HTTP_201_CREATED, summary="Create a token")
def create_token(request: Request, body: CreateToken) -> JSONResponse:
    """The token and its secret: the only time the secret is shown."""
    token, secret = _tokens(request).create_token(
        body.name,
        body.role,
        scopes={"experiments": body.experiments, "models": body.models},
        actor=actor_of(request),
    )
    return JSONResponse(
        {"token": to_wire(token), "secret": secret},
        status_code=status.HTTP_201_CREATED,
        headers={"Cache-Control": "no-store"},
    )


@router.get("/tokens", summary="List tokens (never their secrets)")
def list_tokens(request: Request, include_revoked: bool = Query(False)) -> Any:
    return {"tokens": to_wire(_tokens(request).list_tokens(include_revoked=include_revoked))}


@router.delete("/tokens/{name}", summary="Revoke a token")
def revoke_token(request: Request, name: str) -> Any:
    return {"token": to_wire(_tokens(request).revoke_token(name, actor=actor_of(request)))}
