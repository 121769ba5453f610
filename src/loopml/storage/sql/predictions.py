"""The prediction log's segments in the SQL store (see :mod:`loopml.serving.predlog`).

A segment is a Parquet blob the serving layer wrote; the store records which model and kind
it belongs to and the time range and count of its rows, so monitoring finds a model's window
with one indexed query. Recording is idempotent per (model, kind, blob): a retried call finds
the row the first one inserted.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, select

from loopml.entities import PredictionLogKind, PredictionSegment
from loopml.errors import InvalidArgumentError
from loopml.storage.blobs import BlobStore
from loopml.storage.prediction_log import check_segment, check_segment_query
from loopml.storage.sql.base import SqlBase, now_ms
from loopml.storage.sql.schema import prediction_segments

__all__ = ["PredictionsMixin"]


def _to_segment(row: Row) -> PredictionSegment:
    return PredictionSegment(
        segment_id=str(row.segment_id),
        model_name=row.model_name,
        model_version=row.model_version,
        kind=PredictionLogKind(row.kind),
        start_time=row.start_time,
        end_time=row.end_time,
        row_count=row.row_count,
        digest=row.digest,
        size=row.size,
        created_time=row.created_time,
    )


class PredictionsMixin(SqlBase):
    _blobs: BlobStore

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
        stored = self._blobs.size(args.digest)  # ArtifactNotFoundError when it is missing
        if stored != args.size:
            raise InvalidArgumentError(
                f"The size ({args.size}) is not that of the blob {args.digest} ({stored} bytes).",
                field="size",
            )
        values: dict[str, Any] = {
            "model_name": args.model_name,
            "model_version": args.model_version,
            "kind": args.kind.value,
            "start_time": args.start_time,
            "end_time": args.end_time,
            "row_count": args.row_count,
            "digest": args.digest,
            "size": args.size,
        }
        table = prediction_segments
        key = (
            (table.c.model_name == args.model_name)
            & (table.c.kind == args.kind.value)
            & (table.c.digest == args.digest)
        )

        def write(conn: Connection) -> PredictionSegment:
            stmt = self._insert(table).on_conflict_do_nothing(
                index_elements=["model_name", "kind", "digest"]
            )
            conn.execute(stmt.values(created_time=now_ms(), **values))
            row = conn.execute(select(table).where(key)).first()
            assert row is not None  # inserted just above, or by an earlier call
            return _to_segment(row)

        return self._db.write(write)

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
        if low is not None and high is not None and high <= low:
            return []  # an empty range
        table = prediction_segments
        query = select(table).where(table.c.model_name == name, table.c.kind == checked.value)
        if low is not None:
            query = query.where(table.c.end_time >= low)
        if high is not None:
            query = query.where(table.c.start_time < high)
        if number is not None:
            query = query.where(table.c.model_version == number)
        query = query.order_by(table.c.start_time, table.c.segment_id)
        with self._db.read() as conn:
            return [_to_segment(row) for row in conn.execute(query)]
