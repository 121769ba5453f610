"""Inferred schemas and mergeable profiles of tables.

A profile is the reference that monitoring compares production windows against.
:func:`describe` reads a :class:`pyarrow.Table` (or a pandas DataFrame) once per column and
returns its :class:`Schema` and :class:`Profile`. :func:`sketch` histograms a later table (a
production window) on a reference profile's buckets, so the sketches of many windows add up
with :meth:`Profile.merge` and compare with :meth:`Profile.diff`.

Conventions
-----------
* Missing values: nulls and floating-point NaN are both missing. A NaN counts in
  ``ColumnSchema.null_count`` (and makes the column ``nullable``) and in a profile's
  ``missing``; it never reaches min, max, histograms or distinct counts. Infinities are values.
* Dictionary-encoded columns are described as their value type.
* Datetime columns (timestamps and dates) are profiled as numbers: float seconds since the Unix
  epoch (UTC for time-zone-aware timestamps). Their schema min/max are ISO 8601 strings.
* Booleans are categorical with the keys ``"true"`` and ``"false"``.
* Lists, structs, binary and other types only get counts (:class:`OtherProfile`).
* JSON: non-finite floats are written as the strings ``"inf"``, ``"-inf"`` and ``"nan"`` so that
  ``json.dumps(..., allow_nan=False)`` works; ``from_dict`` turns them back into floats.
* Determinism: the same table gives the same schema and profile; there is no sampling.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeAlias

import numpy as np
import pyarrow as pa

from loopml.data import _sketch
from loopml.data._schema import (
    FORMAT_VERSION,
    ColumnSchema,
    Schema,
    SchemaDiff,
    check_version,
    decode_number,
    encode_float,
    malformed,
)
from loopml.errors import InvalidArgumentError

__all__ = [
    "CategoricalProfile",
    "ColumnDelta",
    "ColumnProfile",
    "ColumnSchema",
    "NumericProfile",
    "OtherProfile",
    "Profile",
    "Schema",
    "SchemaDiff",
    "describe",
    "infer_schema",
    "profile_table",
    "sketch",
]

MAX_INT_CATEGORIES = 20
"""Integer columns with at most this many distinct values also get value frequencies."""
MAX_CATEGORIES = 50
"""A string column with at most this many distinct values is "categorical"."""
TOP_VALUES = 100
"""A categorical profile keeps this many values; the rest are counted in ``other``."""
MAX_BINS = 1000
TOP_SHARE_CHANGES = 10


# -- column profiles ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Counted:
    count: int
    """Non-missing values."""
    missing: int
    """Nulls and NaNs."""

    @property
    def missing_rate(self) -> float | None:
        rows = self.count + self.missing
        return self.missing / rows if rows else None


@dataclass(frozen=True)
class NumericProfile(_Counted):
    """Summary and histogram of a numeric or datetime (epoch seconds) column.

    Buckets: with ``e = edges``, bucket 0 is (-inf, e[0]); bucket i (1 <= i < len(e)) is
    [e[i-1], e[i]); the last bucket, ``len(e)``, is [e[-1], +inf). The bucket of x is
    ``numpy.searchsorted(edges, x, side="right")``, and ``len(counts) == len(edges) + 1``.

    A reference profile's edges are its column's distinct values when there are at most
    ``bins`` of them (one bucket per value), else the distinct "lower" quantiles (order
    statistics) at 0, 1/bins, ..., (bins - 1)/bins. Either way the first edge is the minimum, so
    the reference's bucket 0 is empty; a window with smaller values puts them there. Profiles
    with equal edges merge by adding counts, ``sum`` and ``sum_sq``.
    """

    sum: float = 0.0
    sum_sq: float = 0.0
    min: float | None = None
    max: float | None = None
    edges: tuple[float, ...] = ()
    counts: tuple[int, ...] = (0,)

    kind: ClassVar[str] = "numeric"

    def __post_init__(self) -> None:
        if len(self.counts) != len(self.edges) + 1:
            raise InvalidArgumentError(
                f"A numeric profile needs len(counts) == len(edges) + 1. Got {len(self.counts)} "
                f"counts for {len(self.edges)} edges instead.",
                field="counts",
            )
        if sum(self.counts) != self.count:
            raise InvalidArgumentError(
                f"A numeric profile's counts must add up to its count ({self.count}). "
                f"Got {sum(self.counts)} instead.",
                field="counts",
            )

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

    def quantile(self, q: float) -> float | None:
        """Approximate q-quantile from the histogram (values spread evenly in each bucket)."""
        if isinstance(q, bool) or not isinstance(q, int | float) or not 0 <= q <= 1:
            raise InvalidArgumentError(
                f"The 'q' argument must be a number in [0, 1]. Got {q!r} instead.", field="q"
            )
        if not self.count or self.min is None or self.max is None:
            return None
        if q == 0 or q == 1:
            return self.min if q == 0 else self.max
        return _sketch.histogram_quantile(
            np.asarray(self.edges, dtype=np.float64),
            np.asarray(self.counts, dtype=np.int64),
            self.min,
            self.max,
            float(q),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "count": self.count,
            "missing": self.missing,
            "sum": encode_float(self.sum),
            "sum_sq": encode_float(self.sum_sq),
            "min": encode_float(self.min),
            "max": encode_float(self.max),
            "edges": [encode_float(e) for e in self.edges],
            "counts": list(self.counts),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NumericProfile:
        return cls(
            count=int(d["count"]),
            missing=int(d["missing"]),
            sum=float(decode_number(d["sum"])),
            sum_sq=float(decode_number(d["sum_sq"])),
            min=decode_number(d["min"]),
            max=decode_number(d["max"]),
            edges=tuple(float(decode_number(e)) for e in d["edges"]),
            counts=tuple(int(c) for c in d["counts"]),
        )


@dataclass(frozen=True)
class CategoricalProfile(_Counted):
    """Value counts of a boolean, categorical or string column: the top 100 values (by count
    descending, ties by value) in ``counts`` and every other non-missing value in ``other``."""

    counts: dict[str, int] = field(default_factory=dict)
    other: int = 0

    kind: ClassVar[str] = "categorical"

    def share(self, value: str) -> float:
        """The fraction of non-missing values equal to ``value`` (0.0 when not kept)."""
        return self.counts.get(value, 0) / self.count if self.count else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "count": self.count,
            "missing": self.missing,
            "counts": dict(self.counts),
            "other": self.other,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CategoricalProfile:
        counts = {str(k): int(v) for k, v in d["counts"].items()}
        return cls(int(d["count"]), int(d["missing"]), counts, int(d["other"]))


@dataclass(frozen=True)
class OtherProfile(_Counted):
    """Counts only, for lists, structs, binary and other types."""

    kind: ClassVar[str] = "other"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "count": self.count, "missing": self.missing}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OtherProfile:
        return cls(int(d["count"]), int(d["missing"]))


ColumnProfile: TypeAlias = NumericProfile | CategoricalProfile | OtherProfile
_PROFILE_CLASSES: dict[str, type[ColumnProfile]] = {
    "numeric": NumericProfile,
    "categorical": CategoricalProfile,
    "other": OtherProfile,
}


def _column_profile_from_dict(d: dict[str, Any]) -> ColumnProfile:
    kind = d["kind"]
    if kind not in _PROFILE_CLASSES:
        raise InvalidArgumentError(
            f"Column profile kind must be one of {', '.join(_PROFILE_CLASSES)}. "
            f"Got {kind!r} instead.",
            field="kind",
        )
    return _PROFILE_CLASSES[kind].from_dict(d)


@dataclass(frozen=True)
class ColumnDelta:
    """How one column's profile changed: ``changes`` maps a statistic to (old, new).

    Every column reports ``missing_rate``; numeric columns add ``mean``, ``std``, ``min`` and
    ``max``; categorical ones add ``other_share`` and ``share:<value>`` for the values whose
    share moved most. ``psi`` is the population stability index of the new histogram against
    the old one (None when either side is empty); when the two numeric profiles have different
    edges the new histogram is re-binned approximately onto the old edges first.
    """

    column: str
    kind: str
    changes: dict[str, tuple[Any, Any]]
    psi: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "kind": self.kind,
            "changes": {
                k: [encode_float(old), encode_float(new)] for k, (old, new) in self.changes.items()
            },
            "psi": encode_float(self.psi),
        }


# -- profile -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """Per-column profiles of a table (in column order) and its row count."""

    num_rows: int
    columns: dict[str, ColumnProfile]

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "num_rows": self.num_rows,
            "columns": {name: column.to_dict() for name, column in self.columns.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Profile:
        check_version(d, "profile")
        try:
            columns = {str(k): _column_profile_from_dict(v) for k, v in d["columns"].items()}
            return cls(num_rows=int(d["num_rows"]), columns=columns)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            if isinstance(error, InvalidArgumentError):
                raise
            raise malformed("profile", error) from error

    def merge(self, other: Profile) -> Profile:
        """The profile of both tables together: the same columns, and for numeric columns the
        same edges, are required (sketch windows ``like`` one reference to get them)."""
        _require_profile(other, "other")
        if set(self.columns) != set(other.columns):
            only_here = sorted(set(self.columns) - set(other.columns))
            only_there = sorted(set(other.columns) - set(self.columns))
            raise InvalidArgumentError(
                "Profiles with different columns cannot be merged: only in this one: "
                f"{only_here}; only in the other: {only_there}.",
                field="other",
            )
        columns = {
            name: _merge_column(name, column, other.columns[name])
            for name, column in self.columns.items()
        }
        return Profile(num_rows=self.num_rows + other.num_rows, columns=columns)

    def diff(self, other: Profile) -> list[ColumnDelta]:
        """How each column present in both changed from this profile to ``other``."""
        _require_profile(other, "other")
        return [
            _column_delta(name, column, other.columns[name])
            for name, column in self.columns.items()
            if name in other.columns
        ]


def _require_profile(value: Any, name: str) -> None:
    if not isinstance(value, Profile):
        raise InvalidArgumentError(
            f"The {name!r} argument must be a Profile. Got {type(value).__name__} instead.",
            field=name,
        )


def _merge_column(name: str, a: ColumnProfile, b: ColumnProfile) -> ColumnProfile:
    if isinstance(a, NumericProfile) and isinstance(b, NumericProfile):
        return _merge_numeric(name, a, b)
    if isinstance(a, CategoricalProfile) and isinstance(b, CategoricalProfile):
        return _merge_categorical(a, b)
    if isinstance(a, OtherProfile) and isinstance(b, OtherProfile):
        return OtherProfile(a.count + b.count, a.missing + b.missing)
    raise InvalidArgumentError(
        f"Column {name!r} cannot be merged: it is {a.kind} in one profile and {b.kind} in the "
        "other.",
        field="other",
        column=name,
    )


def _merge_numeric(name: str, a: NumericProfile, b: NumericProfile) -> NumericProfile:
    if a.edges != b.edges:
        raise InvalidArgumentError(
            f"Column {name!r} cannot be merged: its histogram edges differ ({len(a.edges)} vs "
            f"{len(b.edges)} edges). Merge only sketches made like the same reference profile.",
            field="edges",
            column=name,
        )
    return NumericProfile(
        count=a.count + b.count,
        missing=a.missing + b.missing,
        sum=a.sum + b.sum,
        sum_sq=a.sum_sq + b.sum_sq,
        min=_extreme(min, a.min, b.min),
        max=_extreme(max, a.max, b.max),
        edges=a.edges,
        counts=tuple(x + y for x, y in zip(a.counts, b.counts, strict=True)),
    )


def _extreme(pick: Any, a: float | None, b: float | None) -> float | None:
    values = [v for v in (a, b) if v is not None]
    return pick(values) if values else None


def _merge_categorical(a: CategoricalProfile, b: CategoricalProfile) -> CategoricalProfile:
    totals = Counter(a.counts)
    totals.update(b.counts)
    kept = dict(_sketch.top_items(dict(totals), TOP_VALUES))
    dropped = sum(totals.values()) - sum(kept.values())
    return CategoricalProfile(
        count=a.count + b.count,
        missing=a.missing + b.missing,
        counts=kept,
        other=a.other + b.other + dropped,
    )


def _column_delta(name: str, a: ColumnProfile, b: ColumnProfile) -> ColumnDelta:
    changes: dict[str, tuple[Any, Any]] = {"missing_rate": (a.missing_rate, b.missing_rate)}
    psi: float | None = None
    if isinstance(a, NumericProfile) and isinstance(b, NumericProfile):
        changes.update(mean=(a.mean, b.mean), std=(a.std, b.std), min=(a.min, b.min))
        changes["max"] = (a.max, b.max)
        psi = _numeric_psi(a, b)
    elif isinstance(a, CategoricalProfile) and isinstance(b, CategoricalProfile):
        changes.update(_share_changes(a, b))
        psi = _categorical_psi(a, b)
    elif a.kind != b.kind:
        changes["kind"] = (a.kind, b.kind)
    return ColumnDelta(column=name, kind=b.kind, changes=changes, psi=psi)


def _numeric_psi(a: NumericProfile, b: NumericProfile) -> float | None:
    if not a.count or not b.count or b.min is None or b.max is None:
        return None
    expected = np.asarray(a.counts, dtype=np.float64)
    actual = np.asarray(b.counts, dtype=np.float64)
    if a.edges != b.edges:
        edges = np.asarray(b.edges, dtype=np.float64)
        counts = np.asarray(b.counts, dtype=np.int64)
        target = np.asarray(a.edges, dtype=np.float64)
        actual = _sketch.rebin(edges, counts, b.min, b.max, target)
    return _sketch.psi(expected, actual)


def _share_changes(a: CategoricalProfile, b: CategoricalProfile) -> dict[str, tuple[Any, Any]]:
    values = sorted(set(a.counts) | set(b.counts))
    moved = sorted(values, key=lambda v: (-abs(b.share(v) - a.share(v)), v))
    changes: dict[str, tuple[Any, Any]] = {
        f"share:{v}": (a.share(v), b.share(v)) for v in moved[:TOP_SHARE_CHANGES]
    }
    changes["other_share"] = (
        a.other / a.count if a.count else 0.0,
        b.other / b.count if b.count else 0.0,
    )
    return changes


def _categorical_psi(a: CategoricalProfile, b: CategoricalProfile) -> float | None:
    if not a.count or not b.count:
        return None
    values = sorted(set(a.counts) | set(b.counts))
    expected = np.asarray([a.counts.get(v, 0) for v in values] + [a.other], dtype=np.float64)
    actual = np.asarray([b.counts.get(v, 0) for v in values] + [b.other], dtype=np.float64)
    return _sketch.psi(expected, actual)


# -- computing schemas and profiles ------------------------------------------------------------


def describe(table: Any, *, bins: int = 20) -> tuple[Schema, Profile]:
    """The schema and the reference profile of a table, reading each column once.

    ``table`` is a :class:`pyarrow.Table`, a :class:`pyarrow.RecordBatch` or a pandas
    DataFrame; ``bins`` (2 to 1000) is the number of quantile buckets for numeric columns.
    """
    table = _as_table(table)
    bins = _check_bins(bins)
    described = [
        _describe_column(name, table.column(i), bins) for i, name in enumerate(table.column_names)
    ]
    schema = Schema(columns=tuple(s for s, _ in described), num_rows=table.num_rows)
    columns = {s.name: p for s, p in described}
    return schema, Profile(num_rows=table.num_rows, columns=columns)


def infer_schema(table: Any) -> Schema:
    """The schema of a table (see :func:`describe`)."""
    return describe(table)[0]


def profile_table(table: Any, *, bins: int = 20) -> Profile:
    """The reference profile of a table (see :func:`describe`)."""
    return describe(table, bins=bins)[1]


def sketch(table: Any, like: Profile, *, bins: int = 20) -> Profile:
    """Profile a production window on the buckets of the reference profile ``like``.

    Numeric columns are histogrammed on the reference's edges, so sketches made like the same
    reference merge with :meth:`Profile.merge`. Categorical columns keep their own top 100
    values (unseen categories included). A reference column missing from the table is reported
    as all missing; a column the reference lacks is profiled afresh with ``bins`` buckets, as
    is a column whose type no longer fits the reference's kind.
    """
    table = _as_table(table)
    _require_profile(like, "like")
    bins = _check_bins(bins)
    present = dict(zip(table.column_names, table.columns, strict=True))
    columns: dict[str, ColumnProfile] = {}
    for name, reference in like.columns.items():
        column = present.get(name)
        if column is None:
            columns[name] = _absent(reference, table.num_rows)
        else:
            columns[name] = _sketch_column(name, column, reference, bins)
    for name, column in present.items():
        if name not in columns:
            columns[name] = _describe_column(name, column, bins)[1]
    return Profile(num_rows=table.num_rows, columns=columns)


def _as_table(table: Any) -> pa.Table:
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    elif _is_dataframe(table):
        try:
            table = pa.Table.from_pandas(table, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as error:
            raise InvalidArgumentError(
                f"The 'table' DataFrame cannot be converted to Arrow: {error}", field="table"
            ) from error
    elif not isinstance(table, pa.Table):
        raise InvalidArgumentError(
            "The 'table' argument must be a pyarrow.Table, pyarrow.RecordBatch or "
            f"pandas.DataFrame. Got {type(table).__name__} instead.",
            field="table",
        )
    repeated = sorted(name for name, n in Counter(table.column_names).items() if n > 1)
    if repeated:
        raise InvalidArgumentError(
            f"The 'table' argument must have unique column names. Repeated: {repeated}.",
            field="table",
        )
    return table


def _is_dataframe(value: Any) -> bool:
    """True for a pandas DataFrame; pandas is never imported here (a DataFrame implies it)."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, pandas.DataFrame)


