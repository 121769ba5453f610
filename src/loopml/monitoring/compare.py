"""Compare a current window with a reference: drift per column, and data quality.

:func:`compare` takes the reference as a :class:`~loopml.data.profile.Profile` or a table, and
the current data as a :class:`~loopml.monitoring.sketches.WindowSketch` or a table (tables:
pandas DataFrames, pyarrow Tables or RecordBatches, or paths of CSV/TSV/Parquet files). It
returns a frozen :class:`DriftResult`: one :class:`ColumnDrift` per column with its measures,
status and reason, and the data-quality findings. The same input always gives the same result.

Statuses (:data:`STATUSES`):

* ``"drift"``: the effect reaches the rule's threshold and the test is significant;
* ``"ok"``: tested, no drift;
* ``"insufficient_data"``: fewer than ``rule.min_rows`` rows in the window, or non-missing
  values on either side: no verdict, which is not the same as "no drift";
* ``"all_missing"``: no values at all on one side (the column may be absent);
* ``"constant"``: the reference holds a single value, so there is no spread to measure a
  shift against (new values show up as quality findings);
* ``"wrong_type"``: the window's values are of another type than the reference's (text for a
  numeric column...), or the column holds lists, structs or binary values.

A bad column never stops the others: its status and reason say what is wrong.

With two tables, numeric columns also get the exact two-sample Kolmogorov-Smirnov test
(``ks_exact``) next to the binned measures; the verdict always comes from the binned measures,
so a table and a sketch of the same rows give the same verdict.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from loopml.data import _sketch
from loopml.data.profile import (
    CategoricalProfile,
    ColumnProfile,
    NumericProfile,
    OtherProfile,
    Profile,
)
from loopml.errors import InvalidArgumentError
from loopml.monitoring import drift as measures_
from loopml.monitoring.drift import DriftRule, TestResult
from loopml.monitoring.quality import QualityFinding, QualityRule, column_quality
from loopml.monitoring.sketches import (
    CategoricalWindow,
    ColumnWindow,
    NumericWindow,
    WindowSketch,
    _arrow_numbers,
    _column_layout,
    _empty_fold,
    _Fold,
    _fold_column,
    _fold_numbers,
    bucket_counts,
)

__all__ = ["STATUSES", "ColumnDrift", "DriftResult", "compare"]

STATUSES = ("ok", "drift", "insufficient_data", "constant", "all_missing", "wrong_type")
RESULT_VERSION = 1
PREDICTION_PREFIX = "output."
"""Columns named like this are model outputs (the prediction log's convention) unless
``predictions`` says otherwise."""
TOP_VALUES = 100
MAX_BINS = 1000
OTHER_LABEL = "(other)"
_PARALLEL_ROWS = 50_000
EDGE_SAMPLE = 1 << 17
"""Above this many values, a reference table's quantile edges come from a sample this big."""
EDGE_SEED = 20_240_601

_EFFECT_NAMES = {
    "wasserstein": "Wasserstein",
    "psi": "PSI",
    "ks": "KS",
    "jensen_shannon": "Jensen-Shannon",
    "cohen_h": "Cohen's h",
    "chi_square": "chi-square",
}


# -- results -------------------------------------------------------------------------------------


def _encode(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _decode(value: Any) -> Any:
    return float(value) if value in ("inf", "-inf", "nan") else value


_TEXT_DETAILS = ("category", "binned_as")


@dataclass(frozen=True)
class ColumnDrift:
    """The drift verdict of one column."""

    column: str
    kind: str
    """The reference's kind: "numeric", "categorical" or "other"."""
    role: str
    """Either "feature" or "prediction" (a model output)."""
    status: str
    """One of :data:`STATUSES`."""
    reason: str
    """Why: the effect and p-value against the rule, or what is wrong with the column."""
    effect: float | None = None
    """The rule's effect measure (``effect_measure``)."""
    effect_measure: str | None = None
    threshold: float | None = None
    pvalue: float | None = None
    """The rule's test's p-value (``test``)."""
    test: str | None = None
    level: float | None = None
    """The significance level the p-value was held to (alpha / columns tested)."""
    measures: dict[str, float | None] = field(default_factory=dict)
    """Every measure computed: psi, wasserstein, wasserstein_abs, jensen_shannon, ks,
    ks_pvalue, chi_square, chi_square_pvalue, cohen_h, ks_exact, ks_exact_pvalue..."""
    details: dict[str, Any] = field(default_factory=dict)
    """Descriptive figures: means and standard deviations, the category that moved most."""
    reference_count: int = 0
    current_count: int = 0
    current_rows: int = 0

    @property
    def drifted(self) -> bool:
        return self.status == "drift"

    @property
    def tested(self) -> bool:
        return self.status in ("ok", "drift")

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "kind": self.kind,
            "role": self.role,
            "status": self.status,
            "reason": self.reason,
            "effect": _encode(self.effect),
            "effect_measure": self.effect_measure,
            "threshold": self.threshold,
            "pvalue": _encode(self.pvalue),
            "test": self.test,
            "level": self.level,
            "measures": {k: _encode(v) for k, v in self.measures.items()},
            "details": {
                k: v if k in _TEXT_DETAILS else _encode(v) for k, v in self.details.items()
            },
            "reference_count": self.reference_count,
            "current_count": self.current_count,
            "current_rows": self.current_rows,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ColumnDrift:
        return cls(
            column=str(d["column"]),
            kind=str(d["kind"]),
            role=str(d["role"]),
            status=str(d["status"]),
            reason=str(d["reason"]),
            effect=_decode(d.get("effect")),
            effect_measure=d.get("effect_measure"),
            threshold=d.get("threshold"),
            pvalue=_decode(d.get("pvalue")),
            test=d.get("test"),
            level=d.get("level"),
            measures={str(k): _decode(v) for k, v in dict(d.get("measures", {})).items()},
            details={
                str(k): v if k in _TEXT_DETAILS else _decode(v)
                for k, v in dict(d.get("details", {})).items()
            },
            reference_count=int(d.get("reference_count", 0)),
            current_count=int(d.get("current_count", 0)),
            current_rows=int(d.get("current_rows", 0)),
        )


@dataclass(frozen=True)
class DriftResult:
    """Drift and data quality of a current window against a reference."""

    columns: tuple[ColumnDrift, ...]
    """One verdict per column, in the reference's column order."""
    quality: tuple[QualityFinding, ...]
    rule: DriftRule
    quality_rule: QualityRule
    reference_rows: int
    current_rows: int
    tested: int
    """Columns that got a verdict ("ok" or "drift"): the Bonferroni divisor."""
    ignored: tuple[str, ...] = ()
    """Columns of the current data that the reference lacks."""

    @property
    def status(self) -> str:
        """Overall: "drift" when any column drifted; "insufficient_data" when no column
        could be tested; else "ok"."""
        if any(c.drifted for c in self.columns):
            return "drift"
        return "ok" if self.tested else "insufficient_data"

    @property
    def flagged(self) -> tuple[str, ...]:
        """The names of the drifted columns."""
        return tuple(c.column for c in self.columns if c.drifted)

    @property
    def has_drift(self) -> bool:
        return bool(self.flagged)

    @property
    def features(self) -> tuple[ColumnDrift, ...]:
        return tuple(c for c in self.columns if c.role == "feature")

    @property
    def predictions(self) -> tuple[ColumnDrift, ...]:
        """The model-output columns' verdicts (prediction drift)."""
        return tuple(c for c in self.columns if c.role == "prediction")

    @property
    def prediction_drift(self) -> bool:
        return any(c.drifted for c in self.predictions)

    def column(self, name: str) -> ColumnDrift:
        for c in self.columns:
            if c.column == name:
                return c
        raise InvalidArgumentError(
            f"The result has no column {name!r}. Expected one of "
            f"{[c.column for c in self.columns]}.",
            field="name",
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (non-finite floats as "inf", "-inf", "nan"); see :meth:`from_dict`."""
        return {
            "version": RESULT_VERSION,
            "status": self.status,
            "flagged": list(self.flagged),
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "tested": self.tested,
            "rule": self.rule.to_dict(),
            "quality_rule": self.quality_rule.to_dict(),
            "columns": [c.to_dict() for c in self.columns],
            "quality": [f.to_dict() for f in self.quality],
            "ignored": list(self.ignored),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DriftResult:
        if d.get("version") != RESULT_VERSION:
            raise InvalidArgumentError(
                f"The drift result has version {d.get('version')!r}; this loopml reads version "
                f"{RESULT_VERSION}.",
                field="version",
            )
        try:
            return cls(
                columns=tuple(ColumnDrift.from_dict(c) for c in d["columns"]),
                quality=tuple(QualityFinding.from_dict(f) for f in d["quality"]),
                rule=DriftRule.from_dict(d["rule"]),
                quality_rule=QualityRule.from_dict(d["quality_rule"]),
                reference_rows=int(d["reference_rows"]),
                current_rows=int(d["current_rows"]),
                tested=int(d["tested"]),
                ignored=tuple(str(n) for n in d.get("ignored", ())),
            )
        except InvalidArgumentError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise InvalidArgumentError(
                f"The 'd' argument is not a valid drift result ({type(error).__name__}: {error}).",
                field="d",
            ) from error


# -- inputs --------------------------------------------------------------------------------------


def _is_dataframe(value: Any) -> bool:
    import sys

    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, pandas.DataFrame)


_TABLE_SUFFIXES = (".parquet", ".pq", ".csv", ".csv.gz", ".tsv", ".tsv.gz")


def _read(value: Any, name: str) -> pa.Table:
    """A pyarrow Table from a table object or a CSV/TSV/Parquet path."""
    if isinstance(value, pa.Table):
        table = value
    elif isinstance(value, pa.RecordBatch):
        table = pa.Table.from_batches([value])
    elif _is_dataframe(value):
        try:
            table = pa.Table.from_pandas(value, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as error:
            raise InvalidArgumentError(
                f"The {name!r} DataFrame cannot be converted to Arrow: {error}", field=name
            ) from error
    elif isinstance(value, str | os.PathLike):
        table = _read_file(Path(value), name)
    else:
        raise InvalidArgumentError(
            f"The {name!r} argument must be a pandas DataFrame, a pyarrow Table or RecordBatch, "
            f"a path to a .csv, .tsv or .parquet file"
            + (", or a Profile" if name == "reference" else ", or a WindowSketch")
            + f". Got {type(value).__name__} instead.",
            field=name,
        )
    repeated = sorted({n for n in table.column_names if table.column_names.count(n) > 1})
    if repeated:
        raise InvalidArgumentError(
            f"The {name!r} table must have unique column names. Repeated: {repeated}.",
            field=name,
        )
    return table


def _read_file(path: Path, name: str) -> pa.Table:
    from loopml.data._tables import read_table_file

    if not path.name.lower().endswith(_TABLE_SUFFIXES):
        raise InvalidArgumentError(
            f"The {name!r} file must end in one of {', '.join(_TABLE_SUFFIXES)}. Got "
            f"{path.name!r}.",
            field=name,
        )
    if not path.is_file():
        raise InvalidArgumentError(f"The {name!r} file {str(path)!r} does not exist.", field=name)
    try:
        return read_table_file(str(path))
    except InvalidArgumentError as error:
        raise InvalidArgumentError(error.message, field=name) from None


def _check_bins(bins: Any) -> int:
    if isinstance(bins, bool) or not isinstance(bins, int) or not 2 <= bins <= MAX_BINS:
        raise InvalidArgumentError(
            f"The 'bins' argument must be an integer in [2, {MAX_BINS}]. Got {bins!r}.",
            field="bins",
        )
    return bins


def _names(value: Any, name: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence | set | frozenset | tuple):
        raise InvalidArgumentError(
            f"The {name!r} argument must be a list of column names. Got {value!r}.", field=name
        )
    names = list(value)
    if not names and name == "columns":
        raise InvalidArgumentError(
            "The 'columns' argument must name at least one column (or be None for all).",
            field=name,
        )
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise InvalidArgumentError(
            f"The {name!r} argument must hold column names (strings). Got {bad!r}.", field=name
        )
    return list(dict.fromkeys(names))


def _select(available: Sequence[str], columns: list[str] | None, what: str) -> list[str]:
    if columns is None:
        return list(available)
    unknown = [n for n in columns if n not in available]
    if unknown:
        raise InvalidArgumentError(
            f"The 'columns' argument names columns the {what} lacks: {unknown}. Expected some "
            f"of {list(available)}.",
            field="columns",
        )
    return columns


# -- building the reference and the window from tables -------------------------------------------


@dataclass
class _Pair:
    profile: ColumnProfile
    fold: _Fold | None = None
    ks: TestResult | None = None


def _quantile_edges(values: Any, low: float, bins: int) -> Any:
    """The reference's bucket edges, by the rule of :func:`loopml.data.profile.describe`.

    The first edge is the column's minimum ``low``; the others are the "lower" quantiles at
    1/bins, ..., (bins - 1)/bins. Up to :data:`EDGE_SAMPLE` values they are exact order
    statistics, as ``describe`` computes them; above, they are taken from a fixed
    pseudo-random sample of that many values (the same input always gives the same edges;
    the counts on them are always exact). A column with at most ``bins`` distinct values gets
    one edge per value.
    """
    n = values.size
    if n == 0:
        return values[:0]
    sample = values
    if n > EDGE_SAMPLE:
        picks = np.random.default_rng(EDGE_SEED).integers(0, n, EDGE_SAMPLE)
        sample = values[picks]
    m = sample.size
    if m > bins:
        positions = (np.arange(bins, dtype=np.int64) * (m - 1)) // bins
        quantiles = np.partition(sample, positions)[positions]
        quantiles[0] = low
        if np.all(quantiles[1:] > quantiles[:-1]):
            return quantiles
    distinct = np.unique(sample)
    if distinct.size <= bins:
        found = sum(int(np.count_nonzero(values == value)) for value in distinct.tolist())
        if found == n:  # every value is one of these: one edge per distinct value
            return distinct
    return _sketch.reference_edges(np.sort(values), bins)


def _reference_column(column: pa.ChunkedArray, bins: int) -> tuple[ColumnProfile, Any]:
    """The column's profile as :func:`loopml.data.profile.describe` makes it (for large
    numeric columns with sampled quantile edges, see :func:`_quantile_edges`; sums may differ
    in the last bits), and its values for a numeric column."""
    decoded = _sketch.decode(column)
    family = _sketch.type_family(decoded.type)
    if family in ("numeric", "datetime"):
        values, nan_count = _arrow_numbers(decoded)
        empty = values.size == 0
        low = None if empty else float(values.min())
        edges = _quantile_edges(values, low or 0.0, bins)
        with np.errstate(over="ignore", invalid="ignore"):
            total, total_sq = float(values.sum()), float(np.dot(values, values))
        profile = NumericProfile(
            count=int(values.size),
            missing=decoded.null_count + nan_count,
            sum=total,
            sum_sq=total_sq,
            min=low,
            max=None if empty else float(values.max()),
            edges=tuple(float(e) for e in edges),
            counts=tuple(int(c) for c in bucket_counts(values, edges)),
        )
        return profile, values
    if family in ("boolean", "text"):
        categories = _sketch.category_column(decoded, TOP_VALUES)
        kept = dict(categories.top)
        other = categories.count - sum(kept.values())
        return CategoricalProfile(categories.count, decoded.null_count, kept, other), None
    nulls = decoded.null_count
    return OtherProfile(count=len(decoded) - nulls, missing=nulls), None


def _pair_task(
    name: str,
    reference: pa.ChunkedArray,
    current: pa.ChunkedArray | None,
    rows: int,
    bins: int,
    exact: bool,
) -> _Pair:
    profile, ref_values = _reference_column(reference, bins)
    layout = _column_layout(name, profile, 0, 0)
    if current is None:
        return _Pair(profile, _empty_fold(layout, rows, False))
    decoded = _sketch.decode(current)
    family = _sketch.type_family(decoded.type)
    if ref_values is None or family not in ("numeric", "datetime"):
        return _Pair(profile, _fold_column(layout, current, rows))
    values, nan_count = _arrow_numbers(decoded)
    with np.errstate(over="ignore", invalid="ignore"):  # infinities give inf or nan sums
        fold = _fold_numbers(layout, values, decoded.null_count + nan_count, rows)
    ks = None
    if exact and ref_values.size and values.size:
        a, b = np.sort(ref_values), np.sort(values)
        statistic = measures_._ks_statistic_sorted(a, b)
        ks = TestResult(statistic, measures_._ks_pvalue(statistic, float(a.size), float(b.size)))
    return _Pair(profile, fold, ks)


def _map(func: Any, items: list[Any], threads: int | None, rows: int) -> list[Any]:
    workers = threads if threads is not None else min(os.cpu_count() or 1, 8)
    workers = max(1, min(workers, len(items)))
    if workers == 1 or rows < _PARALLEL_ROWS:
        return [func(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="loopml-drift") as pool:
        return list(pool.map(func, items))


def _from_tables(
    reference: pa.Table,
    current: pa.Table,
    names: list[str],
    bins: int,
    exact: bool,
    threads: int | None,
) -> tuple[Profile, WindowSketch, dict[str, TestResult]]:
    present = dict(zip(current.column_names, current.columns, strict=True))
    rows = current.num_rows

    def task(name: str) -> _Pair:
        return _pair_task(name, reference.column(name), present.get(name), rows, bins, exact)

    pairs = _map(task, names, threads, max(reference.num_rows, rows))
    profile = Profile(reference.num_rows, {n: p.profile for n, p in zip(names, pairs, strict=True)})
    folds = [p.fold for p in pairs]
    sketch = WindowSketch._from_folds(profile, names, folds, rows)  # type: ignore[arg-type]
    ks = {n: p.ks for n, p in zip(names, pairs, strict=True) if p.ks is not None}
    return profile, sketch, ks


def _sketch_table(
    reference: Profile, names: list[str], table: pa.Table, threads: int | None
) -> WindowSketch:
    sketch = WindowSketch(reference, columns=names)
    present = dict(zip(table.column_names, table.columns, strict=True))
    rows = table.num_rows

    def task(name: str) -> _Fold:
        return _fold_column(sketch._column_layout(name), present.get(name), rows)

    sketch._add_folds(_map(task, names, threads, rows), rows)
    return sketch


# -- measures of one column ----------------------------------------------------------------------


def _numeric_measures(
    reference: NumericProfile, window: NumericWindow
) -> tuple[dict[str, float | None], dict[str, Any]]:
    edges = np.asarray(reference.edges, dtype=np.float64)
    ref = np.asarray(reference.counts, dtype=np.float64)
    cur = np.asarray(window.counts, dtype=np.float64)
    discrete = edges.size < 3 or (reference.max is not None and edges[-1] >= reference.max)
    distance = measures_.binned_wasserstein(edges, ref, cur, discrete=discrete)
    spread = measures_.histogram_std(edges, ref, discrete=discrete)
    ks = measures_.ks_binned(ref, cur)
    chi = measures_.chi_square(ref, cur)
    ref_std, cur_std = reference.std, window.std
    ref_mean, cur_mean = reference.mean, window.mean
    scaled = ref_std is not None and ref_std > 0 and math.isfinite(ref_std)
    found: dict[str, float | None] = {
        "wasserstein": distance / spread if spread > 0 and math.isfinite(spread) else None,
        "wasserstein_abs": distance,
        "psi": measures_.psi(ref, cur),
        "jensen_shannon": measures_.jensen_shannon(ref, cur),
        "ks": ks.statistic,
        "ks_pvalue": ks.pvalue,
        "chi_square": chi.statistic,
        "chi_square_pvalue": chi.pvalue,
        "mean_change": (
            (cur_mean - ref_mean) / ref_std  # type: ignore[operator]
            if scaled and cur_mean is not None
            else None
        ),
        "std_ratio": cur_std / ref_std if scaled and cur_std is not None else None,  # type: ignore[operator]
    }
    details = {
        "reference_mean": ref_mean,
        "current_mean": cur_mean,
        "reference_std": ref_std,
        "current_std": cur_std,
        "chi_square_dof": chi.dof,
        "binned_as": "discrete" if discrete else "continuous",
    }
    return found, details


def _categorical_measures(
    reference: CategoricalProfile, window: CategoricalWindow
) -> tuple[dict[str, float | None], dict[str, Any]]:
    labels = [*reference.counts, OTHER_LABEL]
    ref = np.asarray([*reference.counts.values(), reference.other], dtype=np.float64)
    cur = np.asarray(
        [*(window.counts[c] for c in reference.counts), window.other], dtype=np.float64
    )
    chi = measures_.chi_square(ref, cur)
    p, q = ref / ref.sum(), cur / cur.sum()
    h = np.abs(2.0 * np.arcsin(np.sqrt(q)) - 2.0 * np.arcsin(np.sqrt(p)))
    moved = int(np.argmax(h))
    found: dict[str, float | None] = {
        "cohen_h": float(h[moved]),
        "jensen_shannon": measures_.jensen_shannon(ref, cur),
        "psi": measures_.psi(ref, cur),
        "chi_square": chi.statistic,
        "chi_square_pvalue": chi.pvalue,
        "max_share_change": float(np.max(np.abs(q - p))),
    }
    details = {
        "category": labels[moved],
        "reference_share": float(p[moved]),
        "current_share": float(q[moved]),
        "chi_square_dof": chi.dof,
    }
    return found, details


# -- statuses ------------------------------------------------------------------------------------


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0 or 1e-3 <= abs(value) < 1e4:
        return f"{value:.3g}"
    return f"{value:.2g}"


def _unusable(
    reference: ColumnProfile, window: ColumnWindow, rule: DriftRule, rows: int
) -> tuple[str, str] | None:
    """(status, reason) when the column cannot be tested, else None."""
    reference_rows = reference.count + reference.missing
    if reference_rows < rule.min_rows:
        return (
            "insufficient_data",
            f"the reference has {reference_rows:,} rows; at least {rule.min_rows:,} are needed",
        )
    if reference.count == 0:
        return "all_missing", "the reference has no values in this column"
    if isinstance(reference, OtherProfile):
        return (
            "wrong_type",
            "the reference column holds lists, structs or binary values; drift is measured on "
            "numeric and categorical columns",
        )
    if rows < rule.min_rows:
        return (
            "insufficient_data",
            f"the current window has {rows:,} rows; at least {rule.min_rows:,} are needed",
        )
    if reference.count < rule.min_rows:
        return (
            "insufficient_data",
            f"the reference has {reference.count:,} non-missing values; at least "
            f"{rule.min_rows:,} are needed",
        )
    expected = "numbers" if isinstance(reference, NumericProfile) else "text"
    if window.count == 0 and window.mismatched:
        return (
            "wrong_type",
            f"the current values are not {expected} ({window.mismatched:,} of "
            f"{window.rows:,} rows)",
        )
    if window.count == 0:
        if window.present == 0:
            return "all_missing", "the column is absent from the current data"
        return "all_missing", f"all {window.rows:,} current values are missing"
    if window.count < rule.min_rows:
        return (
            "insufficient_data",
            f"the current window has {window.count:,} non-missing values; at least "
            f"{rule.min_rows:,} are needed",
        )
    single = (
        len(reference.edges) == 1
        if isinstance(reference, NumericProfile)
        else isinstance(reference, CategoricalProfile)
        and reference.other == 0
        and len(reference.counts) == 1
    )
    if single:
        value = (
            _fmt(reference.min)
            if isinstance(reference, NumericProfile)
            else repr(next(iter(reference.counts)))
        )
        return (
            "constant",
            f"the reference holds a single value ({value}), so there is no spread to measure "
            "drift against; new values are reported as quality findings",
        )
    return None


def _verdict(
    found: dict[str, float | None], kind: str, rule: DriftRule, level: float
) -> tuple[str, str, float | None, float | None]:
    measure, test = rule.effect_for(kind), rule.test_for(kind)
    threshold = rule.threshold_for(kind)
    effect, pvalue = found.get(measure), found.get(f"{test}_pvalue")
    effect_text = f"{_EFFECT_NAMES[measure]} {_fmt(effect)}"
    test_text = f"{_EFFECT_NAMES[test]} p = {_fmt(pvalue)}"
    if effect is None or pvalue is None:
        return "ok", f"{effect_text}: not measurable", effect, pvalue
    big = effect >= threshold
    significant = pvalue < level
    if big and significant:
        reason = f"{effect_text} >= {_fmt(threshold)} and {test_text} < {_fmt(level)}"
        return "drift", reason, effect, pvalue
    if not big:
        reason = f"{effect_text} < {_fmt(threshold)} ({test_text})"
    else:
        reason = f"{test_text} >= {_fmt(level)}: not significant ({effect_text})"
    return "ok", reason, effect, pvalue


def _column_measures(
    reference: ColumnProfile, window: ColumnWindow
) -> tuple[dict[str, float | None], dict[str, Any]]:
    if not reference.count or not window.count:
        return {}, {}
    if isinstance(reference, NumericProfile) and isinstance(window, NumericWindow):
        return _numeric_measures(reference, window)
    if isinstance(reference, CategoricalProfile) and isinstance(window, CategoricalWindow):
        return _categorical_measures(reference, window)
    return {}, {}


def _evaluate(
    reference: Profile,
    sketch: WindowSketch,
    names: list[str],
    predictions: set[str],
    rule: DriftRule,
    quality_rule: QualityRule,
    exact: Mapping[str, TestResult],
    ignored: tuple[str, ...],
) -> DriftResult:
    windows = sketch.windows()
    rows = sketch.num_rows
    blocked: dict[str, tuple[str, str] | None] = {}
    for name in names:
        blocked[name] = _unusable(reference.columns[name], windows[name], rule, rows)
    tested = sum(1 for b in blocked.values() if b is None)
    level = rule.level(tested)
    quality_level = quality_rule.level(len(names))
    columns: list[ColumnDrift] = []
    findings: list[QualityFinding] = []
    for name in names:
        ref, window = reference.columns[name], windows[name]
        found, details = _column_measures(ref, window)
        ks = exact.get(name)
        if ks is not None:
            found["ks_exact"], found["ks_exact_pvalue"] = ks.statistic, ks.pvalue
        kind = ref.kind
        effect = pvalue = None
        status_reason = blocked[name]
        if status_reason is None:
            status, reason, effect, pvalue = _verdict(found, kind, rule, level)
        else:
            status, reason = status_reason
        usable = status in ("ok", "drift")
        columns.append(
            ColumnDrift(
                column=name,
                kind=kind,
                role="prediction" if name in predictions else "feature",
                status=status,
                reason=reason,
                effect=effect,
                effect_measure=rule.effect_for(kind) if usable else None,
                threshold=rule.threshold_for(kind) if usable else None,
                pvalue=pvalue,
                test=rule.test_for(kind) if usable else None,
                level=level if usable else None,
                measures=found,
                details=details,
                reference_count=ref.count,
                current_count=window.count,
                current_rows=window.rows,
            )
        )
        if rows:
            findings += column_quality(name, ref, window, rule=quality_rule, level=quality_level)
    return DriftResult(
        columns=tuple(columns),
        quality=tuple(findings),
        rule=rule,
        quality_rule=quality_rule,
        reference_rows=reference.num_rows,
        current_rows=rows,
        tested=tested,
        ignored=ignored,
    )


# -- the entry point -----------------------------------------------------------------------------


def compare(
    reference: Any,
    current: Any,
    *,
    columns: Sequence[str] | None = None,
    predictions: Sequence[str] | None = None,
    rule: DriftRule | None = None,
    quality: QualityRule | None = None,
    bins: int = 20,
    exact: bool = False,
    threads: int | None = None,
) -> DriftResult:
    """Drift and data quality of ``current`` against ``reference``.

    ``reference``: a :class:`~loopml.data.profile.Profile` or a table (a pandas DataFrame, a
    pyarrow Table or RecordBatch, or the path of a .csv, .tsv or .parquet file), profiled with
    ``bins`` quantile buckets per numeric column. ``current``: a
    :class:`~loopml.monitoring.sketches.WindowSketch` made on that reference profile, or a
    table. ``columns`` limits the comparison to some reference columns (default: all);
    ``predictions`` names the model-output columns, reported with the role "prediction"
    (default: the columns named ``output.*``). ``rule`` and ``quality`` set the thresholds
    (:class:`~loopml.monitoring.drift.DriftRule`,
    :class:`~loopml.monitoring.quality.QualityRule`). With two tables, ``exact`` adds the
    exact Kolmogorov-Smirnov test of numeric columns. ``threads`` caps the threads that
    profile large tables column by column (default: one per CPU, at most 8).
    """
    rule = DriftRule() if rule is None else rule
    quality = QualityRule() if quality is None else quality
    if not isinstance(rule, DriftRule):
        raise InvalidArgumentError(
            f"The 'rule' argument must be a DriftRule. Got {type(rule).__name__}.", field="rule"
        )
    if not isinstance(quality, QualityRule):
        raise InvalidArgumentError(
            f"The 'quality' argument must be a QualityRule. Got {type(quality).__name__}.",
            field="quality",
        )
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)):
        raise InvalidArgumentError(
            f"The 'threads' argument must be a positive integer. Got {threads!r}.",
            field="threads",
        )
    if threads is not None and threads < 1:
        raise InvalidArgumentError(
            f"The 'threads' argument must be a positive integer. Got {threads!r}.",
            field="threads",
        )
    bins = _check_bins(bins)
    chosen = _names(columns, "columns")
    outputs = _names(predictions, "predictions")
    exact_ks: dict[str, TestResult] = {}
    ignored: tuple[str, ...] = ()

    if isinstance(current, WindowSketch):
        if not isinstance(reference, Profile):
            raise InvalidArgumentError(
                "With a WindowSketch as 'current', the 'reference' argument must be the Profile "
                f"the sketch was made on. Got {type(reference).__name__}.",
                field="reference",
            )
        sketch = current.copy()
        names = _select(sketch.columns, chosen, "sketch")
        if WindowSketch(reference, columns=sketch.columns).fingerprint != sketch.fingerprint:
            raise InvalidArgumentError(
                "The 'current' sketch was made on another reference profile (its buckets or "
                "categories differ from the 'reference' argument's).",
                field="current",
            )
        profile = reference
    elif isinstance(reference, Profile):
        names = _select(list(reference.columns), chosen, "reference")
        table = _read(current, "current")
        profile = reference
        sketch = _sketch_table(reference, names, table, threads)
        ignored = tuple(n for n in table.column_names if n not in reference.columns)
    else:
        ref_table = _read(reference, "reference")
        cur_table = _read(current, "current")
        names = _select(ref_table.column_names, chosen, "reference")
        profile, sketch, exact_ks = _from_tables(ref_table, cur_table, names, bins, exact, threads)
        ignored = tuple(n for n in cur_table.column_names if n not in ref_table.column_names)

    if outputs is None:
        prediction_names = {n for n in names if n.startswith(PREDICTION_PREFIX)}
    else:
        unknown = [n for n in outputs if n not in names]
        if unknown:
            raise InvalidArgumentError(
                f"The 'predictions' argument names columns that are not compared: {unknown}. "
                f"Expected some of {names}.",
                field="predictions",
            )
        prediction_names = set(outputs)
    return _evaluate(profile, sketch, names, prediction_names, rule, quality, exact_ks, ignored)
