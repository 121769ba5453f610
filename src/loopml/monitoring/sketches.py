"""Window sketches: mergeable summaries of production data on a reference profile's buckets.

A :class:`WindowSketch` is made from a reference :class:`~loopml.data.profile.Profile` (a
dataset version's profile, or :func:`loopml.data.profile.describe` of a training table). It
folds batches of rows into fixed-size counters and never keeps the rows:

* numeric and datetime columns: counts on the reference's bucket edges (the same buckets as
  :func:`loopml.data.profile.sketch`), the count of values above the reference's maximum,
  and the sum, sum of squares, min and max;
* categorical and boolean columns: counts of the reference's categories, of every other value
  together (``other``), and the names of the most frequent other values (at most
  :data:`MAX_UNSEEN` per column, kept by count then name);
* every column: rows present, non-missing values, missing values (nulls and NaN) and values of
  the wrong type (text in a numeric column, numbers in a text column), which are not counted
  as values.

Every counter is additive, so sketches of windows merge by adding them
(:meth:`WindowSketch.merge`, :meth:`WindowSketch.merge_all`): drift over an hour or a day is
computed from the minute windows without reading raw rows again. The state lives in three flat
arrays (integers, sums, extremes), so a merge costs a few numpy operations whatever the number
of columns, and :meth:`WindowSketch.to_dict` is a few kilobytes.

Thread safety: :meth:`WindowSketch.update` computes a batch's counters without the lock and
adds them under it, so a model server may update one sketch from many request threads while
another thread reads it (:meth:`WindowSketch.copy`, :meth:`WindowSketch.to_dict`).

Batches: a :class:`pyarrow.Table` or ``RecordBatch``, a pandas DataFrame, or a mapping of column
name to array (numpy array, list, or pyarrow array). A reference column a batch lacks counts as
missing in its rows; columns the reference lacks are ignored. Conventions follow
:mod:`loopml.data.profile`: NaN is missing, datetimes are seconds since the epoch, booleans are
the categories ``"true"`` and ``"false"``.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from loopml.data import _sketch
from loopml.data.profile import (
    CategoricalProfile,
    ColumnProfile,
    NumericProfile,
    OtherProfile,
    Profile,
)
from loopml.errors import InvalidArgumentError

__all__ = [
    "MAX_UNSEEN",
    "CategoricalWindow",
    "ColumnWindow",
    "NumericWindow",
    "OtherWindow",
    "WindowSketch",
]

MAX_UNSEEN = 20
"""Names of values outside the reference's categories kept per categorical column."""
STATE_VERSION = 1
TOP_VALUES = 100
"""Values a categorical column of :meth:`WindowSketch.to_profile` keeps (as profiles do)."""

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_UNITS_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_SECONDS_PER_DAY = 86_400
# integer slots every column has, before its own counts
_PRESENT, _COUNT, _MISSING, _MISMATCHED = 0, 1, 2, 3
_BASE = 4
_COMPARE_EDGES = 64
_SEARCH_BELOW = 4096  # fewer values: one binary search each beats a pass per edge


# -- per-column views ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _WindowBase:
    present: int
    """Rows of batches that had this column."""
    count: int
    """Non-missing values of the expected type."""
    missing: int
    """Nulls and NaNs, plus every row of a batch without the column."""
    mismatched: int
    """Values of the wrong type (not counted in ``count``)."""

    @property
    def rows(self) -> int:
        return self.count + self.missing + self.mismatched

    @property
    def missing_rate(self) -> float | None:
        return self.missing / self.rows if self.rows else None


@dataclass(frozen=True)
class NumericWindow(_WindowBase):
    """A numeric column of a window. ``counts`` are on the reference's edges (bucket 0 holds the
    values below the reference's minimum); ``above`` counts values above its maximum."""

    above: int = 0
    sum: float = 0.0
    sum_sq: float = 0.0
    min: float | None = None
    max: float | None = None
    counts: tuple[int, ...] = ()

    @property
    def below(self) -> int:
        return self.counts[0] if self.counts else 0

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count else None

    @property
    def std(self) -> float | None:
        """Population standard deviation."""
        if not self.count:
            return None
        mean = self.sum / self.count
        return math.sqrt(max(self.sum_sq / self.count - mean * mean, 0.0))


