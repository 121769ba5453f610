"""The prediction log's segments: their format (the columns every segment starts with, the
prefixes of input, output and label columns) and the readers that turn a model's segments over
a time range into one pyarrow Table (predictions, feedback, the two joined on the request id).

The log is written by :class:`loopml.serving.predlog.PredictionLog` (format:
``docs/prediction-log.md``) and read by monitoring (:mod:`loopml.monitoring.logs` re-exports
the readers). Both sides import this module, which sits below them with the stores, so the
model server does not import monitoring to write its log.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from loopml.entities import PredictionLogKind, PredictionSegment
from loopml.storage.protocols import PredictionLogStore

__all__ = [
    "BASE_SCHEMA",
    "DEFAULT_LABEL",
    "FEEDBACK_TIMESTAMP",
    "FORMAT_VERSION",
    "INPUT_PREFIX",
    "LABEL_PREFIX",
    "OUTPUT_PREFIX",
    "concat_tables",
    "join_feedback",
    "read_feedback",
    "read_predictions",
    "read_segments",
]

#: written to every segment's Parquet metadata (``loopml.prediction_log``)
FORMAT_VERSION = "1"
INPUT_PREFIX = "input."
OUTPUT_PREFIX = "output."
LABEL_PREFIX = "label."
#: the name a scalar label (or any label given without a name) is stored under
DEFAULT_LABEL = "label"
#: the column :func:`join_feedback` adds: when the label arrived (ms), null without one
FEEDBACK_TIMESTAMP = "feedback_timestamp"
#: the columns every segment starts with
BASE_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string()),
        pa.field("timestamp", pa.int64()),
        pa.field("model_version", pa.int32()),
        pa.field("row", pa.int32()),
    ]
)


def read_predictions(
    store: PredictionLogStore,
    model: str,
    *,
    start: int | None = None,
    end: int | None = None,
    version: int | None = None,
) -> pa.Table:
    """The logged predictions of ``model`` with timestamps in ``[start, end)`` (ms; ``None``:
    open), of one version or (``None``) every version, ordered by timestamp. Each segment's
    blob is verified against its digest as it is read. Columns that some segments lack are
    null there; a column whose type differs between segments is promoted (ints to floats)
    or, failing that, read as text."""
    return _read(store, model, PredictionLogKind.PREDICTIONS, start, end, version)


def read_feedback(
    store: PredictionLogStore,
    model: str,
    *,
    start: int | None = None,
    end: int | None = None,
    version: int | None = None,
) -> pa.Table:
    """The logged feedback of ``model`` (columns ``label.*``), like :func:`read_predictions`.
    ``start`` and ``end`` select by when the feedback was logged."""
    return _read(store, model, PredictionLogKind.FEEDBACK, start, end, version)


def _read(
    store: PredictionLogStore,
    model: str,
    kind: PredictionLogKind,
    start: int | None,
    end: int | None,
    version: int | None,
) -> pa.Table:
    segments = store.list_prediction_segments(
        model, kind=kind, start=start, end=end, version=version
    )
    return read_segments(store, segments, start=start, end=end)


def read_segments(
    store: PredictionLogStore,
    segments: Iterable[PredictionSegment],
    *,
    start: int | None = None,
    end: int | None = None,
) -> pa.Table:
    """The rows of ``segments`` (listed by ``list_prediction_segments``, perhaps filtered by
    when they arrived) with timestamps in ``[start, end)``, ordered by timestamp; each blob
    is verified against its digest as it is read."""
    tables = []
    for segment in segments:
        data = store.blobs.read_bytes(segment.digest)
        table = pq.read_table(pa.BufferReader(data))
        if start is not None and segment.start_time < start:
            table = table.filter(pc.greater_equal(table["timestamp"], start))
        if end is not None and segment.end_time >= end:
            table = table.filter(pc.less(table["timestamp"], end))
        tables.append(table.replace_schema_metadata(None))
    if not tables:
        return BASE_SCHEMA.empty_table()
    table = concat_tables(tables)
    if len(tables) > 1:
        table = table.take(pc.sort_indices(table, [("timestamp", "ascending")]))
    return table


def concat_tables(tables: list[pa.Table]) -> pa.Table:
    """Tables of segments as one: a column some lack is null there, clashing types are
    promoted (ints to floats) or read as text."""
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return _concat_clashing(tables)


def _concat_clashing(tables: list[pa.Table]) -> pa.Table:
    """``concat_tables`` when some column's types cannot be promoted: those read as text."""
    types: dict[str, set[pa.DataType]] = {}
    for table in tables:
        for item in table.schema:
            types.setdefault(item.name, set()).add(item.type)
    clashing = set()
    for name, found in types.items():
        try:
            pa.unify_schemas(
                [pa.schema([pa.field(name, t)]) for t in found], promote_options="permissive"
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            clashing.add(name)
    return pa.concat_tables(
        [_as_text(table, clashing) for table in tables], promote_options="permissive"
    )


def _as_text(table: pa.Table, names: Iterable[str]) -> pa.Table:
    for name in names:
        if name not in table.column_names:
            continue
        index = table.column_names.index(name)
        column = table.column(index)
        try:
            text = pc.cast(column, pa.string())
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            text = pa.array(
                [None if v is None else str(v) for v in column.to_pylist()], pa.string()
            )
        table = table.set_column(index, pa.field(name, pa.string()), text)
    return table


def join_feedback(predictions: pa.Table, feedback: pa.Table) -> pa.Table:
    """``predictions`` with the ``label.*`` columns of ``feedback`` joined on ``request_id``
    and ``row``, plus :data:`FEEDBACK_TIMESTAMP` (when the label arrived). Every prediction
    row is kept, in order; a row without feedback has nulls. Where one row got feedback more
    than once, the latest (by timestamp, then log order) wins."""
    labels = [name for name in feedback.column_names if name.startswith(LABEL_PREFIX)]
    if feedback.num_rows:
        order = pc.sort_indices(feedback, [("timestamp", "ascending")])
        feedback = feedback.take(order)
    keys = pa.table(
        {
            "request_id": feedback["request_id"],
            "row": feedback["row"].cast(pa.int64()),
            "__f": pa.array(np.arange(feedback.num_rows, dtype=np.int64)),
        }
    )
    latest = keys.group_by(["request_id", "row"], use_threads=False).aggregate([("__f", "max")])
    left = pa.table(
        {
            "request_id": predictions["request_id"],
            "row": predictions["row"].cast(pa.int64()),
            "__p": pa.array(np.arange(predictions.num_rows, dtype=np.int64)),
        }
    )
    joined = left.join(latest, keys=["request_id", "row"], join_type="left outer")
    joined = joined.take(pc.sort_indices(joined, [("__p", "ascending")]))
    picked = feedback.select(["timestamp", *labels]).take(joined["__f_max"])
    result = predictions
    result = result.append_column(
        pa.field(FEEDBACK_TIMESTAMP, pa.int64()), picked["timestamp"].cast(pa.int64())
    )
    for name in labels:
        result = result.append_column(feedback.schema.field(name), picked[name])
    return result