def _check_bins(bins: Any) -> int:
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer):
        raise InvalidArgumentError(
            f"The 'bins' argument must be an integer in [2, {MAX_BINS}]. Got {bins!r} instead.",
            field="bins",
        )
    if not 2 <= bins <= MAX_BINS:
        raise InvalidArgumentError(
            f"The 'bins' argument must be an integer in [2, {MAX_BINS}]. Got {bins} instead.",
            field="bins",
        )
    return int(bins)


def _describe_column(
    name: str, column: pa.ChunkedArray, bins: int
) -> tuple[ColumnSchema, ColumnProfile]:
    type_name = str(_sketch.value_type(column.type))
    column = _sketch.decode(column)
    family = _sketch.type_family(column.type)
    if family in ("numeric", "datetime"):
        return _describe_numeric(name, type_name, family, column, bins)
    if family in ("boolean", "text"):
        return _describe_categorical(name, type_name, family, column)
    nulls = column.null_count
    schema = ColumnSchema(
        name, type_name, "other", nulls > 0, nulls, distinct=_sketch.count_distinct(column)
    )
    return schema, OtherProfile(count=len(column) - nulls, missing=nulls)


def _describe_numeric(
    name: str, type_name: str, kind: str, column: pa.ChunkedArray, bins: int
) -> tuple[ColumnSchema, NumericProfile]:
    data = _sketch.numeric_column(column)
    schema = ColumnSchema(
        name=name,
        type=type_name,
        kind=kind,
        nullable=data.missing > 0,
        null_count=data.missing,
        min=data.low,
        max=data.high,
        distinct=data.distinct,
        categories=_integer_categories(column, data),
    )
    edges = _sketch.reference_edges(data.values, bins)
    return schema, _numeric_profile(data, edges)