@dataclass(frozen=True)
class CategoricalWindow(_WindowBase):
    """A categorical column of a window: ``counts`` of the reference's categories (in the
    reference's order, zeros included), ``other`` values outside them, and the most frequent of
    those by name in ``unseen``."""

    counts: dict[str, int] = field(default_factory=dict)
    other: int = 0
    unseen: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class OtherWindow(_WindowBase):
    """A column of lists, structs or binary values: counts only."""


ColumnWindow = NumericWindow | CategoricalWindow | OtherWindow


# -- layout: where each column's counters live ---------------------------------------------------


@dataclass(frozen=True)
class _Column:
    name: str
    kind: str  # "numeric" | "categorical" | "other"
    offset: int  # first integer slot
    size: int  # integer slots
    slot: int  # index into the float arrays (numeric columns), else -1
    edges: FloatArray
    high: float  # the reference's maximum (numeric), else nan
    categories: tuple[str, ...]
    index: dict[str, int]
    boolean: bool


def _column_layout(name: str, profile: ColumnProfile, offset: int, slot: int) -> _Column:
    empty = np.empty(0, dtype=np.float64)
    if isinstance(profile, NumericProfile):
        edges = np.asarray(profile.edges, dtype=np.float64)
        high = math.nan if profile.max is None else float(profile.max)
        size = _BASE + 1 + edges.size + 1  # above, then the buckets
        return _Column(name, "numeric", offset, size, slot, edges, high, (), {}, False)
    if isinstance(profile, CategoricalProfile):
        categories = tuple(profile.counts)
        index = {value: i for i, value in enumerate(categories)}
        boolean = bool(categories) and set(categories) <= {"true", "false"}
        size = _BASE + len(categories) + 1  # the categories, then other
        return _Column(
            name, "categorical", offset, size, -1, empty, math.nan, categories, index, boolean
        )
    return _Column(name, "other", offset, _BASE, -1, empty, math.nan, (), {}, False)


@dataclass(frozen=True)
class _Layout:
    columns: tuple[_Column, ...]
    by_name: dict[str, _Column]
    ints: int
    floats: int
    fingerprint: str


def _layout(reference: Profile, names: Iterable[str] | None) -> _Layout:
    if not isinstance(reference, Profile):
        raise InvalidArgumentError(
            "The 'reference' argument must be a loopml.data.profile.Profile. Got "
            f"{type(reference).__name__} instead.",
            field="reference",
        )
    if names is None:
        chosen = list(reference.columns)
    else:
        if isinstance(names, str):
            raise InvalidArgumentError(
                "The 'columns' argument must be a list of column names, not a string.",
                field="columns",
            )
        chosen = list(dict.fromkeys(names))
        unknown = [n for n in chosen if n not in reference.columns]
        if unknown:
            raise InvalidArgumentError(
                f"The 'columns' argument names columns the reference lacks: {unknown}. "
                f"Expected some of {list(reference.columns)}.",
                field="columns",
            )
    columns: list[_Column] = []
    offset = slot = 0
    for name in chosen:
        profile = reference.columns[name]
        column = _column_layout(name, profile, offset, slot if profile.kind == "numeric" else -1)
        columns.append(column)
        offset += column.size
        slot += column.kind == "numeric"
    digest = hashlib.blake2b(digest_size=8)
    for column in columns:
        part = [column.name, column.kind, [repr(e) for e in column.edges.tolist()]]
        part += [repr(column.high), list(column.categories)]
        digest.update(json.dumps(part).encode())
    return _Layout(tuple(columns), {c.name: c for c in columns}, offset, slot, digest.hexdigest())


# -- folding one column of a batch ---------------------------------------------------------------


@dataclass
class _Fold:
    """What one batch adds to one column: its integer slots, and for numeric columns the sums
    and extremes."""

    ints: IntArray
    total: float = 0.0
    total_sq: float = 0.0
    low: float = math.inf
    high: float = -math.inf
    unseen: dict[str, int] | None = None


