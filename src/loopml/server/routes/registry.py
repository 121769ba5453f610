"""Routes: the model registry (registered models, versions, tags, aliases, events, lineage).

Every route is one call into :class:`~loopml.storage.protocols.RegistryStore`; the store
validates names, versions, aliases, digests and tags and raises the same errors as locally.

Access: reading needs ``READER``; creating and changing models, versions, tags and aliases
needs ``WRITER`` (deleting or archiving a *version* included: its number is never reused and
the event log keeps it); deleting a whole registered model needs ``ADMIN``. A token limited
to some models may only use those: the routes under ``models/{name}`` are checked by
:mod:`loopml.server.auth`; creating a model checks the name in the body, registering a version
checks the run it names, and listings (all models, a dataset's models) leave the others out.

Who did it: every change recorded as an event gets its ``actor`` from the server. With auth on
it is the bearer token's name and whatever the client sends is ignored; with auth off (a
local server) it is the ``actor`` the client sent (``LOOPML_ACTOR`` or the OS user), or none.

Paths: model names and aliases are path segments (the store's rules for them allow letters,
digits, ``.``, ``_`` and ``-`` only, so ``a.b-c_d`` and ``champion.v2`` work and no segment
can be ``.`` or ``..``). Tag keys are free text (they may hold ``/`` or ``?``), so they travel
in the body (``PUT``) or the query (``DELETE``), never in the path.

Sources (RELIABILITY S2): a version's ``source`` is kept as text to show where it came from;
the server never opens it, nor any other URI a client sends, and the package is named by its
``package_digest`` (validated as a digest of the server's own blob store). As defence in depth
a ``source`` that is not empty, a ``runs:/...`` or a ``models:/...`` reference (a ``file://``,
``s3://`` or ``http://`` URI, a local path) is refused with 400 and nothing is created.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from loopml.entities import ModelVersion, RegisteredModel
from loopml.errors import InvalidArgumentError
from loopml.server.auth import require_scope, scopes_of
from loopml.server.deps import Role, actor_of, allow, store_of
from loopml.storage.rest.wire import to_wire

router = APIRouter(prefix="/api/v1", tags=["registry"])

_Named = TypeVar("_Named", RegisteredModel, ModelVersion)

_READ = [allow(Role.READER)]
_WRITE = [allow(Role.WRITER)]
_ADMIN = [allow(Role.ADMIN)]


# ---------------------------------------------------------------------------- bodies


class _Body(BaseModel):
    """JSON types exactly (no ``"5"`` for 5, no ``1`` for true); unknown fields ignored.
    Values are checked by the store only."""

    model_config = ConfigDict(strict=True)


Tags = dict[str, str]


class _Change(_Body):
    """What every recorded change may carry: who (only with auth off) and why."""

    actor: str | None = Field(
        None, description="Who makes the change; ignored when the server has auth on."
    )
    reason: str = ""


class CreateModel(_Body):
    name: str
    description: str = ""
    tags: Tags | None = None


class UpdateDescription(_Body):
    description: str


class SetTag(_Body):
    key: str
    value: str


class CreateVersion(_Body):
    package_digest: str = Field(description="The digest of the package's manifest blob.")
    run_id: str | None = None
    source: str = Field("", description="Shown only; a runs:/ or models:/ reference, or empty.")
    description: str = ""
    flavor: str = ""
    tags: Tags | None = None
    actor: str | None = Field(
        None, description="Who registers it; ignored when the server has auth on."
    )


class SetStatus(_Change):
    status: str = Field(description="READY (restore) or ARCHIVED (archive).")
    force: bool = Field(False, description="Archive even if aliases point at it (removing them).")


class SetAlias(_Change):
    version: int


# ---------------------------------------------------------------------------- helpers


def _actor(request: Request, sent: str | None) -> str | None:
    """The actor to record: the token's name with auth on, else what the client sent."""
    token_name = actor_of(request)
    if token_name is not None:
        return token_name
    if request.app.state.config.auth:
        return None  # never trust a client-sent name when tokens decide who is calling
    return sent


