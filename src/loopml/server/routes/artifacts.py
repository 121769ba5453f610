"""Routes: blobs (content-addressed bytes) and run artifacts (logical paths naming blobs).

**Blobs** live under ``/api/v1/blobs/{digest}``. The digest is checked with
:func:`~loopml.storage.blobs.validate_digest` before anything else, so it can never become a
path; every route takes it as a ``{digest:path}``-style segment, so that ``../x``,
``..%2f`` or a NUL byte reach that check and get a 400 JSON error instead of another route.

* ``PUT`` (an upload, ``application/octet-stream``): the body is written to a partial file
  (see :mod:`loopml.server._uploads`) while it is hashed and counted, a megabyte at a time
  from a worker thread, so neither the body nor the event loop is ever held. Past
  ``max_upload_bytes`` the upload stops there with 413 (Content-Length is not trusted: bytes
  are counted as they arrive). Bytes that do not hash to the digest in the URL are refused
  with 400 ``DATA_CORRUPTED``. Only verified bytes are handed to the blob store
  (``put_verified_file``: on a local store a rename, so the bytes are written once); a
  refused upload leaves nothing. An interrupted one keeps its partial file: ``GET
  .../upload`` says how many bytes the server holds and ``PUT ...?offset=N`` continues there
  (RELIABILITY L4: a 2 GB upload cut off at 1.9 GB sends 100 MB more, not 2 GB).
* ``GET``: the blob store hands over the object verified and open (``open_verified``: on a
  local store the object itself, hashed with plain reads first; on an object store a
  temporary copy), and the response streams it a megabyte at a time with its
  Content-Length. A corrupted object is therefore refused (500 ``DATA_CORRUPTED``) before
  the first byte is sent, and the client verifies what it receives once more. Nothing is
  read whole into memory or memory-mapped, so the server's resident memory does not grow
  with the file.
* ``GET .../exists``, ``GET .../size`` and ``POST /blobs/which-exist`` (a JSON list of
  digests, answered with those present) let a client upload only what is missing.

Errors of the blob store are passed on without the server's storage location in them (the
original is logged); a full disk answers 507.

**Artifacts** of a run are recorded against blobs the client uploaded first
(``POST /runs/{run_id}/artifacts`` with ``{path, digest, size}``): the client never sends a
storage path or URI (RELIABILITY S1, S2); the logical path is checked by
:func:`~loopml.storage.paths.validate_artifact_path` (in the store, and here before a lookup),
and the digest must name a blob the server holds.

Access: reading needs ``READER``; uploading blobs and recording artifacts needs ``WRITER``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import time
from collections.abc import AsyncIterator, Iterator
from functools import partial
from typing import Any, BinaryIO
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from loopml.entities import ArtifactInfo
from loopml.errors import (
    ArtifactNotFoundError,
    ConflictError,
    IntegrityError,
    LoopmlError,
    StoreUnavailableError,
)
from loopml.server._uploads import PartialUpload
from loopml.server.deps import Role, allow, store_of
from loopml.storage.blobs import BlobRef, BlobStore, validate_digest
from loopml.storage.paths import validate_artifact_path
from loopml.storage.rest.wire import to_wire
from loopml.storage.validation import validate_run_id

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["artifacts"])

_READ = [allow(Role.READER)]
_WRITE = [allow(Role.WRITER)]
_OCTETS = "application/octet-stream"

#: bytes gathered from the request before a worker thread hashes and writes them
_SPOOL_STEP = 1024 * 1024
#: bytes read from disk per chunk of a download
_SEND_STEP = 1024 * 1024
#: seconds an upload waits for another request on the same digest to let go of it
_LOCK_WAIT = 10.0
_DISK_FULL = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


# ---------------------------------------------------------------------------- bodies


class ArtifactEntry(BaseModel):
    """An artifact file to record: its logical path and the blob holding its bytes."""

    path: Any = Field(
        description="The logical path in the run's artifact tree, e.g. 'model/w.bin'."
    )
    digest: Any = Field(description="The digest of a blob already uploaded to this server.")
    size: Any = Field(description="The blob's size in bytes.")


class ArtifactBatch(BaseModel):
    files: list[ArtifactEntry]


class DigestList(BaseModel):
    digests: list[Any]


# ---------------------------------------------------------------------------- errors


class _DiskFull(StoreUnavailableError):
    """The server's disk is full (507; the client raises StoreUnavailableError)."""

    http_status = 507