def _empty_fold(column: _Column, rows: int, present: bool) -> _Fold:
    ints = np.zeros(column.size, dtype=np.int64)
    ints[_PRESENT] = rows if present else 0
    ints[_MISSING] = 0 if present else rows
    return _Fold(ints)


def _fold_numbers(column: _Column, values: FloatArray, missing: int, rows: int) -> _Fold:
    """Fold non-missing float64 values (any order) into a numeric column's counters."""
    fold = _empty_fold(column, rows, True)
    fold.ints[_COUNT] = values.size
    fold.ints[_MISSING] = missing
    if values.size:
        fold.ints[_BASE + 1 :] = bucket_counts(values, column.edges)
        _numeric_totals(fold, column, values)
    return fold


def bucket_counts(values: FloatArray, edges: FloatArray) -> IntArray:
    """Counts of (unsorted) values per bucket of ``edges``, where x falls in bucket
    ``searchsorted(edges, x, "right")`` (the profile's buckets). With few edges one vectorised
    comparison per edge beats a binary search per value by an order of magnitude."""
    if edges.size > _COMPARE_EDGES or values.size < _SEARCH_BELOW:
        return np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)
    below = [np.count_nonzero(values < edge) for edge in edges.tolist()]
    cumulative = np.asarray([0, *below, values.size], dtype=np.int64)
    return cumulative[1:] - cumulative[:-1]


def _numeric_totals(fold: _Fold, column: _Column, values: FloatArray) -> None:
    # infinities give inf or nan sums: callers fold under np.errstate(over=, invalid="ignore")
    fold.total = float(values.sum())
    fold.total_sq = float(np.dot(values, values))
    fold.low, fold.high = float(values.min()), float(values.max())
    if not math.isnan(column.high):
        fold.ints[_BASE] = int(np.count_nonzero(values > column.high))


def _mismatched_fold(column: _Column, rows: int, missing: int) -> _Fold:
    fold = _empty_fold(column, rows, True)
    fold.ints[_MISSING] = missing
    fold.ints[_MISMATCHED] = rows - missing
    return fold


def _fold_categories(
    column: _Column, counted: Iterable[tuple[Any, int]], rows: int, missing: int
) -> _Fold:
    """Fold (value, count) pairs whose values are text, booleans, None or other objects."""
    fold = _empty_fold(column, rows, True)
    ints = fold.ints
    other_slot = _BASE + len(column.categories)
    unseen: dict[str, int] = {}
    count = mismatched = 0
    for value, n in counted:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            missing += n
            continue
        if isinstance(value, bool | np.bool_):
            if not column.boolean:
                mismatched += n
                continue
            key = "true" if value else "false"
        elif isinstance(value, str):
            key = value
        elif isinstance(value, np.str_):
            key = str(value)
        else:
            mismatched += n
            continue
        count += n
        position = column.index.get(key)
        if position is None:
            ints[other_slot] += n
            unseen[key] = unseen.get(key, 0) + n
        else:
            ints[_BASE + position] += n
    ints[_COUNT] = count
    ints[_MISSING] = missing
    ints[_MISMATCHED] = mismatched
    fold.unseen = _top(unseen) if unseen else None
    return fold


def _top(counts: dict[str, int]) -> dict[str, int]:
    if len(counts) <= MAX_UNSEEN:
        return counts
    return dict(_sketch.top_items(counts, MAX_UNSEEN))