def _in_scope(request: Request, found: list[_Named]) -> list[_Named]:
    """What a listing may show: a token limited to some models sees only those."""
    scopes = scopes_of(request)
    if scopes is None or not scopes.models:
        return found
    return [item for item in found if item.name in scopes.models]


def _check_source(source: str) -> None:
    """Refuse a ``source`` that is not a store reference (see the module docs)."""
    if source == "":
        return
    if source.startswith(("runs:/", "models:/")):
        from loopml.models.uris import parse_model_uri

        try:
            if parse_model_uri(source).kind != "folder":
                return
        except InvalidArgumentError:
            pass
    shown = source if len(source) <= 80 else source[:77] + "..."
    raise InvalidArgumentError(
        f"The source must be a 'runs:/<run id>/<path>' or 'models:/<name>/...' reference, or "
        f"empty; the server records it as text and never opens a URI. Got {shown!r}.",
        field="source",
    )


# ---------------------------------------------------------------------------- models


@router.post(
    "/models", status_code=status.HTTP_201_CREATED, dependencies=_WRITE, summary="Create a model"
)
def create_registered_model(request: Request, body: CreateModel) -> Any:
    require_scope(request, model=body.name)
    model = store_of(request).create_registered_model(body.name, body.description, body.tags)
    return to_wire(model)


@router.get("/models", dependencies=_READ, summary="List registered models")
def list_registered_models(request: Request) -> Any:
    return to_wire(_in_scope(request, store_of(request).list_registered_models()))


@router.get("/models/{name}", dependencies=_READ, summary="Get a registered model")
def get_registered_model(request: Request, name: str) -> Any:
    return to_wire(store_of(request).get_registered_model(name))


@router.patch("/models/{name}", dependencies=_WRITE, summary="Change a model's description")
def update_registered_model(request: Request, name: str, body: UpdateDescription) -> Any:
    return to_wire(store_of(request).update_registered_model(name, description=body.description))


@router.put(
    "/models/{name}/tags",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=_WRITE,
    summary="Set a model tag",
)
def set_registered_model_tag(request: Request, name: str, body: SetTag) -> None:
    store_of(request).set_registered_model_tag(name, body.key, body.value)


@router.delete(
    "/models/{name}/tags",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=_WRITE,
    summary="Delete a model tag",
)
def delete_registered_model_tag(request: Request, name: str, key: str = Query()) -> None:
    store_of(request).delete_registered_model_tag(name, key)


@router.delete(
    "/models/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=_ADMIN,
    summary="Delete a registered model (ADMIN)",
)
def delete_registered_model(
    request: Request, name: str, reason: str = "", actor: str | None = None
) -> None:
    """Deletes the model with its versions, tags and aliases; its event history remains."""
    store_of(request).delete_registered_model(name, actor=_actor(request, actor), reason=reason)


# ---------------------------------------------------------------------------- versions


@router.post(
    "/models/{name}/versions",
    status_code=status.HTTP_201_CREATED,
    dependencies=_WRITE,
    summary="Register a model version",
)
def create_model_version(request: Request, name: str, body: CreateVersion) -> Any:
    """The next version of ``name`` (the model is created on first use). ``source`` is kept
    as text and never opened; see the module docs."""
    _check_source(body.source)
    if body.run_id is not None:
        require_scope(request, run_id=body.run_id)
    version = store_of(request).create_model_version(
        name,
        package_digest=body.package_digest,
        run_id=body.run_id,
        source=body.source,
        description=body.description,
        flavor=body.flavor,
        tags=body.tags,
        actor=_actor(request, body.actor),
    )
    return to_wire(version)


@router.get("/models/{name}/versions", dependencies=_READ, summary="List versions, newest first")
def list_model_versions(request: Request, name: str) -> Any:
    return to_wire(store_of(request).list_model_versions(name))


