"""Declarative validation rules for tables, stored with a dataset and checked before use.

Rules are written in YAML (or built in Python) and serialise to plain JSON, so they can be
kept with a dataset version and checked before the version is accepted or before training::

    rows: {min: 100, max: 1000000}          # row-count bounds (either optional)
    columns:
      age:    {type: integer, required: true, not_null: true, min: 0, max: 120}
      income: {type: number, min: 0, exclusive_min: false}
      plan:   {type: string, allowed: [basic, pro, enterprise]}
      id:     {unique: true}
      signup: {type: datetime, min: 2020-01-01}
    unique: [[customer_id, day]]            # compound uniqueness (optional)
    allow_extra_columns: true               # false: columns no rule mentions are a failure
    checks:                                 # a row passes when the expression is true
      - name: spend_not_above_income
        expr: "spend <= income * 2"
      - name: adult_or_no_card
        expr: "age >= 18 or has_card == false"

    report = validate(table, Rules.from_file("rules.yaml"))
    print(report.summary())

Column keys: ``type`` (integer, number, string, boolean, datetime, categorical), ``required``
(default true), ``not_null``, ``min``/``max`` (numbers; ISO dates for datetime columns, where
naive bounds are read as UTC for timezone-aware columns), ``exclusive_min``/``exclusive_max``,
``allowed`` (a list of constants) and ``unique``. A dictionary-encoded column matches the type
of its values; a column of Arrow type null (no value at all) matches every type.

Semantics:

* Nulls fail only ``not_null`` (where NaN counts as null); they never fail a range, an
  ``allowed`` list or a uniqueness rule, and rows whose key holds a null are not compared.
* A check row whose expression is null (because its inputs are null) passes: write
  ``notnull(x) and x > 0`` to require a value. The expression grammar is described in
  :mod:`loopml.data._expr`; it is parsed with :mod:`ast` and never evaluated with ``eval``.
* Every rule is checked; validation does not stop at the first failure. A missing column
  gives one ``required`` failure (none if ``required: false``) and its other rules, and the
  checks and unique keys that use it, are skipped; so are those of a column that fails its
  ``type``. A check or unique key naming a column that no ``columns`` entry lists and the data
  lacks fails once (``count`` 1) instead.
* ``RuleFailure.count`` is the number of failing rows; for ``required``, ``type``, ``rows``
  and checks that could not run it is 1, and for ``extra_columns`` the number of unexpected
  columns. For ``unique`` it counts every row that shares its key with another row.
* ``examples`` hold up to ``max_examples`` failing rows as ``{"row": i, "values": {...}}``,
  where ``i`` is the 0-based row position (also for pandas input); a ``unique`` example adds
  ``"rows"``, the positions that share the key (at most 10). Values are JSON-safe (dates as ISO
  text, NaN as ``"NaN"``). Python predicates give examples with empty ``values``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from loopml.data._expr import EvaluationError, Expression, evaluate, parse_expression
from loopml.errors import DataValidationError, InvalidArgumentError

__all__ = ["TYPES", "Check", "ColumnRule", "RuleFailure", "Rules", "ValidationReport", "validate"]

TYPES = ("integer", "number", "string", "boolean", "datetime", "categorical")
Bound = int | float | str
Scalar = str | int | float | bool
Predicate = Callable[[Any], Any]

_TOP_KEYS = ("allow_extra_columns", "checks", "columns", "rows", "unique")
_ROWS_KEYS = ("max", "min")
_CHECK_KEYS = ("expr", "name")
_MAX_LISTED = 10
_COLUMN_NAMES = "must have non-empty strings as column names"
_ARROW_ERRORS = (pa.ArrowException, TypeError, ValueError, ArithmeticError)


# ---------------------------------------------------------------------------- rule checking


def _error(where: str, message: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"{where} {message}", field=where)


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _error(where, f"must be a mapping, got {type(value).__name__} {value!r}")
    return value


def _known_keys(mapping: Mapping[str, Any], known: Sequence[str], where: str) -> None:
    for key in mapping:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            place = f"{where}.{key}" if where != "rules" else str(key)
            raise _error(place, f"is not a known key{hint}; known keys: {', '.join(known)}")


def _flag(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise _error(where, f"must be true or false, got {value!r}")
    return value


def _name(value: object, where: str, what: str = "must be a non-empty string") -> str:
    if not isinstance(value, str) or not value:
        raise _error(where, f"{what}, got {value!r}")
    return value


def _row_bound(value: object, where: str) -> int | None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise _error(where, f"must be a whole number, got {value!r}")
    if value is not None and value < 0:
        raise _error(where, f"must be 0 or more, got {value}")
    return value


def _bound(value: object, type_: str | None, where: str) -> Bound | None:
    """A numeric bound, or an ISO date/datetime text for a datetime column."""
    if value is None:
        return None
    if type_ == "datetime":
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, str) and _parse_datetime(value) is not None:
            return value
        raise _error(where, f"must be an ISO date or datetime such as 2024-01-31, got {value!r}")
    if type_ in ("string", "boolean", "categorical"):
        raise _error(where, f"applies to integer, number or datetime columns, not {type_}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        hint = " (dates need type: datetime)" if isinstance(value, str | dt.date) else ""
        raise _error(where, f"must be a number, got {value!r}{hint}")
    if not math.isfinite(value):
        raise _error(where, f"must be a finite number, got {value!r}")
    return value


def _parse_datetime(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def _comparable(bound: Bound) -> float | dt.datetime:
    if isinstance(bound, str):
        parsed = _parse_datetime(bound)
        if parsed is None:
            raise ValueError(f"not an ISO datetime: {bound!r}")
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return bound


def _allowed(value: object, type_: str | None, where: str) -> tuple[Scalar, ...] | None:
    if value is None:
        return None
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or not value:
        raise _error(where, f"must be a non-empty list of values, got {value!r}")
    kinds = {_kind(item, where) for item in value}
    if len(kinds) > 1:
        raise _error(where, f"mixes {' and '.join(sorted(kinds))} values: {list(value)!r}")
    expected = {"integer": "number", "number": "number", "string": "string"}
    expected |= {"categorical": "string", "boolean": "boolean", "datetime": "no"}
    if type_ is not None and kinds != {expected[type_]}:
        raise _error(where, f"holds {kinds.pop()} values, which a {type_} column cannot hold")
    return tuple(value)


def _kind(item: object, where: str) -> str:
    if isinstance(item, bool):
        return "boolean"
    if isinstance(item, int | float) and math.isfinite(item):
        return "number"
    if isinstance(item, str):
        return "string"
    raise _error(where, f"may hold only strings, finite numbers or booleans, got {item!r}")


# ------------------------------------------------------------------------------- the rules


@dataclass(frozen=True)
class ColumnRule:
    """The rules for one column; checked on construction, so a bad value never gets stored."""

    name: str
    type: str | None = None
    required: bool = True
    not_null: bool = False
    min: Bound | None = None
    max: Bound | None = None
    exclusive_min: bool = False
    exclusive_max: bool = False
    allowed: tuple[Scalar, ...] | None = None
    unique: bool = False

    def __post_init__(self) -> None:
        where = f"columns.{_name(self.name, 'columns', _COLUMN_NAMES)}"
        if self.type is not None and self.type not in TYPES:
            raise _error(f"{where}.type", f"must be one of {', '.join(TYPES)}; got {self.type!r}")
        for flag in ("required", "not_null", "exclusive_min", "exclusive_max", "unique"):
            _flag(getattr(self, flag), f"{where}.{flag}")
        object.__setattr__(self, "min", _bound(self.min, self.type, f"{where}.min"))
        object.__setattr__(self, "max", _bound(self.max, self.type, f"{where}.max"))
        object.__setattr__(self, "allowed", _allowed(self.allowed, self.type, f"{where}.allowed"))
        self._check_range(where)

    def _check_range(self, where: str) -> None:
        for side in ("min", "max"):
            if getattr(self, f"exclusive_{side}") and getattr(self, side) is None:
                raise _error(f"{where}.exclusive_{side}", f"has no effect without {side}")
        if self.min is None or self.max is None:
            return
        low, high = _comparable(self.min), _comparable(self.max)
        empty = self.exclusive_min or self.exclusive_max
        if low > high or (low == high and empty):  # type: ignore[operator]
            raise _error(f"{where}.min", f"({self.min}) must not be above max ({self.max})")

    @classmethod
    def from_dict(cls, name: str, spec: object) -> ColumnRule:
        where = f"columns.{_name(name, 'columns', _COLUMN_NAMES)}"
        mapping = _mapping(spec, where)
        _known_keys(mapping, [f.name for f in fields(cls)][1:], where)
        return cls(name=name, **mapping)

    def to_dict(self) -> dict[str, Any]:
        """The non-default settings, as plain JSON values."""
        out: dict[str, Any] = {}
        for f in fields(self)[1:]:
            value = getattr(self, f.name)
            if value is not f.default and value != f.default:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True)
class Check:
    """A named row predicate: an ``expr`` in the safe expression language, or a Python ``func``.

    ``func`` receives the data as given to :func:`validate` (a pyarrow Table or pandas
    DataFrame) and returns one true/false per row. It cannot be stored with a dataset.
    """

    name: str
    expr: str | None = None
    func: Predicate | None = None
    expression: Expression | None = field(init=False, default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        where = f"checks.{_name(self.name, 'checks.name')}"
        if (self.expr is None) == (self.func is None):
            raise _error(where, "needs exactly one of expr (an expression) or func (a callable)")
        if self.func is not None and not callable(self.func):
            raise _error(f"{where}.func", f"must be callable, got {self.func!r}")
        if self.expr is not None:
            object.__setattr__(
                self, "expression", parse_expression(self.expr, where=f"{where}.expr")
            )

    @classmethod
    def from_dict(cls, spec: object, position: int) -> Check:
        mapping = _mapping(spec, f"checks[{position}]")
        _known_keys(mapping, _CHECK_KEYS, f"checks[{position}]")
        if "name" not in mapping or "expr" not in mapping:
            raise _error(f"checks[{position}]", "needs both 'name' and 'expr'")
        name = _name(mapping["name"], f"checks[{position}].name")
        return cls(name=name, expr=_name(mapping["expr"], f"checks[{position}].expr"))

    def to_dict(self) -> dict[str, Any]:
        if self.expr is None:
            raise _error(
                f"checks.{self.name}",
                "is a Python predicate, which cannot be stored with a dataset; "
                "write it as an expr check instead",
            )
        return {"name": self.name, "expr": self.expr}


@dataclass(frozen=True)
class Rules:
    """A set of validation rules; build with the chained methods or load with ``from_*``.

    >>> rules = Rules().column("age", type="integer", min=0).rows(min=10).check("ok", "age < 130")
    """

    columns: tuple[ColumnRule, ...] = ()
    min_rows: int | None = None
    max_rows: int | None = None
    unique: tuple[tuple[str, ...], ...] = ()
    checks: tuple[Check, ...] = ()
    allow_extra_columns: bool = True

    def __post_init__(self) -> None:
        _row_bound(self.min_rows, "rows.min")
        _row_bound(self.max_rows, "rows.max")
        both = self.min_rows is not None and self.max_rows is not None
        if both and self.min_rows > self.max_rows:  # type: ignore[operator]
            raise _error("rows.min", f"({self.min_rows}) must not be above max ({self.max_rows})")
        _flag(self.allow_extra_columns, "allow_extra_columns")
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "checks", tuple(self.checks))
        object.__setattr__(
            self, "unique", tuple(_unique_key(k, i) for i, k in enumerate(self.unique))
        )
        _no_repeats([c.name for c in self.columns], "columns")
        _no_repeats([c.name for c in self.checks], "checks")

    # -- building

    def column(
        self,
        name: str,
        *,
        type: str | None = None,
        required: bool = True,
        not_null: bool = False,
        min: Bound | None = None,
        max: Bound | None = None,
        exclusive_min: bool = False,
        exclusive_max: bool = False,
        allowed: Sequence[Scalar] | None = None,
        unique: bool = False,
    ) -> Rules:
        """These rules plus rules for column ``name`` (a name may be listed only once)."""
        rule = ColumnRule(
            name, type, required, not_null, min, max, exclusive_min, exclusive_max,
            None if allowed is None else tuple(allowed), unique,
        )  # fmt: skip
        return replace(self, columns=(*self.columns, rule))

    def rows(self, min: int | None = None, max: int | None = None) -> Rules:
        """These rules with row-count bounds."""
        return replace(self, min_rows=min, max_rows=max)

    def unique_together(self, *columns: str) -> Rules:
        """These rules plus a compound uniqueness rule over ``columns``."""
        return replace(self, unique=(*self.unique, columns))

    def check(self, name: str, expr: str) -> Rules:
        """These rules plus an expression check (a row passes when ``expr`` is true)."""
        return replace(self, checks=(*self.checks, Check(name, expr=expr)))

    def custom(self, name: str, func: Predicate) -> Rules:
        """These rules plus a Python predicate; such rules cannot be stored (``to_dict``)."""
        return replace(self, checks=(*self.checks, Check(name, func=func)))

    def no_extra_columns(self) -> Rules:
        """These rules, failing data that has columns no rule mentions."""
        return replace(self, allow_extra_columns=False)

    def mentioned_columns(self) -> tuple[str, ...]:
        """Every column a rule names: listed columns, unique keys and check inputs."""
        names = [c.name for c in self.columns] + [n for key in self.unique for n in key]
        names += [n for c in self.checks if c.expression for n in c.expression.columns]
        return tuple(dict.fromkeys(names))

    # -- loading and storing

    @classmethod
    def from_dict(cls, data: object) -> Rules:
        """Rules from the mapping a YAML or JSON rules file holds."""
        top = _mapping(data, "rules")
        _known_keys(top, _TOP_KEYS, "rules")
        rows = _mapping(top.get("rows"), "rows")
        _known_keys(rows, _ROWS_KEYS, "rows")
        columns = _mapping(top.get("columns"), "columns")
        unique = top.get("unique") or []
        checks = top.get("checks") or []
        for where, value in (("unique", unique), ("checks", checks)):
            if not isinstance(value, list):
                raise _error(where, f"must be a list, got {value!r}")
        return cls(
            columns=tuple(ColumnRule.from_dict(n, s) for n, s in columns.items()),
            min_rows=rows.get("min"),
            max_rows=rows.get("max"),
            unique=tuple(unique),
            checks=tuple(Check.from_dict(spec, i) for i, spec in enumerate(checks)),
            allow_extra_columns=top.get("allow_extra_columns", True),
        )

    @classmethod
    def from_yaml(cls, text: str) -> Rules:
        """Rules from YAML text (read with ``yaml.safe_load``)."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidArgumentError(
                f"rules are not valid YAML: {_yaml_problem(exc)}", field="rules"
            ) from None
        return cls.from_dict(data)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Rules:
        """Rules from a ``.yaml``, ``.yml`` or ``.json`` file."""
        file = Path(path)
        suffix = file.suffix.lower()
        if suffix not in (".yaml", ".yml", ".json"):
            raise _error("path", f"must end in .yaml, .yml or .json, got {file.name!r}")
        text = file.read_text(encoding="utf-8")
        if suffix != ".json":
            return cls.from_yaml(text)
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno}, column {exc.colno}"
            raise _error(
                "rules", f"in {file.name} are not valid JSON: {exc.msg} ({where})"
            ) from None

    def to_dict(self) -> dict[str, Any]:
        """The rules as plain JSON values; ``Rules.from_dict(r.to_dict()) == r``."""
        out: dict[str, Any] = {}
        rows = {k: v for k, v in (("min", self.min_rows), ("max", self.max_rows)) if v is not None}
        if rows:
            out["rows"] = rows
        if self.columns:
            out["columns"] = {c.name: c.to_dict() for c in self.columns}
        if self.unique:
            out["unique"] = [list(key) for key in self.unique]
        if self.checks:
            out["checks"] = [c.to_dict() for c in self.checks]
        if not self.allow_extra_columns:
            out["allow_extra_columns"] = False
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)


def _unique_key(key: object, position: int) -> tuple[str, ...]:
    where = f"unique[{position}]"
    names = [key] if isinstance(key, str) else key
    if not isinstance(names, Sequence) or not names:
        raise _error(where, f"must be a non-empty list of column names, got {key!r}")
    _no_repeats([_name(n, where) for n in names], where)
    return tuple(names)


def _no_repeats(names: Sequence[str], where: str) -> None:
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise _error(where, f"name {', '.join(map(repr, repeated))} more than once")


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return str(problem)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"


def _as_rules(rules: object) -> Rules:
    if isinstance(rules, Rules):
        return rules
    if isinstance(rules, str):
        return Rules.from_yaml(rules)
    if isinstance(rules, os.PathLike):
        return Rules.from_file(rules)
    if isinstance(rules, Mapping):
        return Rules.from_dict(rules)
    raise _error("rules", f"must be Rules, a mapping or YAML text, got {type(rules).__name__}")


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