def _arrow_fold(column: _Column, data: pa.ChunkedArray, rows: int) -> _Fold:
    data = _sketch.decode(data)
    nulls = data.null_count
    family = _sketch.type_family(data.type)
    if column.kind == "numeric":
        if family not in ("numeric", "datetime"):
            return _mismatched_fold(column, rows, nulls)
        values, nan_count = _arrow_numbers(data)
        return _fold_numbers(column, values, nulls + nan_count, rows)
    if column.kind == "categorical":
        if family == "boolean" and not column.boolean:
            return _mismatched_fold(column, rows, nulls)
        if family not in ("text", "boolean"):
            return _mismatched_fold(column, rows, nulls)
        counted = pc.value_counts(data)
        values = counted.field("values")
        if family == "boolean":
            values = values.cast(pa.string())
        pairs = zip(values.to_pylist(), counted.field("counts").to_pylist(), strict=True)
        return _fold_categories(column, ((v, n) for v, n in pairs if v is not None), rows, nulls)
    fold = _empty_fold(column, rows, True)
    fold.ints[_COUNT] = rows - nulls
    fold.ints[_MISSING] = nulls
    return fold


def _arrow_numbers(data: pa.ChunkedArray) -> tuple[FloatArray, int]:
    """Non-null values of a decoded numeric or datetime column as float64 (datetimes in
    seconds since the epoch), without NaN, and the number of NaNs."""
    t = data.type
    if pa.types.is_timestamp(t) or pa.types.is_date64(t):
        scale = 1.0 / _UNITS_PER_SECOND["ms" if pa.types.is_date64(t) else t.unit]
        native = data.cast(pa.int64())
    elif pa.types.is_date32(t):
        scale, native = float(_SECONDS_PER_DAY), data.cast(pa.int32())
    else:
        scale, native = 1.0, data
        if pa.types.is_decimal(t):
            native = data.cast(pa.float64())
    if native.null_count:
        native = pc.drop_null(native)
    array = np.asarray(native.to_numpy())
    values = array.astype(np.float64, copy=False)
    if scale != 1.0:
        values = values * scale
    nan_count = 0
    if array.dtype.kind == "f":
        nan = np.isnan(values)
        nan_count = int(np.count_nonzero(nan))
        if nan_count:
            values = values[~nan]
    return values, nan_count


def _numpy_fold(column: _Column, data: Any, rows: int) -> _Fold:
    array = np.asarray(data)
    if array.ndim > 1:  # one array per row (embeddings, images): only "other" columns hold them
        if column.kind != "other":
            return _mismatched_fold(column, rows, 0)
        fold = _empty_fold(column, rows, True)
        fold.ints[_COUNT] = rows
        return fold
    if column.kind == "numeric":
        return _numpy_numeric(column, array, rows)
    if column.kind == "categorical":
        return _numpy_categorical(column, array, rows)
    fold = _empty_fold(column, rows, True)
    missing = int(sum(v is None for v in array.tolist())) if array.dtype.kind == "O" else 0
    fold.ints[_COUNT] = rows - missing
    fold.ints[_MISSING] = missing
    return fold


def _numpy_numeric(column: _Column, array: npt.NDArray[Any], rows: int) -> _Fold:
    kind = array.dtype.kind
    if kind in "iuf":
        values = array.astype(np.float64, copy=False)
    elif kind == "M":
        stamps = array.astype("datetime64[ns]")
        nat = np.isnat(stamps)
        values = stamps[~nat].astype(np.int64) / 1e9
        return _fold_numbers(column, values, int(np.count_nonzero(nat)), rows)
    elif kind == "O":
        return _object_numbers(column, array, rows)
    else:  # booleans, text, bytes, timedeltas
        return _mismatched_fold(column, rows, 0)
    nan = np.isnan(values)
    missing = int(np.count_nonzero(nan))
    if missing:
        values = values[~nan]
    return _fold_numbers(column, values, missing, rows)


def _object_numbers(column: _Column, array: npt.NDArray[Any], rows: int) -> _Fold:
    numbers: list[float] = []
    missing = mismatched = 0
    for value in array.tolist():
        if value is None:
            missing += 1
        elif isinstance(value, bool) or not isinstance(value, int | float):
            mismatched += 1
        elif value != value:  # NaN
            missing += 1
        else:
            numbers.append(float(value))
    fold = _fold_numbers(column, np.asarray(numbers, dtype=np.float64), missing, rows)
    fold.ints[_MISMATCHED] = mismatched
    return fold