def _integer_categories(
    column: pa.ChunkedArray, data: _sketch.NumericColumn
) -> dict[str, int] | None:
    """Value frequencies of an integer column with few distinct values (labels, flags,
    ratings), keyed by the value as text, most frequent first; ``None`` otherwise."""
    if not pa.types.is_integer(column.type) or not 0 < (data.distinct or 0) <= MAX_INT_CATEGORIES:
        return None
    values, counts = np.unique(data.values, return_counts=True)
    pairs = sorted(zip(values.tolist(), counts.tolist(), strict=True), key=lambda p: (-p[1], p[0]))
    return {str(int(value)): int(count) for value, count in pairs}


def _numeric_profile(data: _sketch.NumericColumn, edges: _sketch.FloatArray) -> NumericProfile:
    values = data.values
    empty = values.size == 0
    with np.errstate(over="ignore", invalid="ignore"):  # infinities give inf or nan sums
        total, total_sq = float(values.sum()), float(np.square(values).sum())
    return NumericProfile(
        count=int(values.size),
        missing=data.missing,
        sum=total,
        sum_sq=total_sq,
        min=None if empty else float(values[0]),
        max=None if empty else float(values[-1]),
        edges=tuple(float(e) for e in edges),
        counts=tuple(int(c) for c in _sketch.bucket_counts(values, edges)),
    )


