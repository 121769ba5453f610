"""Routes: the prediction log's segments (see :mod:`loopml.serving.predlog`).

Each route is one call into :class:`~loopml.storage.protocols.PredictionLogStore`; the store
validates the model name, kind, times, counts and digest (and that the blob is stored), so
the body takes its values as they come (``Any``). A segment's Parquet bytes are a blob,
uploaded through the blob routes first.

Paths: ``/models/{name}/prediction-segments``. The model name follows the registry's rules
but need not be registered (a model served from a file has a log too).

Access: recording needs ``WRITER``, listing ``READER``. A token limited to some models may
only record and list theirs: the path names the model like the registry's routes, so
:mod:`loopml.server.auth` checks it before the handler runs.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field

from loopml.server.deps import Role, allow, store_of
from loopml.storage.rest.wire import to_wire

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["prediction log"])

_READ = [allow(Role.READER)]
_WRITE = [allow(Role.WRITER)]


class RecordSegment(BaseModel):
    kind: Any = Field(description="'predictions' or 'feedback'.")
    model_version: Any = Field(None, description="The model version, or null.")
    start_time: Any = Field(description="The first row's timestamp (ms since the epoch).")
    end_time: Any = Field(description="The last row's timestamp (ms since the epoch).")
    row_count: Any
    digest: Any = Field(description="The digest of the segment's Parquet blob.")
    size: Any = Field(description="The blob's size in bytes.")


@router.post(
    "/models/{name}/prediction-segments",
    status_code=status.HTTP_201_CREATED,
    dependencies=_WRITE,
    summary="Record a prediction-log segment (idempotent per blob)",
)
def record_prediction_segment(request: Request, name: str, body: RecordSegment) -> Any:
    segment = store_of(request).record_prediction_segment(
        name,
        kind=body.kind,
        start_time=body.start_time,
        end_time=body.end_time,
        row_count=body.row_count,
        digest=body.digest,
        size=body.size,
        model_version=body.model_version,
    )
    return to_wire(segment)


@router.get(
    "/models/{name}/prediction-segments",
    dependencies=_READ,
    summary="A model's prediction-log segments overlapping [start, end), by start time",
)
def list_prediction_segments(
    request: Request,
    name: str,
    kind: str = "predictions",
    start: int | None = None,
    end: int | None = None,
    version: int | None = None,
) -> Any:
    segments = store_of(request).list_prediction_segments(
        name, kind=kind, start=start, end=end, version=version
    )
    return to_wire(segments)