def _numpy_categorical(column: _Column, array: npt.NDArray[Any], rows: int) -> _Fold:
    kind = array.dtype.kind
    if kind in "OUb":
        return _fold_categories(column, Counter(array.tolist()).items(), rows, 0)
    if kind == "f":
        nan = int(np.count_nonzero(np.isnan(array)))
        return _mismatched_fold(column, rows, nan)
    return _mismatched_fold(column, rows, 0)


# -- batches -------------------------------------------------------------------------------------


def _batch_columns(batch: Any) -> tuple[dict[str, Any], int]:
    """The columns of a batch by name, and its number of rows."""
    if isinstance(batch, pa.RecordBatch):
        batch = pa.Table.from_batches([batch])
    elif _is_dataframe(batch):
        try:
            batch = pa.Table.from_pandas(batch, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as error:
            raise InvalidArgumentError(
                f"The 'batch' DataFrame cannot be converted to Arrow: {error}", field="batch"
            ) from error
    if isinstance(batch, pa.Table):
        return dict(zip(batch.column_names, batch.columns, strict=True)), batch.num_rows
    if isinstance(batch, Mapping):
        columns: dict[str, Any] = {}
        lengths: dict[str, int] = {}
        for name, values in batch.items():
            if not isinstance(name, str):
                raise InvalidArgumentError(
                    f"The 'batch' mapping must have column names as keys. Got {name!r}.",
                    field="batch",
                )
            if isinstance(values, pa.Array):
                values = pa.chunked_array([values])
            elif not isinstance(values, pa.ChunkedArray):
                values = np.asarray(values)
                if values.ndim == 0:
                    values = values.reshape(1)
            columns[name] = values
            lengths[name] = len(values)
        if len(set(lengths.values())) > 1:
            raise InvalidArgumentError(
                f"The 'batch' columns must all have the same length. Got {lengths}.",
                field="batch",
            )
        return columns, next(iter(lengths.values()), 0)
    raise InvalidArgumentError(
        "The 'batch' argument must be a pyarrow.Table, pyarrow.RecordBatch, pandas.DataFrame "
        f"or a mapping of column name to array. Got {type(batch).__name__} instead.",
        field="batch",
    )


def _is_dataframe(value: Any) -> bool:
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, pandas.DataFrame)