def _error(status_code: int, code: str, message: str, **details: Any) -> JSONResponse:
    body = {"error_code": code, "message": message, "details": details}
    return JSONResponse(body, status_code=status_code)


def _disk_full(exc: BaseException | None) -> bool:
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


@contextlib.contextmanager
def _blob_errors(digest: str, action: str) -> Iterator[None]:
    """Re-raise the blob store's errors without the server's storage location in them."""
    try:
        yield
    except ArtifactNotFoundError:
        raise ArtifactNotFoundError(
            f"Blob {digest} is not stored on this server.", digest=digest
        ) from None
    except IntegrityError as exc:
        logger.error("blob %s failed verification while %s: %s", digest, action, exc.message)
        actual = exc.details.get("actual")
        raise IntegrityError(
            f"Blob {digest} is corrupted on the server: its stored bytes hash to {actual}.",
            digest=digest,
            actual=actual,
        ) from None
    except (StoreUnavailableError, OSError) as exc:
        logger.error("blob store failed while %s %s: %s", action, digest, exc)
        if _disk_full(exc):
            raise _DiskFull(
                f"The server's disk is full ({action} {digest}); nothing was stored.",
                digest=digest,
            ) from None
        raise StoreUnavailableError(
            f"The server's blob store is unavailable ({action}); the server log has the details.",
            digest=digest,
        ) from None


# ---------------------------------------------------------------------------- uploads


def _too_large(limit: int) -> JSONResponse:
    return _error(
        413,
        "PAYLOAD_TOO_LARGE",
        f"The upload is larger than {limit:,} bytes, the most this server takes; "
        "nothing was stored.",
        limit=limit,
    )


def _start_upload(upload: PartialUpload, offset: int) -> None:
    with _blob_errors(upload.digest, "receiving"):
        upload.start(offset)


def _store_upload(blobs: BlobStore, upload: PartialUpload, actual: str) -> BlobRef:
    with _blob_errors(upload.digest, "storing"):
        return blobs.put_verified_file(upload.path, BlobRef(actual, upload.size))


async def _locked(upload: PartialUpload) -> bool:
    """Wait (a little) for the digest's lock: a client continuing an upload may arrive
    before the server has noticed that its previous connection is gone."""
    deadline = time.monotonic() + _LOCK_WAIT
    while not await run_in_threadpool(upload.try_lock):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def _receive(request: Request, upload: PartialUpload, limit: int) -> JSONResponse | None:
    """Write the body to the partial file, a megabyte at a time from a worker thread; a
    413 response once the blob passes ``limit`` bytes."""
    pending = bytearray()
    async for chunk in request.stream():
        if upload.size + len(pending) + len(chunk) > limit:
            return _too_large(limit)
        pending += chunk
        if len(pending) >= _SPOOL_STEP:
            data, pending = bytes(pending), bytearray()
            await run_in_threadpool(upload.write, data)
    await run_in_threadpool(upload.write, bytes(pending))
    return None


@router.get(
    "/blobs/{digest}/upload",
    dependencies=_WRITE,
    summary="How much of an interrupted upload the server holds",
)
async def upload_state(request: Request, digest: str) -> Any:
    """Settled figures: an upload still being written is waited for (a little) first."""
    digest = validate_digest(digest)
    upload = request.app.state.uploads.upload(digest)
    if not await _locked(upload):
        return _busy(digest)
    try:
        state = await run_in_threadpool(_upload_state, store_of(request).blobs, upload)
    finally:
        upload.release(discard=upload.received() == 0)  # no lock file left behind for nothing
    return state


