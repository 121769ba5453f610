"""The remote store: the prediction log's segments (see
:mod:`loopml.server.routes.predictions`).

Every argument is checked here first with the same function as the SQL store, so a bad one
raises the same :class:`~loopml.errors.InvalidArgumentError` (same ``field``) without a round
trip and a model name always makes a valid path segment. Whether the blob exists is checked
by the server's store. Recording is idempotent (the store finds a blob recorded before), so
the call is retried like a read.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from loopml.entities import PredictionLogKind, PredictionSegment
from loopml.storage.prediction_log import check_segment, check_segment_query
from loopml.storage.rest.base import RestBase
from loopml.storage.rest.wire import from_wire

__all__ = ["RestPredictionsMixin"]


def _segments(name: str) -> str:
    return "/models/" + quote(name, safe="") + "/prediction-segments"


class RestPredictionsMixin(RestBase):
    """Implements :class:`~loopml.storage.protocols.PredictionLogStore` over HTTP (its
    ``blobs`` come from :class:`~loopml.storage.rest.artifacts.RestArtifactsMixin`)."""

    def record_prediction_segment(
        self,
        model_name: str,
        *,
        kind: PredictionLogKind | str,
        start_time: int,
        end_time: int,
        row_count: int,
        digest: str,
        size: int,
        model_version: int | None = None,
    ) -> PredictionSegment:
        args = check_segment(
            model_name,
            kind=kind,
            start_time=start_time,
            end_time=end_time,
            row_count=row_count,
            digest=digest,
            size=size,
            model_version=model_version,
        )
        body = {
            "kind": args.kind.value,
            "model_version": args.model_version,
            "start_time": args.start_time,
            "end_time": args.end_time,
            "row_count": args.row_count,
            "digest": args.digest,
            "size": args.size,
        }
        answer = self._call("POST", _segments(args.model_name), json=body, idempotent=True)
        return from_wire(PredictionSegment, answer)

    def list_prediction_segments(
        self,
        model_name: str,
        *,
        kind: PredictionLogKind | str = PredictionLogKind.PREDICTIONS,
        start: int | None = None,
        end: int | None = None,
        version: int | None = None,
    ) -> list[PredictionSegment]:
        name, checked, low, high, number = check_segment_query(
            model_name, kind=kind, start=start, end=end, version=version
        )
        params: dict[str, Any] = {"kind": checked.value}
        for key, value in (("start", low), ("end", high), ("version", number)):
            if value is not None:
                params[key] = value
        answer = self._call("GET", _segments(name), params=params)
        return from_wire(list[PredictionSegment], answer)
