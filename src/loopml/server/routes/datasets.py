"""Routes: datasets, their versions and lineage (the runs that used them).

Every route is one call into :class:`~loopml.storage.protocols.DatasetStore`; the store
validates names, versions, digests, kinds, counts, schemas and contexts and raises the same
errors as locally, so the bodies here take their values as they come (``Any``) and leave
judging them to the store. A version's files are blobs, uploaded through the blob routes
first; a version records only the digest of its manifest.

Paths: dataset names are path segments (the store allows letters, digits, ``.``, ``_`` and
``-`` and no leading ``.``, so no segment can be ``.`` or ``..``); versions are numbers or
``latest``.

Access: reading needs ``READER``; creating datasets and versions, setting rules and recording
a run's inputs needs ``WRITER``. Datasets themselves are not scoped; a token limited to some
experiments reads and records only the inputs of their runs (the ``/runs/{run_id}`` routes are
checked by :mod:`loopml.server.auth`) and sees only their runs among a dataset's usages.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from loopml.errors import InvalidArgumentError
from loopml.server.auth import runs_in_scope
from loopml.server.deps import Role, allow, store_of
from loopml.storage.rest.wire import to_wire

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["datasets"])

_READ = [allow(Role.READER)]
_WRITE = [allow(Role.WRITER)]


# ---------------------------------------------------------------------------- bodies


class CreateDataset(BaseModel):
    name: Any
    description: Any = ""


class SetRules(BaseModel):
    rules: Any = Field(None, description="The rules' JSON form; null removes them.")


class CreateVersion(BaseModel):
    digest: Any = Field(description="The digest of the version's manifest blob.")
    kind: Any = Field(description="'table' or 'files'.")
    num_files: Any
    size: Any
    num_rows: Any = None
    schema_: Any = Field(None, alias="schema")
    profile: Any = None
    source: Any = ""
    description: Any = ""


class RunInputs(BaseModel):
    inputs: list[tuple[Any, Any, Any]] = Field(
        description="[name, version, context] of each dataset version the run used."
    )


def _version_number(version: str) -> int | None:
    """``latest`` or a version number from the path."""
    if version == "latest":
        return None
    if not version.isascii() or not version.isdigit():
        raise InvalidArgumentError(
            f"The dataset version must be a positive integer or 'latest'. Got {version!r}.",
            field="version",
        )
    return int(version)


# ---------------------------------------------------------------------------- datasets


@router.post(
    "/datasets",
    status_code=status.HTTP_201_CREATED,
    dependencies=_WRITE,
    summary="Create a dataset",
)
def create_dataset(request: Request, body: CreateDataset) -> Any:
    return to_wire(store_of(request).create_dataset(body.name, body.description))


@router.get("/datasets", dependencies=_READ, summary="List datasets")
def list_datasets(request: Request) -> Any:
    return to_wire(store_of(request).list_datasets())


@router.get("/datasets/{name}", dependencies=_READ, summary="Get a dataset")
def get_dataset(request: Request, name: str) -> Any:
    return to_wire(store_of(request).get_dataset(name))


@router.put("/datasets/{name}/rules", dependencies=_WRITE, summary="Set or remove its rules")
def set_dataset_rules(request: Request, name: str, body: SetRules) -> Any:
    return to_wire(store_of(request).set_dataset_rules(name, body.rules))


# ---------------------------------------------------------------------------- versions


@router.post(
    "/datasets/{name}/versions",
    dependencies=_WRITE,
    summary="Record a version (unless the latest has the same content)",
    responses={201: {"description": "A new version"}, 200: {"description": "The latest"}},
)
def create_dataset_version(request: Request, name: str, body: CreateVersion) -> Any:
    info, created = store_of(request).create_dataset_version(
        name,
        digest=body.digest,
        kind=body.kind,
        num_files=body.num_files,
        size=body.size,
        num_rows=body.num_rows,
        schema=body.schema_,
        profile=body.profile,
        source=body.source,
        description=body.description,
    )
    answer = {"version": to_wire(info), "created": created}
    return JSONResponse(answer, status_code=201 if created else 200)


@router.get("/datasets/{name}/versions", dependencies=_READ, summary="List its versions")
def list_dataset_versions(request: Request, name: str) -> Any:
    return to_wire(store_of(request).list_dataset_versions(name))


@router.get(
    "/datasets/{name}/versions/{version}",
    dependencies=_READ,
    summary="Get a version (a number or 'latest')",
)
def get_dataset_version(request: Request, name: str, version: str) -> Any:
    return to_wire(store_of(request).get_dataset_version(name, _version_number(version)))


@router.get(
    "/dataset-versions", dependencies=_READ, summary="Versions of any dataset with this digest"
)
def find_dataset_versions(request: Request, digest: str = Query(...)) -> Any:
    return to_wire(store_of(request).find_dataset_versions(digest))


# ---------------------------------------------------------------------------- lineage


@router.post(
    "/runs/{run_id}/inputs", dependencies=_WRITE, summary="Record dataset versions a run used"
)
def log_dataset_inputs(request: Request, run_id: str, body: RunInputs) -> Any:
    return to_wire(store_of(request).log_dataset_inputs(run_id, body.inputs))


@router.get("/runs/{run_id}/inputs", dependencies=_READ, summary="The dataset versions a run used")
def list_run_inputs(request: Request, run_id: str) -> Any:
    return to_wire(store_of(request).list_run_inputs(run_id))


@router.get("/datasets/{name}/usages", dependencies=_READ, summary="The runs that used a dataset")
def list_dataset_usages(request: Request, name: str, version: int | None = None) -> Any:
    """Only the runs of experiments the caller's token may see."""
    usages = store_of(request).list_dataset_usages(name, version)
    visible = runs_in_scope(request, (usage.run_id for usage in usages))
    if visible is not None:
        usages = [usage for usage in usages if usage.run_id in visible]
    return to_wire(usages)