def _fold_column(column: _Column, data: Any, rows: int) -> _Fold:
    """What one batch's column adds (infinities in sums are allowed, without warnings)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return _fold_any(column, data, rows)


def _fold_columns(columns: Iterable[_Column], data: Mapping[str, Any], rows: int) -> list[_Fold]:
    with np.errstate(over="ignore", invalid="ignore"):
        return [_fold_any(c, data.get(c.name), rows) for c in columns]


def _fold_any(column: _Column, data: Any, rows: int) -> _Fold:
    if data is None:
        return _empty_fold(column, rows, False)
    if isinstance(data, pa.ChunkedArray):
        return _arrow_fold(column, data, rows)
    return _numpy_fold(column, data, rows)


# -- the sketch ----------------------------------------------------------------------------------


def _encode(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def _decode(value: Any) -> float:
    return float(value)


class WindowSketch:
    """Counters of a window of production rows on a reference profile's buckets.

    ``reference`` is the profile the window will be compared with; ``columns`` picks some of
    its columns (default: all). See the module docstring for what is counted.
    """

    def __init__(self, reference: Profile, *, columns: Iterable[str] | None = None) -> None:
        self._init(reference, _layout(reference, columns))

    def _init(self, reference: Profile, layout: _Layout) -> None:
        self._reference = reference
        self._layout = layout
        self._lock = threading.Lock()
        self._rows = 0
        self._ints = np.zeros(layout.ints, dtype=np.int64)
        self._sums = np.zeros(2 * layout.floats, dtype=np.float64)
        self._mins = np.full(layout.floats, np.inf)
        self._maxs = np.full(layout.floats, -np.inf)
        self._unseen: dict[str, dict[str, int]] = {}

    # -- construction ----------------------------------------------------------------------

    def empty(self) -> WindowSketch:
        """A new, empty sketch on the same reference and columns (the next window)."""
        sketch = WindowSketch.__new__(WindowSketch)
        sketch._init(self._reference, self._layout)
        return sketch

    def copy(self) -> WindowSketch:
        """A consistent copy of this sketch, taken under its lock."""
        sketch = self.empty()
        with self._lock:
            sketch._rows = self._rows
            sketch._ints = self._ints.copy()
            sketch._sums = self._sums.copy()
            sketch._mins = self._mins.copy()
            sketch._maxs = self._maxs.copy()
            sketch._unseen = {k: dict(v) for k, v in self._unseen.items()}
        return sketch

    # -- properties ------------------------------------------------------------------------

    @property
    def reference(self) -> Profile:
        return self._reference

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self._layout.columns)

    @property
    def num_rows(self) -> int:
        return self._rows

    @property
    def fingerprint(self) -> str:
        """Identifies the reference's buckets and categories: sketches merge only when equal."""
        return self._layout.fingerprint

    def __repr__(self) -> str:
        return (
            f"WindowSketch(rows={self._rows}, columns={len(self._layout.columns)}, "
            f"fingerprint={self.fingerprint!r})"
        )

    # -- updates ---------------------------------------------------------------------------

    def update(self, batch: Any) -> None:
        """Fold a batch of rows into the sketch (thread-safe)."""
        columns, rows = _batch_columns(batch)
        folds = _fold_columns(self._layout.columns, columns, rows)
        self._add_folds(folds, rows)

    def _add_folds(self, folds: list[_Fold], rows: int) -> None:
        ints = np.concatenate([f.ints for f in folds]) if folds else self._ints[:0]
        sums = np.zeros_like(self._sums)
        mins = np.full_like(self._mins, np.inf)
        maxs = np.full_like(self._maxs, -np.inf)
        for column, fold in zip(self._layout.columns, folds, strict=True):
            if column.slot >= 0:
                sums[2 * column.slot] = fold.total
                sums[2 * column.slot + 1] = fold.total_sq
                mins[column.slot] = fold.low
                maxs[column.slot] = fold.high
        with self._lock:
            self._rows += rows
            self._ints += ints
            with np.errstate(invalid="ignore"):
                self._sums += sums
            np.minimum(self._mins, mins, out=self._mins)
            np.maximum(self._maxs, maxs, out=self._maxs)
            for column, fold in zip(self._layout.columns, folds, strict=True):
                if fold.unseen:
                    self._add_unseen(column.name, fold.unseen)

    def _add_unseen(self, name: str, unseen: Mapping[str, int]) -> None:
        kept = self._unseen.setdefault(name, {})
        for value, n in unseen.items():
            kept[value] = kept.get(value, 0) + n
        if len(kept) > MAX_UNSEEN:
            self._unseen[name] = _top(kept)

    # -- merging ---------------------------------------------------------------------------

    def _check_mergeable(self, other: Any) -> WindowSketch:
        if not isinstance(other, WindowSketch):
            raise InvalidArgumentError(
                f"Only a WindowSketch merges with a WindowSketch. Got {type(other).__name__}.",
                field="other",
            )
        if other._layout.fingerprint != self._layout.fingerprint:
            raise InvalidArgumentError(
                "These sketches cannot be merged: they were made on different references or "
                f"columns (fingerprints {self.fingerprint} and {other.fingerprint}).",
                field="other",
            )
        return other

    def merge(self, other: WindowSketch) -> WindowSketch:
        """A new sketch of both windows together (neither is changed)."""
        return WindowSketch.merge_all([self, self._check_mergeable(other)])

    @staticmethod
    def merge_all(sketches: Iterable[WindowSketch]) -> WindowSketch:
        """One sketch of many windows of the same reference (e.g. 1,440 one-minute windows);
        each window is read under its own lock, and none is changed."""
        items = list(sketches)
        if not items:
            raise InvalidArgumentError(
                "The 'sketches' argument must hold at least one WindowSketch.", field="sketches"
            )
        first = items[0]
        if not isinstance(first, WindowSketch):
            raise InvalidArgumentError(
                f"Only WindowSketch objects merge. Got {type(first).__name__}.", field="sketches"
            )
        for other in items[1:]:
            first._check_mergeable(other)
        count = len(items)
        ints = np.empty((count, first._ints.size), dtype=np.int64)
        sums = np.empty((count, first._sums.size), dtype=np.float64)
        mins = np.empty((count, first._mins.size), dtype=np.float64)
        maxs = np.empty((count, first._maxs.size), dtype=np.float64)
        rows = 0
        unseen: list[dict[str, dict[str, int]]] = []
        for index, sketch in enumerate(items):
            with sketch._lock:
                rows += sketch._rows
                ints[index] = sketch._ints
                sums[index] = sketch._sums
                mins[index] = sketch._mins
                maxs[index] = sketch._maxs
                if sketch._unseen:
                    unseen.append({k: dict(v) for k, v in sketch._unseen.items()})
        merged = first.empty()
        merged._rows = rows
        merged._ints = ints.sum(axis=0)
        with np.errstate(invalid="ignore"):
            merged._sums = sums.sum(axis=0)
        if merged._mins.size:
            merged._mins = mins.min(axis=0)
            merged._maxs = maxs.max(axis=0)
        for part in unseen:
            for name, values in part.items():
                merged._add_unseen(name, values)
        for name, values in merged._unseen.items():  # deterministic whatever the order
            merged._unseen[name] = dict(_sketch.top_items(values, MAX_UNSEEN))
        return merged

    # -- reading ---------------------------------------------------------------------------

    def column(self, name: str) -> ColumnWindow:
        """The counters of one column."""
        layout = self._layout.by_name.get(name)
        if layout is None:
            raise InvalidArgumentError(
                f"The sketch has no column {name!r}. Expected one of {list(self.columns)}.",
                field="name",
            )
        with self._lock:
            return self._column(layout)

    def _column(self, c: _Column) -> ColumnWindow:
        ints = self._ints[c.offset : c.offset + c.size].tolist()
        base = {
            "present": ints[_PRESENT],
            "count": ints[_COUNT],
            "missing": ints[_MISSING],
            "mismatched": ints[_MISMATCHED],
        }
        if c.kind == "numeric":
            empty = ints[_COUNT] == 0
            return NumericWindow(
                **base,
                above=ints[_BASE],
                sum=float(self._sums[2 * c.slot]),
                sum_sq=float(self._sums[2 * c.slot + 1]),
                min=None if empty else float(self._mins[c.slot]),
                max=None if empty else float(self._maxs[c.slot]),
                counts=tuple(ints[_BASE + 1 :]),
            )
        if c.kind == "categorical":
            counts = dict(zip(c.categories, ints[_BASE : _BASE + len(c.categories)], strict=True))
            unseen = dict(_sketch.top_items(self._unseen.get(c.name, {}), MAX_UNSEEN))
            return CategoricalWindow(**base, counts=counts, other=ints[-1], unseen=unseen)
        return OtherWindow(**base)

    def windows(self) -> dict[str, ColumnWindow]:
        """Every column's counters, read consistently under the lock."""
        with self._lock:
            return {c.name: self._column(c) for c in self._layout.columns}

    def to_profile(self) -> Profile:
        """The window as a :class:`~loopml.data.profile.Profile`: numeric columns on the
        reference's edges (as :func:`loopml.data.profile.sketch` makes them), categorical ones
        with their top values (values of the wrong type are left out)."""
        columns: dict[str, ColumnProfile] = {}
        for name, w in self.windows().items():
            if isinstance(w, NumericWindow):
                edges = tuple(self._layout.by_name[name].edges.tolist())
                columns[name] = NumericProfile(
                    count=w.count,
                    missing=w.missing,
                    sum=w.sum,
                    sum_sq=w.sum_sq,
                    min=w.min,
                    max=w.max,
                    edges=edges,
                    counts=w.counts,
                )
            elif isinstance(w, CategoricalWindow):
                present = {k: v for k, v in w.counts.items() if v}
                present.update(w.unseen)
                kept = dict(_sketch.top_items(present, TOP_VALUES))
                other = w.count - sum(kept.values())
                columns[name] = CategoricalProfile(w.count, w.missing, kept, other)
            else:
                columns[name] = OtherProfile(w.count, w.missing)
        return Profile(num_rows=self._rows, columns=columns)

    # -- state -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The sketch's state as compact JSON-ready data (:meth:`from_dict` reads it back
        with the same reference profile)."""
        with self._lock:
            empty = [
                self._ints[c.offset + _COUNT] == 0 for c in self._layout.columns if c.slot >= 0
            ]
            return {
                "version": STATE_VERSION,
                "fingerprint": self._layout.fingerprint,
                "columns": [c.name for c in self._layout.columns],
                "rows": self._rows,
                "ints": self._ints.tolist(),
                "sums": [_encode(v) for v in self._sums.tolist()],
                "min": [
                    None if e else _encode(v)
                    for e, v in zip(empty, self._mins.tolist(), strict=True)
                ],
                "max": [
                    None if e else _encode(v)
                    for e, v in zip(empty, self._maxs.tolist(), strict=True)
                ],
                "unseen": {k: dict(v) for k, v in self._unseen.items() if v},
            }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], reference: Profile) -> WindowSketch:
        """A sketch from :meth:`to_dict`'s output and the reference profile it was made on."""
        if not isinstance(d, Mapping):
            raise InvalidArgumentError(
                f"The 'd' argument must be a dict from WindowSketch.to_dict(). Got "
                f"{type(d).__name__}.",
                field="d",
            )
        if d.get("version") != STATE_VERSION:
            raise InvalidArgumentError(
                f"The sketch state has version {d.get('version')!r}; this loopml reads version "
                f"{STATE_VERSION}.",
                field="version",
            )
        try:
            sketch = cls(reference, columns=list(d["columns"]))
            if d["fingerprint"] != sketch.fingerprint:
                raise InvalidArgumentError(
                    "The sketch state was made on another reference profile (fingerprint "
                    f"{d['fingerprint']!r}, this reference gives {sketch.fingerprint!r}).",
                    field="reference",
                )
            ints = np.asarray(d["ints"], dtype=np.int64)
            sums = np.asarray([_decode(v) for v in d["sums"]], dtype=np.float64)
            mins = np.asarray([math.inf if v is None else _decode(v) for v in d["min"]])
            maxs = np.asarray([-math.inf if v is None else _decode(v) for v in d["max"]])
            rows = int(d["rows"])
            unseen = {
                str(k): {str(v): int(n) for v, n in dict(values).items()}
                for k, values in dict(d.get("unseen", {})).items()
            }
        except InvalidArgumentError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise InvalidArgumentError(
                f"The 'd' argument is not a valid sketch state ({type(error).__name__}: {error}).",
                field="d",
            ) from error
        shapes = (ints.shape, sums.shape, mins.shape, maxs.shape)
        want = (sketch._ints.shape, sketch._sums.shape, sketch._mins.shape, sketch._maxs.shape)
        if shapes != want or rows < 0 or (ints.size and ints.min() < 0):
            raise InvalidArgumentError(
                "The 'd' argument is not a valid sketch state: its arrays do not fit the "
                "reference's columns, or it holds negative counts.",
                field="d",
            )
        unknown = sorted(set(unseen) - {c.name for c in sketch._layout.columns})
        if unknown:
            raise InvalidArgumentError(
                f"The sketch state lists unseen values for unknown columns {unknown}.", field="d"
            )
        sketch._rows, sketch._ints, sketch._sums = rows, ints, sums
        sketch._mins, sketch._maxs, sketch._unseen = mins, maxs, unseen
        return sketch

    # -- used by compare() -----------------------------------------------------------------

    @classmethod
    def _from_folds(
        cls, reference: Profile, columns: list[str], folds: list[_Fold], rows: int
    ) -> WindowSketch:
        sketch = cls(reference, columns=columns)
        sketch._add_folds(folds, rows)
        return sketch

    def _column_layout(self, name: str) -> _Column:
        return self._layout.by_name[name]
