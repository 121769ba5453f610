"""How the prediction log holds rows in memory and turns them into a segment's table.

Requests arrive as :class:`Chunk` objects (requests in a row, their rows in one set of
arrays). Requests of one layout are copied into a :class:`Stage`, column arrays that grow by
doubling, so that a request's own arrays are freed once logged and a segment's columns need
no concatenation; a stage is sealed into a chunk when the layout changes or a segment is due.
:func:`build_table` makes one segment's Arrow table from its chunks (the schema is in
``docs/prediction-log.md``). :mod:`loopml.serving.predlog` does the locking, the rolling and
the writing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import pyarrow as pa

from loopml.entities import PredictionLogKind
from loopml.storage.prediction_segments import (
    BASE_SCHEMA,
    FORMAT_VERSION,
    INPUT_PREFIX,
    LABEL_PREFIX,
    OUTPUT_PREFIX,
)

__all__ = ["ROW_SHAPE_KEY", "STAGE_ROW_BYTES", "Arrays", "Chunk", "Stage", "build_table"]

ROW_SHAPE_KEY = b"loopml.row_shape"
#: arrays of rows per name: a request's inputs and outputs, or labels (and nothing) of feedback
Arrays = dict[str, np.ndarray]
#: a staged row may hold this many bytes at most; wider rows are kept by reference
STAGE_ROW_BYTES = 65_536
_STAGE_START_ROWS = 64


@dataclass(slots=True, eq=False)
class Chunk:
    """Requests in a row, their rows in one set of arrays (``first``: inputs or labels,
    ``second``: outputs)."""

    ids: list[str]
    times: list[int]
    counts: list[int]  # rows of each request
    rows: int
    first: Arrays
    second: Arrays


class Stage:
    """Requests with one layout (the same names, dtypes and row shapes), copied into column
    arrays that grow by doubling: a request's arrays are freed once logged, and a segment's
    columns are ready without a concatenation."""

    __slots__ = ("capacity", "counts", "first", "ids", "rows", "second", "times")

    def __init__(self, first: Arrays, second: Arrays, capacity: int) -> None:
        self.ids: list[str] = []
        self.times: list[int] = []
        self.counts: list[int] = []
        self.rows = 0
        self.capacity = capacity
        self.first = {name: _column_buffer(array, capacity) for name, array in first.items()}
        self.second = {name: _column_buffer(array, capacity) for name, array in second.items()}

    @staticmethod
    def start(chunk: Chunk) -> Stage | None:
        """A stage holding ``chunk``'s requests, or ``None`` if their arrays are not worth
        copying."""
        width = 0
        for array in (*chunk.first.values(), *chunk.second.values()):
            if array.dtype.kind == "U":
                width += 8
            elif array.dtype.hasobject and array.dtype.kind != "O":
                return None  # structured dtypes holding objects
            else:
                width += array.itemsize * math.prod(array.shape[1:])
        if width > STAGE_ROW_BYTES:
            return None
        stage = Stage(chunk.first, chunk.second, max(_STAGE_START_ROWS, chunk.rows))
        return stage if stage.add(chunk) else None

    def add(self, chunk: Chunk) -> bool:
        """Copy ``chunk``'s requests in; ``False`` (and nothing added) if their layout
        differs."""
        if not (_same_layout(self.first, chunk.first) and _same_layout(self.second, chunk.second)):
            return False
        start = self.rows
        end = start + chunk.rows
        if end > self.capacity:
            self._grow(end)
        for buffers, arrays in ((self.first, chunk.first), (self.second, chunk.second)):
            for name, array in arrays.items():
                buffers[name][start:end] = array
        self.ids += chunk.ids
        self.times += chunk.times
        self.counts += chunk.counts
        self.rows = end
        return True

    def _grow(self, rows: int) -> None:
        capacity = self.capacity = max(rows, 2 * self.capacity)
        for buffers in (self.first, self.second):
            for name, old in buffers.items():
                new = np.empty((capacity, *old.shape[1:]), dtype=old.dtype)
                new[: self.rows] = old[: self.rows]
                buffers[name] = new

    def seal(self) -> Chunk:
        """The staged requests as a chunk (the column arrays are never written to again:
        the next requests go to a new stage). Views of them, or copies when less than half
        of them is used (a stage cut short by a request of another layout)."""
        rows = self.rows
        tight = 2 * rows < self.capacity

        def cut(array: np.ndarray) -> np.ndarray:
            return array[:rows].copy() if tight else array[:rows]

        return Chunk(
            self.ids,
            self.times,
            self.counts,
            rows,
            {name: cut(array) for name, array in self.first.items()},
            {name: cut(array) for name, array in self.second.items()},
        )


def _column_buffer(array: np.ndarray, capacity: int) -> np.ndarray:
    dtype = np.dtype(object) if array.dtype.kind == "U" else array.dtype
    return np.empty((capacity, *array.shape[1:]), dtype=dtype)


def _same_layout(buffers: Arrays, arrays: Arrays) -> bool:
    """Whether ``arrays`` fit ``buffers``: the same names, dtypes (text goes to object
    columns) and row shapes."""
    if len(arrays) != len(buffers):
        return False
    for name, array in arrays.items():
        buffer = buffers.get(name)
        if buffer is None or array.shape[1:] != buffer.shape[1:]:
            return False
        if array.dtype != buffer.dtype and not (
            array.dtype.kind == "U" and buffer.dtype.kind == "O"
        ):
            return False
    return True


def build_table(
    kind: PredictionLogKind | str,
    version: int | None,
    chunks: Sequence[Chunk],
    *,
    model: str = "",
) -> pa.Table:
    """The Arrow table of one segment (see ``docs/prediction-log.md`` for its schema)."""
    kind = PredictionLogKind(kind)
    requests = sum(len(chunk.ids) for chunk in chunks)
    counts = np.fromiter(chain.from_iterable(c.counts for c in chunks), np.int64, requests)
    total = int(counts.sum())
    ids = pa.array(list(chain.from_iterable(chunk.ids for chunk in chunks)), pa.string())
    times = np.fromiter(chain.from_iterable(c.times for c in chunks), np.int64, requests)
    if total == requests:  # one row per request (the usual case)
        row = np.zeros(total, dtype=np.int32)
    else:
        which = np.repeat(np.arange(requests), counts)
        ids = ids.take(pa.array(which))
        times = times[which]
        starts = np.cumsum(counts) - counts
        row = (np.arange(total) - starts[which]).astype(np.int32)
    if version is None:
        versions = pa.nulls(total, pa.int32())
    else:
        versions = pa.array(np.full(total, version, dtype=np.int32))
    fields = list(BASE_SCHEMA)
    columns: list[pa.Array] = [ids, pa.array(times), versions, pa.array(row)]
    prefixes = (
        (LABEL_PREFIX, "") if kind is PredictionLogKind.FEEDBACK else (INPUT_PREFIX, OUTPUT_PREFIX)
    )
    sizes = np.fromiter((chunk.rows for chunk in chunks), np.int64, len(chunks))
    groups = ((prefixes[0], [c.first for c in chunks]), (prefixes[1], [c.second for c in chunks]))
    for prefix, arrays in groups:
        names: dict[str, None] = {}
        for found in arrays:
            names.update(dict.fromkeys(found))
        for name in names:
            parts = [found.get(name) for found in arrays]
            column, metadata = _column(parts, sizes)
            fields.append(pa.field(prefix + name, column.type, metadata=metadata))
            columns.append(column)
    metadata = {
        b"loopml.prediction_log": FORMAT_VERSION.encode(),
        b"loopml.kind": kind.value.encode(),
        b"loopml.model": model.encode(),
        b"loopml.model_version": b"" if version is None else str(version).encode(),
    }
    return pa.Table.from_arrays(columns, schema=pa.schema(fields, metadata=metadata))


def _column(
    parts: list[np.ndarray | None], counts: np.ndarray
) -> tuple[pa.Array, dict[bytes, bytes] | None]:
    """One feature's Arrow column from each request's array (``None``: the request did not
    have it, so its rows are null)."""
    present = [p for p in parts if p is not None]
    if max({p.ndim for p in present}) > 1:
        return _list_column(parts, counts, present)
    return _flat_column(parts, counts, present), None


def _list_column(
    parts: list[np.ndarray | None], counts: np.ndarray, present: list[np.ndarray]
) -> tuple[pa.Array, dict[bytes, bytes] | None]:
    """Arrays of 2 or more dimensions: each row's values (flattened in C order) as a list."""
    shapes = {p.shape[1:] for p in present}
    if len(present) == len(parts) and len(shapes) == 1:  # the usual case: one concatenation
        shape = next(iter(shapes))
        width = math.prod(shape)
        total = int(counts.sum())
        if total * width < 2**31 - 1:
            joined = np.concatenate(present).reshape(-1)
            items = _flat_column([joined], None, [joined])
            offsets = np.arange(0, (total + 1) * width, width, dtype=np.int32)
            fast = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), items)
            return fast, {ROW_SHAPE_KEY: json.dumps(list(shape)).encode()}
    lengths: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    values: list[np.ndarray] = []
    for part, count in zip(parts, counts.tolist(), strict=True):
        if part is None:
            lengths.append(np.zeros(count, dtype=np.int64))
            masks.append(np.ones(count, dtype=bool))
            continue
        flat = part.reshape(count, -1)
        lengths.append(np.full(count, flat.shape[1], dtype=np.int64))
        masks.append(np.zeros(count, dtype=bool))
        values.append(flat.reshape(-1))
    sizes = np.concatenate(lengths)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    items = _flat_column(values, None, values) if values else pa.array([], pa.null())
    mask = np.concatenate(masks)
    if offsets[-1] < 2**31 - 1:
        column: pa.Array = pa.ListArray.from_arrays(
            pa.array(offsets, pa.int32()), items, mask=pa.array(mask) if mask.any() else None
        )
    else:
        column = pa.LargeListArray.from_arrays(
            pa.array(offsets, pa.int64()), items, mask=pa.array(mask) if mask.any() else None
        )
    if len(shapes) == 1:
        return column, {ROW_SHAPE_KEY: json.dumps(list(shapes.pop())).encode()}
    return column, None