def _upload_state(blobs: BlobStore, upload: PartialUpload) -> dict[str, Any]:
    with _blob_errors(upload.digest, "checking"):
        stored = blobs.exists(upload.digest)
        offset = 0 if stored else upload.received()
    return {"digest": upload.digest, "stored": stored, "offset": offset}


def _busy(digest: str) -> JSONResponse:
    return _error(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "STORE_UNAVAILABLE",
        f"Another upload of {digest} is in progress; try again shortly.",
        digest=digest,
    )


@router.put(
    "/blobs/{digest:path}",
    dependencies=_WRITE,
    summary="Upload a blob, or continue an interrupted upload (verified against its digest)",
    openapi_extra={
        "requestBody": {"required": True, "content": {_OCTETS: {"schema": {"type": "string"}}}}
    },
)
async def put_blob(
    request: Request,
    digest: str,
    offset: int = Query(
        0, ge=0, le=2**62, description="Continue at this byte (GET .../upload tells it)."
    ),
) -> Any:
    digest = validate_digest(digest)
    limit: int = request.app.state.config.max_upload_bytes
    blobs = store_of(request).blobs
    upload = request.app.state.uploads.upload(digest)
    if not await _locked(upload):
        return _busy(digest)
    keep = False
    try:
        await run_in_threadpool(_start_upload, upload, offset)
        with _blob_errors(digest, "receiving"):
            refusal = await _receive(request, upload, limit)
            if refusal is not None:
                return refusal
            actual = await run_in_threadpool(upload.finish)
        if actual != digest:
            return _error(
                status.HTTP_400_BAD_REQUEST,
                "DATA_CORRUPTED",
                f"The uploaded bytes hash to {actual}, not to {digest}; nothing was stored.",
                digest=digest,
                actual=actual,
                size=upload.size,
            )
        ref = await run_in_threadpool(_store_upload, blobs, upload, actual)
    except ConflictError:
        keep = True  # the partial file belongs to the upload that can still continue
        raise
    except ClientDisconnect:
        keep = True
        logger.info(
            "upload of blob %s interrupted at byte %d; kept for the client to continue",
            digest,
            upload.size,
        )
        return _error(
            status.HTTP_400_BAD_REQUEST,
            "INVALID_ARGUMENT",
            "The upload was interrupted; the bytes received are kept for a continuation.",
            offset=upload.size,
        )
    finally:
        await run_in_threadpool(partial(upload.release, discard=not keep))
    return {"digest": ref.digest, "size": ref.size}


# ---------------------------------------------------------------------------- downloads


def _fetch(blobs: BlobStore, digest: str) -> tuple[BinaryIO, int]:
    """The blob, verified and open for reading, and its size."""
    with _blob_errors(digest, "reading"):
        reader = blobs.open_verified(digest)
    return reader, os.fstat(reader.fileno()).st_size


async def _send(reader: BinaryIO) -> AsyncIterator[bytes]:
    try:
        while chunk := await run_in_threadpool(reader.read, _SEND_STEP):
            yield chunk
    finally:
        reader.close()


def _stream_blob(reader: BinaryIO, size: int, filename: str | None) -> Response:
    headers = {"Content-Length": str(size)}
    if filename:
        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(filename)}"
    return StreamingResponse(_send(reader), media_type=_OCTETS, headers=headers)


@router.post("/blobs/which-exist", dependencies=_READ, summary="Which of these blobs are stored")
def which_blobs_exist(request: Request, body: DigestList) -> Any:
    digests = {validate_digest(d) for d in body.digests}
    with _blob_errors(f"({len(digests)} digests)", "listing"):
        present = store_of(request).blobs.which_exist(digests)
    return {"present": sorted(present)}


