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
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from loopml.data._expr import Expression, parse_expression
from loopml.errors import InvalidArgumentError

__all__ = ["TYPES", "Check", "ColumnRule", "Rules"]

TYPES = ("integer", "number", "string", "boolean", "datetime", "categorical")
Bound = int | float | str
Scalar = str | int | float | bool
Predicate = Callable[[Any], Any]

_TOP_KEYS = ("allow_extra_columns", "checks", "columns", "rows", "unique")
_ROWS_KEYS = ("max", "min")
_CHECK_KEYS = ("expr", "name")
_COLUMN_NAMES = "must have non-empty strings as column names"


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
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise _error("path", f"no such rules file: {str(file)!r}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise _error("path", f"cannot read the rules file {str(file)!r}: {exc}") from None
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
