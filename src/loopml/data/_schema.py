"""The inferred schema of a table, and the JSON helpers profiles share with it.

Private: import these names from :mod:`loopml.data.profile`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from loopml.errors import InvalidArgumentError

KINDS = ("numeric", "boolean", "categorical", "string", "datetime", "other")
FORMAT_VERSION = 1


# -- JSON helpers ------------------------------------------------------------------------------


def encode_float(value: Any) -> Any:
    """A float JSON can hold: non-finite floats become "inf", "-inf" or "nan"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def decode_number(value: Any) -> Any:
    """The inverse of :func:`encode_float` for a number (or None)."""
    return float(value) if isinstance(value, str) else value


def check_version(d: dict[str, Any], what: str) -> None:
    version = d.get("version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise InvalidArgumentError(
            f"The {what} dict has version {version!r}; this loopml reads version {FORMAT_VERSION}.",
            field="version",
        )


def malformed(what: str, error: Exception) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"The 'd' argument is not a valid {what} dict ({type(error).__name__}: {error}).",
        field="d",
    )


# -- schema ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnSchema:
    """What one column holds. ``null_count`` includes NaNs; ``min``/``max`` are numbers for
    numeric columns and ISO 8601 strings for datetime columns; ``categories`` (value -> count,
    by count descending then value) is set for boolean and categorical columns."""

    name: str
    type: str
    kind: str
    nullable: bool
    null_count: int
    min: Any = None
    max: Any = None
    categories: dict[str, int] | None = None
    min_length: int | None = None
    max_length: int | None = None
    distinct: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["min"], d["max"] = encode_float(self.min), encode_float(self.max)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ColumnSchema:
        kind = str(d["kind"])
        if kind not in KINDS:
            raise InvalidArgumentError(
                f"Column kind must be one of {', '.join(KINDS)}. Got {kind!r} instead.",
                field="kind",
            )
        low, high = d.get("min"), d.get("max")
        if kind == "numeric":
            low, high = decode_number(low), decode_number(high)
        categories = d.get("categories")
        if categories is not None:
            categories = {str(k): int(v) for k, v in categories.items()}
        return cls(
            name=str(d["name"]),
            type=str(d["type"]),
            kind=kind,
            nullable=bool(d["nullable"]),
            null_count=int(d["null_count"]),
            min=low,
            max=high,
            categories=categories,
            min_length=d.get("min_length"),
            max_length=d.get("max_length"),
            distinct=d.get("distinct"),
        )


@dataclass(frozen=True)
class SchemaDiff:
    """How a newer schema differs from an older one. ``changed`` is True for a structural
    change (a column added or removed, or a type or nullability change); new categories alone
    are not structural."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    type_changed: tuple[tuple[str, str, str], ...] = ()
    nullability_changed: tuple[tuple[str, bool, bool], ...] = ()
    new_categories: dict[str, list[str]] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.type_changed or self.nullability_changed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": list(self.added),
            "removed": list(self.removed),
            "type_changed": [list(item) for item in self.type_changed],
            "nullability_changed": [list(item) for item in self.nullability_changed],
            "new_categories": {k: list(v) for k, v in self.new_categories.items()},
            "changed": self.changed,
        }

    def summary(self) -> list[str]:
        """One human-readable line per difference."""
        lines = [f"column '{name}' added" for name in self.added]
        lines += [f"column '{name}' removed" for name in self.removed]
        lines += [f"column '{n}' type changed: {old} -> {new}" for n, old, new in self.type_changed]
        lines += [
            f"column '{n}' {'became nullable' if new else 'no longer has nulls'}"
            for n, _, new in self.nullability_changed
        ]
        for name, values in self.new_categories.items():
            shown = ", ".join(repr(v) for v in values[:5])
            more = f" (+{len(values) - 5} more)" if len(values) > 5 else ""
            lines.append(f"column '{name}' has new categories: {shown}{more}")
        return lines


@dataclass(frozen=True)
class Schema:
    """The inferred schema of a table: its columns in order and its row count."""

    columns: tuple[ColumnSchema, ...]
    num_rows: int

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def column(self, name: str) -> ColumnSchema:
        for column in self.columns:
            if column.name == name:
                return column
        raise InvalidArgumentError(
            f"The schema has no column {name!r}; its columns are: {', '.join(self.names)}.",
            field="name",
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "num_rows": self.num_rows,
            "columns": [column.to_dict() for column in self.columns],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Schema:
        check_version(d, "schema")
        try:
            columns = tuple(ColumnSchema.from_dict(c) for c in d["columns"])
            return cls(columns=columns, num_rows=int(d["num_rows"]))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            if isinstance(error, InvalidArgumentError):
                raise
            raise malformed("schema", error) from error

    def diff(self, other: Schema) -> SchemaDiff:
        """How ``other`` (the newer schema) differs from this one."""
        if not isinstance(other, Schema):
            raise InvalidArgumentError(
                f"The 'other' argument must be a Schema. Got {type(other).__name__} instead.",
                field="other",
            )
        old = {c.name: c for c in self.columns}
        new = {c.name: c for c in other.columns}
        common = [(old[name], new[name]) for name in self.names if name in new]
        return SchemaDiff(
            added=tuple(name for name in other.names if name not in old),
            removed=tuple(name for name in self.names if name not in new),
            type_changed=tuple((a.name, a.type, b.type) for a, b in common if a.type != b.type),
            nullability_changed=tuple(
                (a.name, a.nullable, b.nullable) for a, b in common if a.nullable != b.nullable
            ),
            new_categories=_new_categories(common),
        )


def _new_categories(common: list[tuple[ColumnSchema, ColumnSchema]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for old, new in common:
        if old.categories is None or new.categories is None:
            continue
        unseen = sorted(set(new.categories) - set(old.categories))
        if unseen:
            found[old.name] = unseen
    return found