@router.get("/blobs/{digest}/exists", dependencies=_READ, summary="Whether a blob is stored")
def blob_exists(request: Request, digest: str) -> Any:
    digest = validate_digest(digest)
    with _blob_errors(digest, "checking"):
        return {"digest": digest, "exists": store_of(request).blobs.exists(digest)}


@router.get("/blobs/{digest}/size", dependencies=_READ, summary="The size of a blob")
def blob_size(request: Request, digest: str) -> Any:
    digest = validate_digest(digest)
    with _blob_errors(digest, "checking"):
        return {"digest": digest, "size": store_of(request).blobs.size(digest)}


@router.get(
    "/blobs/{digest:path}",
    dependencies=_READ,
    summary="Download a blob (streamed, verified)",
    response_class=StreamingResponse,
    responses={200: {"content": {_OCTETS: {}}}},
)
async def get_blob(request: Request, digest: str) -> Response:
    digest = validate_digest(digest)
    blobs = store_of(request).blobs
    reader, size = await run_in_threadpool(_fetch, blobs, digest)
    return _stream_blob(reader, size, None)


# ---------------------------------------------------------------------------- artifacts


def _artifact_file(request: Request, run_id: str, path: str) -> ArtifactInfo:
    """The artifact file at ``path`` (errors as the SQL store's ``get_artifact``)."""
    run_id = validate_run_id(run_id)
    path = validate_artifact_path(path)
    for info in store_of(request).list_artifacts(run_id, path):
        if info.path == path and not info.is_dir:
            return info
    raise ArtifactNotFoundError(
        f"Run {run_id} has no artifact file at {path!r}.", run_id=run_id, path=path
    )


@router.post(
    "/runs/{run_id}/artifacts",
    status_code=status.HTTP_201_CREATED,
    dependencies=_WRITE,
    summary="Record an artifact file (its blob uploaded first)",
)
def record_artifact(request: Request, run_id: str, body: ArtifactEntry) -> Any:
    store = store_of(request)
    store.record_artifacts(run_id, [(body.path, body.digest, body.size)])
    path = validate_artifact_path(body.path)  # as the store stored it (a trailing / stripped)
    return to_wire(ArtifactInfo(path=path, is_dir=False, size=body.size, digest=body.digest))


@router.post(
    "/runs/{run_id}/artifacts/batch",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=_WRITE,
    summary="Record many artifact files in one transaction",
)
def record_artifacts(request: Request, run_id: str, body: ArtifactBatch) -> Response:
    files = [(f.path, f.digest, f.size) for f in body.files]
    store_of(request).record_artifacts(run_id, files)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/runs/{run_id}/artifacts", dependencies=_READ, summary="List a run's artifacts")
def list_artifacts(request: Request, run_id: str, path: str = "", recursive: bool = False) -> Any:
    return to_wire(store_of(request).list_artifacts(run_id, path, recursive=recursive))


@router.get("/runs/{run_id}/artifacts/file", dependencies=_READ, summary="One artifact file's blob")
def get_artifact_file(request: Request, run_id: str, path: str = Query(...)) -> Any:
    return to_wire(_artifact_file(request, run_id, path))


@router.get(
    "/runs/{run_id}/artifacts/content",
    dependencies=_READ,
    summary="Download one artifact file (streamed, verified)",
    response_class=StreamingResponse,
    responses={200: {"content": {_OCTETS: {}}}},
)
async def get_artifact_content(request: Request, run_id: str, path: str = Query(...)) -> Response:
    info = await run_in_threadpool(_artifact_file, request, run_id, path)
    if info.digest is None:  # a recorded file always has a digest
        raise LoopmlError(f"Artifact {path!r} of run {run_id} has no blob.")
    blobs = store_of(request).blobs
    reader, size = await run_in_threadpool(_fetch, blobs, info.digest)
    return _stream_blob(reader, size, info.path.rsplit("/", 1)[-1])
