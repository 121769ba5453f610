"""Column statistics and histogram arithmetic behind :mod:`loopml.data.profile`.

Private: the dataclasses and their JSON shape live in ``profile.py``. This module turns Arrow
columns into plain numbers with pyarrow.compute and vectorised numpy, and does the arithmetic on
histograms (quantiles, re-binning, PSI). The conventions (NaN is missing, datetimes are epoch
seconds, the bucket definition) are documented in ``profile.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

PSI_FLOOR = 1e-4
"""Bucket shares below this are raised to it before PSI, so empty buckets give finite terms."""

_UNITS_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_SECONDS_PER_DAY = 86_400


# -- Arrow types -------------------------------------------------------------------------------


def value_type(arrow_type: pa.DataType) -> pa.DataType:
    """The type a column's values have: a dictionary's value type, else the type itself."""
    if pa.types.is_dictionary(arrow_type):
        return arrow_type.value_type
    return arrow_type


def decode(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """The column without dictionary encoding; string views become large strings."""
    target = value_type(column.type)
    if _is_string_view(target):
        target = pa.large_string()
    return column if target == column.type else column.cast(target)


def type_family(arrow_type: pa.DataType) -> str:
    """One of "numeric", "boolean", "text", "datetime", "other" for a decoded Arrow type."""
    t = arrow_type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "numeric"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or _is_string_view(t):
        return "text"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "datetime"
    return "other"


def _is_string_view(arrow_type: pa.DataType) -> bool:
    check = getattr(pa.types, "is_string_view", None)  # pyarrow >= 16
    return bool(check is not None and check(arrow_type))


# -- numeric and datetime columns --------------------------------------------------------------


@dataclass(frozen=True)
class NumericColumn:
    """A numeric or datetime column reduced to its sorted non-missing values."""

    values: FloatArray
    """Sorted float64 values without NaN; datetimes as seconds since the epoch."""
    missing: int
    """Nulls plus NaNs."""
    low: Any
    """Smallest value in the column's own terms: int, float or ISO 8601 string; None if empty."""
    high: Any
    distinct: int


def numeric_column(column: pa.ChunkedArray) -> NumericColumn:
    """Sort a decoded numeric or datetime column once; every statistic is read from that."""
    native, nan_count = _sorted_native(column)
    low, high = _extremes(native, column.type)
    return NumericColumn(
        values=_as_seconds(native, column.type),
        missing=column.null_count + nan_count,
        low=low,
        high=high,
        distinct=_distinct_sorted(native),
    )


def _sorted_native(column: pa.ChunkedArray) -> tuple[npt.NDArray[Any], int]:
    t = column.type
    if pa.types.is_timestamp(t) or pa.types.is_date64(t):
        column = column.cast(pa.int64())
    elif pa.types.is_date32(t):
        column = column.cast(pa.int32())
    elif pa.types.is_decimal(t):
        column = column.cast(pa.float64())
    values = np.asarray(pc.drop_null(column).to_numpy())
    nan_count = 0
    if values.dtype.kind == "f":
        nan = np.isnan(values)
        nan_count = int(np.count_nonzero(nan))
        if nan_count:
            values = values[~nan]
    return np.sort(values), nan_count


def _as_seconds(native: npt.NDArray[Any], arrow_type: pa.DataType) -> FloatArray:
    values = native.astype(np.float64)
    if pa.types.is_timestamp(arrow_type):
        return values / _UNITS_PER_SECOND[arrow_type.unit]
    if pa.types.is_date32(arrow_type):
        return values * _SECONDS_PER_DAY
    if pa.types.is_date64(arrow_type):
        return values / _UNITS_PER_SECOND["ms"]
    return values


