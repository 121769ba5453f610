"""Checking a table against :class:`~loopml.data.rules.Rules`: the report and the
vectorised checks (pyarrow.compute and numpy; only failing example rows are materialised)."""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loopml.data._expr import EvaluationError, evaluate
from loopml.data.rules import (
    Bound,
    Check,
    ColumnRule,
    Rules,
    _as_rules,
    _error,
)
from loopml.errors import DataValidationError

__all__ = ["RuleFailure", "ValidationReport", "validate"]

_MAX_LISTED = 10
_ARROW_ERRORS = (pa.ArrowException, TypeError, ValueError, ArithmeticError)


# ------------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class RuleFailure:
    """One broken rule: its stable id, kind, column, failing-row count, message and examples."""

    rule: str
    kind: str
    column: str | None
    count: int
    message: str
    examples: tuple[dict[str, Any], ...] = ()

    def line(self) -> str:
        """The message, followed by the failing rows the examples show."""
        rows = [r for e in self.examples for r in e.get("rows", [e["row"]])][:_MAX_LISTED]
        listed = ", ".join(map(str, rows)) + (", ..." if self.count > len(rows) else "")
        return (
            f"{self.message} ({'row' if len(rows) == 1 else 'rows'} {listed})"
            if rows
            else self.message
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "examples": list(self.examples)}


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of :func:`validate`: every failed rule, not just the first."""

    passed: bool
    rows: int
    failures: tuple[RuleFailure, ...]
    checked: int

    def summary(self) -> str:
        """A header line, then one line per failure."""
        if self.passed:
            return f"all {self.checked} rules passed on {_rows(self.rows)}"
        head = f"{len(self.failures)} of {self.checked} rules failed on {_rows(self.rows)}:"
        return "\n".join([head, *(f"  {failure.line()}" for failure in self.failures)])

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "failures": [f.to_dict() for f in self.failures]}


def _rows(n: int) -> str:
    return f"{n:,} row" if n == 1 else f"{n:,} rows"


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value.hex() if isinstance(value, bytes) else str(value)


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(_json_safe(value))


# ------------------------------------------------------------------------------ validation


def validate(
    data: Any,
    rules: Rules | Mapping[str, Any] | str | os.PathLike[str],
    *,
    strict: bool = False,
    max_examples: int = 5,
) -> ValidationReport:
    """Check ``data`` (a pyarrow Table or pandas DataFrame) against ``rules``.

    ``rules`` may be :class:`Rules`, a mapping of the YAML shape, YAML text or a path. With
    ``strict=True`` a failed validation raises :class:`~loopml.errors.DataValidationError`
    whose message is the summary and whose ``report`` is the :class:`ValidationReport`.
    """
    parsed = _as_rules(rules)
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 0:
        raise _error("max_examples", f"must be a whole number, 0 or more, got {max_examples!r}")
    ctx = _Context(data, max_examples)
    _check_rows(ctx, parsed)
    _check_extra_columns(ctx, parsed)
    for column in parsed.columns:
        _check_column(ctx, column)
    for key in parsed.unique:
        if _ready(ctx, key, f"unique.{'+'.join(key)}", "unique", f"unique key ({', '.join(key)})"):
            ctx.record(_duplicates(ctx, key, f"unique.{'+'.join(key)}", None))
    for check in parsed.checks:
        _run_check(ctx, check)
    report = ValidationReport(not ctx.failures, ctx.rows, tuple(ctx.failures), ctx.checked)
    if strict and not report.passed:
        raise DataValidationError(report.summary(), report=report)
    return report


class _Context:
    """The data as Arrow columns, plus the failures found so far."""

    def __init__(self, data: Any, max_examples: int) -> None:
        self.data = data
        self.table, self.unreadable, self.names = _to_table(data)
        self.rows: int = self.table.num_rows
        self.max_examples = max_examples
        self.failures: list[RuleFailure] = []
        self.checked = 0
        self.skipped: set[str] = set()
        self._values: dict[str, pa.ChunkedArray] = {}

    def record(self, failure: RuleFailure | None) -> None:
        """Count one evaluated rule, and keep its failure if it failed."""
        self.checked += 1
        if failure is not None:
            self.failures.append(failure)

    def unusable(self, name: str) -> str | None:
        """Why column ``name`` cannot be read, or None when it can."""
        if name in self.unreadable:
            return self.unreadable[name]
        return None if name in self.table.column_names else "the data does not have it"

    def values(self, name: str) -> pa.ChunkedArray:
        """Column ``name`` with dictionary encoding undone and NaN turned into null."""
        if name not in self._values:
            column = self.table.column(name)
            if pa.types.is_dictionary(column.type):
                column = column.cast(column.type.value_type)
            if pa.types.is_floating(column.type) and pc.any(pc.is_nan(column)).as_py():
                column = pc.if_else(pc.is_nan(column), pa.scalar(None, column.type), column)
            self._values[name] = column
        return self._values[name]

    def failure(
        self, rule: str, kind: str, column: str | None, mask: Any, using: Sequence[str],
        label: str, rest: str,
    ) -> RuleFailure | None:  # fmt: skip
        """A failure "<label>: N rows <rest>" for the rows where ``mask`` is true, if any."""
        count = int(pc.sum(mask).as_py() or 0)
        if count == 0:
            return None
        message = f"{label}: {_rows(count)} {rest}"
        return RuleFailure(rule, kind, column, count, message, self.examples(mask, using))

    def examples(self, mask: Any, using: Sequence[str]) -> tuple[dict[str, Any], ...]:
        positions = pc.indices_nonzero(mask).slice(0, self.max_examples).to_pylist()
        picked = (
            self.table.select(list(using)).take(pa.array(positions, pa.int64())).to_pylist()
            if using
            else []
        )
        return tuple(
            {"row": i, "values": _json_safe(picked[n]) if using else {}}
            for n, i in enumerate(positions)
        )


def _to_table(data: Any) -> tuple[pa.Table, dict[str, str], list[str]]:
    """The data as an Arrow table, the columns that cannot be read (and why), and all names."""
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if isinstance(data, pa.Table):
        names = list(data.column_names)
        arrays = dict(zip(names, data.columns, strict=True))
        unreadable: dict[str, str] = {}
    elif type(data).__module__.startswith("pandas") and hasattr(data, "iloc"):
        names = [str(c) for c in data.columns]
        arrays, unreadable = _pandas_columns(data, names)
    else:
        kind = type(data).__name__
        raise _error("data", f"must be a pyarrow Table or a pandas DataFrame, got {kind}")
    for name in {n for n in names if names.count(n) > 1}:
        unreadable[name] = f"it appears {names.count(name)} times in the data"
        arrays.pop(name)
    if not arrays:  # keep the row count of a table without (readable) columns
        return pa.table({"": pa.nulls(len(data))}).drop_columns([""]), unreadable, names
    return pa.table(arrays), unreadable, names


def _pandas_columns(frame: Any, names: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    arrays: dict[str, Any] = {}
    unreadable: dict[str, str] = {}
    for position, name in enumerate(names):
        try:
            arrays[name] = pa.array(frame.iloc[:, position], from_pandas=True)
        except _ARROW_ERRORS as exc:
            unreadable[name] = f"its values do not share one type ({str(exc).splitlines()[0]})"
    return arrays, unreadable


def _check_rows(ctx: _Context, rules: Rules) -> None:
    for side, bound in (("min", rules.min_rows), ("max", rules.max_rows)):
        if bound is None:
            continue
        broken = ctx.rows < bound if side == "min" else ctx.rows > bound
        most = "least" if side == "min" else "most"
        message = f"expected at {most} {_rows(bound)}, got {ctx.rows:,}"
        ctx.record(RuleFailure(f"rows.{side}", "rows", None, 1, message) if broken else None)


def _check_extra_columns(ctx: _Context, rules: Rules) -> None:
    if rules.allow_extra_columns:
        return
    known = set(rules.mentioned_columns())
    extra = list(dict.fromkeys(n for n in ctx.names if n not in known))
    message = f"unexpected column(s) {', '.join(map(repr, extra))}: allow_extra_columns is "
    message += "false and no rule mentions them"
    failure = RuleFailure("allow_extra_columns", "extra_columns", None, len(extra), message)
    ctx.record(failure if extra else None)


def _check_column(ctx: _Context, rule: ColumnRule) -> None:
    name, where = rule.name, f"columns.{rule.name}"
    if ctx.unusable(name) is not None:
        ctx.skipped.add(name)
        if name in ctx.unreadable:
            message = f"column '{name}' cannot be checked: {ctx.unreadable[name]}; "
            ctx.record(RuleFailure(f"{where}.type", "type", name, 1, message + "rules skipped"))
        elif rule.required:
            message = f"column '{name}' is required but missing from the data"
            ctx.record(RuleFailure(f"{where}.required", "required", name, 1, message))
        return
    if rule.required:
        ctx.record(None)
    actual = ctx.table.schema.field(name).type
    if rule.type is not None:
        if not _type_matches(rule.type, actual):
            ctx.skipped.add(name)
            message = f"column '{name}': expected type {rule.type}, got {actual}; "
            ctx.record(RuleFailure(f"{where}.type", "type", name, 1, message + "rules skipped"))
            return
        ctx.record(None)
    _check_values(ctx, rule)


_STRINGS = ("string", "large_string", "string_view")
_TYPE_TESTS: dict[str, Callable[[pa.DataType], bool]] = {
    "integer": pa.types.is_integer,
    "number": lambda t: pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t),
    "string": lambda t: str(t) in _STRINGS,
    "categorical": lambda t: str(t) in _STRINGS,
    "boolean": pa.types.is_boolean,
    "datetime": lambda t: pa.types.is_timestamp(t) or pa.types.is_date(t),
}


def _type_matches(expected: str, actual: pa.DataType) -> bool:
    """Whether ``actual`` is of type ``expected``; dictionaries match their value type."""
    if pa.types.is_null(actual) or (expected == "categorical" and pa.types.is_dictionary(actual)):
        return True
    actual = actual.value_type if pa.types.is_dictionary(actual) else actual
    return _TYPE_TESTS[expected](actual)


def _check_values(ctx: _Context, rule: ColumnRule) -> None:
    column = ctx.values(rule.name)
    if rule.not_null:
        mask = pc.is_null(column)
        ctx.record(_column_failure(ctx, rule, "not_null", mask, "null, expected none (not_null)"))
    if pa.types.is_null(column.type):  # no values at all: nothing to compare
        ctx.checked += sum(x is not None for x in (rule.min, rule.max, rule.allowed)) + rule.unique
        return
    for side in ("min", "max"):
        if getattr(rule, side) is not None:
            ctx.record(_out_of_range(ctx, rule, side, column))
    if rule.allowed is not None:
        ctx.record(_not_allowed(ctx, rule, column))
    if rule.unique:
        ctx.record(_duplicates(ctx, (rule.name,), f"columns.{rule.name}.unique", rule.name))


def _column_failure(
    ctx: _Context, rule: ColumnRule, kind: str, mask: Any, rest: str
) -> RuleFailure | None:
    where, name = f"columns.{rule.name}.{kind}", rule.name
    return ctx.failure(where, kind, name, mask, [name], f"column '{name}'", rest)


def _skipped(rule: ColumnRule, kind: str, problem: str) -> RuleFailure:
    message = f"column '{rule.name}': {problem}; rule skipped"
    return RuleFailure(f"columns.{rule.name}.{kind}", "type", rule.name, 1, message)


def _out_of_range(
    ctx: _Context, rule: ColumnRule, side: str, column: pa.ChunkedArray
) -> RuleFailure | None:
    bound, exclusive = getattr(rule, side), bool(getattr(rule, f"exclusive_{side}"))
    if not isinstance(bound, str) and not _TYPE_TESTS["number"](column.type):
        return _skipped(rule, side, f"{side} {bound} needs a numeric column, got {column.type}")
    op = ("less" if side == "min" else "greater") + ("_equal" if exclusive else "")
    try:
        limit = _bound_scalar(bound, column.type)
        extreme = pc.min_max(column)[side]
        if not extreme.is_valid or not pc.call_function(op, [extreme, limit]).as_py():
            return None  # the smallest (largest) value is in range, so all are
        mask = pc.fill_null(pc.call_function(op, [column, limit]), False)
    except _ARROW_ERRORS as exc:
        return _skipped(rule, side, f"cannot compare {column.type} with {side} {bound!r} ({exc})")
    word = "below" if side == "min" else "above"
    relation = f"at or {word} exclusive" if exclusive else word
    most = f"{'smallest' if side == 'min' else 'largest'} {_show(extreme.as_py())}"
    return _column_failure(ctx, rule, side, mask, f"{relation} {side} {bound}, {most}")


def _bound_scalar(bound: Bound, column_type: pa.DataType) -> pa.Scalar:
    """The bound as an Arrow scalar comparable with the column (naive is UTC if need be)."""
    if not isinstance(bound, str):
        return pa.scalar(bound)
    parsed = dt.datetime.fromisoformat(bound)
    return pa.scalar(parsed, type=column_type if pa.types.is_timestamp(column_type) else None)


def _not_allowed(ctx: _Context, rule: ColumnRule, column: pa.ChunkedArray) -> RuleFailure | None:
    allowed = list(rule.allowed or ())
    shown = "[" + ", ".join(_show(v) for v in allowed[:_MAX_LISTED])
    shown += ", ...]" if len(allowed) > _MAX_LISTED else "]"
    try:
        options = pa.array(allowed, type=column.type)
    except _ARROW_ERRORS:
        return _skipped(rule, "allowed", f"allowed values {shown} do not fit type {column.type}")
    mask = pc.and_(pc.invert(pc.is_in(column, value_set=options)), pc.is_valid(column))
    failure = _column_failure(ctx, rule, "allowed", mask, f"not in allowed values {shown}")
    if failure is None or not failure.examples:
        return failure
    first = _show(failure.examples[0]["values"][rule.name])
    return replace(failure, message=f"{failure.message}, e.g. {first}")


def _ready(ctx: _Context, names: Sequence[str], rule: str, kind: str, label: str) -> bool:
    """Whether a rule over ``names`` can run; records a failure for an unlisted missing column.

    Columns whose own rules failed (missing, wrong type) skip the rule silently.
    """
    if any(name in ctx.skipped for name in names):
        return False
    for name in names:
        reason = ctx.unusable(name)
        if reason is not None:
            message = f"{label} uses column '{name}', but {reason}; it could not run"
            ctx.record(RuleFailure(rule, kind, name, 1, message))
            return False
    return True


def _duplicates(
    ctx: _Context, key: tuple[str, ...], rule: str, column: str | None
) -> RuleFailure | None:
    label = f"column '{column}'" if column else f"columns ({', '.join(key)})"
    try:
        codes, valid = _group_codes(ctx, key)
    except _ARROW_ERRORS as exc:
        message = f"{label}: cannot check uniqueness ({str(exc).splitlines()[0]}); rule skipped"
        return RuleFailure(rule, "type", column, 1, message)
    counts = np.bincount(codes[valid], minlength=int(codes.max(initial=0)) + 1)
    rows = np.flatnonzero(valid & (counts[codes] > 1))
    if rows.size == 0:
        return None
    groups, first = np.unique(codes[rows], return_index=True)
    message = f"{label}: {_rows(rows.size)} share {len(groups):,} duplicated "
    message += "values, expected unique" if column else "keys, expected unique together"
    starts = [int(rows[i]) for i in sorted(first)[: ctx.max_examples]]
    examples = tuple(_duplicate_example(ctx, key, codes, rows, start) for start in starts)
    return RuleFailure(rule, "unique", column, int(rows.size), message, examples)


def _group_codes(ctx: _Context, key: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """A dense group number per row, and which rows have no null in the key."""
    codes = np.zeros(ctx.rows, dtype=np.int64)
    valid = np.ones(ctx.rows, dtype=bool)
    for position, name in enumerate(key):
        encoded = pc.dictionary_encode(ctx.values(name).combine_chunks())
        valid &= encoded.indices.is_valid().to_numpy(zero_copy_only=False)
        part = pc.fill_null(encoded.indices, 0).to_numpy(zero_copy_only=False)
        codes = codes * max(len(encoded.dictionary), 1) + part.astype(np.int64)
        if position > 0:  # keep the numbers dense (below the row count), so they cannot overflow
            codes = np.unique(codes, return_inverse=True)[1].reshape(-1).astype(np.int64)
    return codes, valid


def _duplicate_example(
    ctx: _Context, key: tuple[str, ...], codes: np.ndarray, rows: np.ndarray, first: int
) -> dict[str, Any]:
    members = rows[codes[rows] == codes[first]][:_MAX_LISTED]
    values = ctx.table.select(list(key)).slice(first, 1).to_pylist()[0]
    return {"row": first, "rows": [int(r) for r in members], "values": _json_safe(values)}


def _run_check(ctx: _Context, check: Check) -> None:
    rule, label = f"checks.{check.name}", f"check '{check.name}'"
    if check.expression is None:
        ctx.record(_run_custom(ctx, check, rule, label))
        return
    expression = check.expression
    if not _ready(ctx, expression.columns, rule, "check", label):
        return
    try:
        mask = evaluate(expression, ctx.values, ctx.rows)
    except EvaluationError as exc:
        message = f"{label} ({expression.text}) could not be evaluated: {exc}"
        ctx.record(RuleFailure(rule, "check", None, 1, message))
        return
    rest = f"where {expression.text!r} is false, expected true"
    ctx.record(ctx.failure(rule, "check", None, mask, expression.columns, label, rest))


def _run_custom(ctx: _Context, check: Check, rule: str, label: str) -> RuleFailure | None:
    try:
        result = check.func(ctx.data) if check.func else None
        mask = _as_mask(result, ctx.rows)
    except Exception as exc:  # a user's predicate: report it like any broken rule
        message = f"{label} (a Python predicate) failed: {type(exc).__name__}: {exc}"
        return RuleFailure(rule, "check", None, 1, message)
    rest = "where the Python predicate is false, expected true"
    return ctx.failure(rule, "check", None, mask, [], label, rest)


def _as_mask(result: Any, rows: int) -> pa.ChunkedArray:
    """The failing-row mask of a predicate's result (a null result passes)."""
    if isinstance(result, pa.Array):
        result = pa.chunked_array([result])
    if not isinstance(result, pa.ChunkedArray):
        result = pa.chunked_array([pa.array(result, from_pandas=True)])
    if not pa.types.is_boolean(result.type) or len(result) != rows:
        shape = f"{len(result):,} {result.type} values"
        raise ValueError(f"expected one true/false per row ({rows:,}), got {shape}")
    return pc.fill_null(pc.invert(result), False)