_NUMERIC = frozenset("biuf")


def _category(dtype: np.dtype[Any]) -> str:
    kind = dtype.kind
    if kind in _NUMERIC:
        return "number"
    if kind in "UO":
        return "object"
    if kind == "S":
        return "bytes"
    if kind == "M":
        return "datetime"
    return "text"  # complex, timedelta, structured: stored as their text


def _flat_column(
    parts: Sequence[np.ndarray | None],
    counts: np.ndarray | None,
    present: Sequence[np.ndarray],
) -> pa.Array:
    """1-D arrays (``None``: that many null rows; ``present``: the others) as one Arrow
    array."""
    dtypes = {p.dtype for p in present}
    categories = {_category(d) for d in dtypes}
    category = categories.pop() if len(categories) == 1 else "text"
    if category in ("number", "datetime"):
        try:
            dtype = np.result_type(*dtypes)
        except TypeError:
            category = "text"
        else:
            if dtype == np.float16:
                dtype = np.dtype(np.float32)  # not every Parquet reader has float16
            return _masked(parts, counts, present, dtype)
    values = _objects(parts, counts, text=category == "text")
    try:
        return pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError, TypeError, OverflowError):
        return pa.array(_objects(parts, counts, text=True), pa.string(), from_pandas=True)


def _masked(
    parts: Sequence[np.ndarray | None],
    counts: np.ndarray | None,
    present: Sequence[np.ndarray],
    dtype: np.dtype[Any],
) -> pa.Array:
    if len(present) == len(parts):
        return pa.array(np.concatenate(present).astype(dtype, copy=False))
    assert counts is not None
    sizes = [int(n) for n in counts.tolist()]
    filled = [
        np.zeros(n, dtype=dtype) if p is None else p.astype(dtype, copy=False)
        for p, n in zip(parts, sizes, strict=True)
    ]
    mask = np.concatenate(
        [np.full(n, p is None, dtype=bool) for p, n in zip(parts, sizes, strict=True)]
    )
    return pa.array(np.concatenate(filled), mask=mask)


def _objects(
    parts: Sequence[np.ndarray | None], counts: np.ndarray | None, *, text: bool
) -> np.ndarray:
    """The values as one object array (``None`` for missing rows); as text with ``text``."""
    pieces = []
    for index, part in enumerate(parts):
        if part is None:
            assert counts is not None
            pieces.append(np.full(int(counts[index]), None, dtype=object))
        elif text:
            pieces.append(np.array([None if v is None else str(v) for v in part], dtype=object))
        else:
            pieces.append(part.astype(object, copy=False))
    return np.concatenate(pieces) if pieces else np.array([], dtype=object)