@router.get("/models/{name}/versions/{version}", dependencies=_READ, summary="Get a version")
def get_model_version(request: Request, name: str, version: int) -> Any:
    return to_wire(store_of(request).get_model_version(name, version))


@router.patch(
    "/models/{name}/versions/{version}",
    dependencies=_WRITE,
    summary="Change a version's description",
)
def update_model_version(request: Request, name: str, version: int, body: UpdateDescription) -> Any:
    return to_wire(
        store_of(request).update_model_version(name, version, description=body.description)
    )


@router.put(
    "/models/{name}/versions/{version}/tags",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=_WRITE,
    summary="Set a version tag",
)
def set_model_version_tag(request: Request, name: str, version: int, body: SetTag) -> None:
    store_of(request).set_model_version_tag(name, version, body.key, body.value)


@router.delete(
    "/models/{name}/versions/{version}/tags",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=_WRITE,
    summary="Delete a version tag",
)
def delete_model_version_tag(request: Request, name: str, version: int, key: str = Query()) -> None:
    store_of(request).delete_model_version_tag(name, version, key)


@router.post(
    "/models/{name}/versions/{version}/status",
    dependencies=_WRITE,
    summary="Archive or restore a version",
)
def set_model_version_status(request: Request, name: str, version: int, body: SetStatus) -> Any:
    """``ARCHIVED`` is refused (409, with the aliases) while aliases point at the version,
    unless ``force``, which removes them."""
    changed = store_of(request).set_model_version_status(
        name,
        version,
        body.status,
        force=body.force,
        actor=_actor(request, body.actor),
        reason=body.reason,
    )
    return to_wire(changed)


@router.delete(
    "/models/{name}/versions/{version}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=_WRITE,
    summary="Delete a version",
)
def delete_model_version(
    request: Request,
    name: str,
    version: int,
    force: bool = False,
    reason: str = "",
    actor: str | None = None,
) -> None:
    """Refused (409, with the aliases) while aliases point at it, unless ``force``."""
    store_of(request).delete_model_version(
        name, version, force=force, actor=_actor(request, actor), reason=reason
    )


# ---------------------------------------------------------------------------- aliases


@router.put("/models/{name}/aliases/{alias}", dependencies=_WRITE, summary="Point an alias")
def set_alias(request: Request, name: str, alias: str, body: SetAlias) -> Any:
    """Moves ``alias`` to ``version`` atomically; ``previous`` is the version it left."""
    previous = store_of(request).set_alias(
        name, alias, body.version, actor=_actor(request, body.actor), reason=body.reason
    )
    return {"previous": previous}


@router.delete("/models/{name}/aliases/{alias}", dependencies=_WRITE, summary="Remove an alias")
def delete_alias(
    request: Request, name: str, alias: str, reason: str = "", actor: str | None = None
) -> Any:
    previous = store_of(request).delete_alias(
        name, alias, actor=_actor(request, actor), reason=reason
    )
    return {"previous": previous}


@router.get(
    "/models/{name}/aliases/{alias}", dependencies=_READ, summary="The version an alias names"
)
def get_model_version_by_alias(request: Request, name: str, alias: str) -> Any:
    return to_wire(store_of(request).get_model_version_by_alias(name, alias))


# ---------------------------------------------------------------------------- history


@router.get("/models/{name}/events", dependencies=_READ, summary="A model's history")
def list_registry_events(request: Request, name: str) -> Any:
    """Oldest first; kept after the model is deleted (empty for a name never used)."""
    return to_wire(store_of(request).list_registry_events(name))


@router.get(
    "/datasets/{name}/models",
    dependencies=_READ,
    summary="Model versions trained on a dataset",
)
def list_dataset_models(request: Request, name: str, version: int | None = None) -> Any:
    """Only the models the caller's token may see."""
    return to_wire(_in_scope(request, store_of(request).list_dataset_models(name, version)))