def _describe_categorical(
    name: str, type_name: str, family: str, column: pa.ChunkedArray
) -> tuple[ColumnSchema, CategoricalProfile]:
    data = _sketch.category_column(column, TOP_VALUES)
    few = data.distinct <= MAX_CATEGORIES
    kind = "boolean" if family == "boolean" else ("categorical" if few else "string")
    shortest, longest = _sketch.length_range(column) if family == "text" else (None, None)
    schema = ColumnSchema(
        name=name,
        type=type_name,
        kind=kind,
        nullable=column.null_count > 0,
        null_count=column.null_count,
        categories=dict(data.top) if few else None,
        min_length=shortest,
        max_length=longest,
        distinct=data.distinct,
    )
    kept = dict(data.top)
    profile = CategoricalProfile(
        count=data.count,
        missing=column.null_count,
        counts=kept,
        other=data.count - sum(kept.values()),
    )
    return schema, profile


def _sketch_column(
    name: str, column: pa.ChunkedArray, reference: ColumnProfile, bins: int
) -> ColumnProfile:
    decoded = _sketch.decode(column)
    family = _sketch.type_family(decoded.type)
    if isinstance(reference, NumericProfile) and family in ("numeric", "datetime"):
        edges = np.asarray(reference.edges, dtype=np.float64)
        return _numeric_profile(_sketch.numeric_column(decoded), edges)
    return _describe_column(name, column, bins)[1]


def _absent(reference: ColumnProfile, num_rows: int) -> ColumnProfile:
    if isinstance(reference, NumericProfile):
        zeros = (0,) * len(reference.counts)
        return NumericProfile(count=0, missing=num_rows, edges=reference.edges, counts=zeros)
    if isinstance(reference, CategoricalProfile):
        return CategoricalProfile(count=0, missing=num_rows)
    return OtherProfile(count=0, missing=num_rows)