def _extremes(native: npt.NDArray[Any], arrow_type: pa.DataType) -> tuple[Any, Any]:
    if native.size == 0:
        return None, None
    low, high = native[0].item(), native[-1].item()
    if pa.types.is_timestamp(arrow_type):
        suffix = "+00:00" if arrow_type.tz else ""
        return _iso(low, arrow_type.unit) + suffix, _iso(high, arrow_type.unit) + suffix
    if pa.types.is_date32(arrow_type):
        return _iso(low, "D"), _iso(high, "D")
    if pa.types.is_date64(arrow_type):
        return _iso(low // 86_400_000, "D"), _iso(high // 86_400_000, "D")
    return low, high


def _iso(value: int, unit: str) -> str:
    stamp = np.asarray(value, dtype=np.int64).astype(f"datetime64[{unit}]")
    return str(np.datetime_as_string(stamp))


def _distinct_sorted(values: npt.NDArray[Any]) -> int:
    if values.size == 0:
        return 0
    return 1 + int(np.count_nonzero(values[1:] != values[:-1]))


def reference_edges(values: FloatArray, bins: int) -> FloatArray:
    """Bucket edges for sorted values: one edge per distinct value when there are at most
    ``bins`` of them, else the distinct order statistics at ``floor(k * (n - 1) / bins)`` for
    k = 0 .. bins - 1 (the "lower" quantiles at 0, 1/bins, ..., (bins - 1)/bins)."""
    if values.size == 0:
        return np.empty(0, dtype=np.float64)
    distinct = np.empty(values.size, dtype=bool)
    distinct[0] = True
    np.not_equal(values[1:], values[:-1], out=distinct[1:])
    if np.count_nonzero(distinct) <= bins:
        return values[distinct]
    positions = (np.arange(bins, dtype=np.int64) * (values.size - 1)) // bins
    return np.unique(values[positions])


def bucket_counts(values: FloatArray, edges: FloatArray) -> IntArray:
    """Counts of sorted values per bucket, where x falls in ``searchsorted(edges, x, "right")``."""
    below = np.searchsorted(values, edges, side="left")
    bounds = np.concatenate(([0], below, [values.size])).astype(np.int64)
    return np.diff(bounds)


# -- categorical columns -----------------------------------------------------------------------


@dataclass(frozen=True)
class CategoryColumn:
    """A boolean or text column reduced to its most frequent values."""

    top: list[tuple[str, int]]
    """At most ``k`` (value, count) pairs, by count descending then value."""
    count: int
    """Non-null values."""
    distinct: int


def category_column(column: pa.ChunkedArray, k: int) -> CategoryColumn:
    """Value counts of a decoded boolean or text column; booleans become "true"/"false"."""
    counted = pc.value_counts(column)
    counted = counted.filter(counted.field("values").is_valid())
    values = counted.field("values")
    if pa.types.is_boolean(values.type):
        values = values.cast(pa.string())
    counts = counted.field("counts")
    total = int(pc.sum(counts).as_py() or 0)
    return CategoryColumn(top=top_values(values, counts, k), count=total, distinct=len(values))


def top_values(values: pa.Array, counts: pa.Array, k: int) -> list[tuple[str, int]]:
    """The ``k`` most frequent (value, count) pairs, ties broken by value."""
    table = pa.table({"value": values, "count": counts})
    if table.num_rows > k:
        keys = [("count", "descending"), ("value", "ascending")]
        table = table.take(pc.select_k_unstable(table, k=k, sort_keys=keys))
    pairs = zip(table["value"].to_pylist(), table["count"].to_pylist(), strict=True)
    return top_items(dict(pairs), k)


def top_items(counts: dict[str, int], k: int) -> list[tuple[str, int]]:
    """The ``k`` largest items of a value -> count mapping, by count descending then value."""
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:k]


def length_range(column: pa.ChunkedArray) -> tuple[int | None, int | None]:
    """Shortest and longest string length in characters (None, None when there are none)."""
    extremes = pc.min_max(pc.utf8_length(column))
    return extremes["min"].as_py(), extremes["max"].as_py()


def count_distinct(column: pa.ChunkedArray) -> int | None:
    """Distinct non-null values, or None where Arrow cannot hash the type (lists, structs)."""
    if column.null_count == len(column):
        return 0
    try:
        return int(pc.count_distinct(column).as_py())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
        return None


# -- histogram arithmetic ----------------------------------------------------------------------


def bucket_bounds(edges: FloatArray, low: float, high: float) -> tuple[FloatArray, FloatArray]:
    """Finite-as-possible bounds of each bucket: the outer buckets end at the min and max."""
    lower = np.concatenate(([low], edges))
    upper = np.concatenate((edges, [high]))
    return np.maximum(lower, low), np.minimum(upper, high)


def histogram_quantile(
    edges: FloatArray, counts: IntArray, low: float, high: float, q: float
) -> float:
    """Approximate q-quantile (0 < q < 1) assuming values spread evenly within each bucket."""
    lower, upper = bucket_bounds(edges, low, high)
    cumulative = np.cumsum(counts)
    target = q * float(cumulative[-1])
    b = min(int(np.searchsorted(cumulative, target, side="left")), counts.size - 1)
    start, end = float(lower[b]), float(upper[b])
    width = end - start
    if not math.isfinite(width) or width <= 0:
        return start if math.isfinite(start) else end
    fraction = (target - float(cumulative[b] - counts[b])) / float(counts[b])
    return start + fraction * width


def rebin(
    edges: FloatArray, counts: IntArray, low: float, high: float, target: FloatArray
) -> FloatArray:
    """Approximate counts of a histogram on the ``target`` edges.

    Each bucket's mass is spread evenly over its bounds (see :func:`bucket_bounds`); a bucket of
    zero width is a point mass, and one of infinite width sits just below its upper bound. With
    ``target == edges`` the result equals ``counts`` exactly.
    """
    lower, upper = bucket_bounds(edges, low, high)
    lower, upper, cut = lower[:, None], upper[:, None], target[None, :]
    width = upper - lower
    regular = np.isfinite(width) & (width > 0)
    point = (width == 0) & np.isfinite(lower)
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.clip((cut - lower) / width, 0.0, 1.0)
    fraction = np.where(regular, spread, np.where(point, lower < cut, upper <= cut))
    below = (counts[:, None] * fraction).sum(axis=0)
    total = float(counts.sum())
    return np.maximum(np.diff(np.concatenate(([0.0], below, [total]))), 0.0)


def psi(expected: FloatArray, actual: FloatArray) -> float:
    """Population stability index of ``actual`` against ``expected`` (both bucket counts)."""
    p = np.maximum(expected / expected.sum(), PSI_FLOOR)
    q = np.maximum(actual / actual.sum(), PSI_FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))
