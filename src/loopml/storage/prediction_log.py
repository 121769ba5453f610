"""Checks of the prediction-log store calls, shared by the SQL store and the remote store so
both refuse a bad argument with the same :class:`~loopml.errors.InvalidArgumentError` (whose
``field`` names the argument)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loopml.entities import PredictionLogKind
from loopml.errors import InvalidArgumentError
from loopml.storage.blobs import validate_digest
from loopml.storage.validation import (
    validate_model_name,
    validate_model_version,
    validate_timestamp,
)

__all__ = ["SegmentArgs", "check_segment", "check_segment_query"]

_INT64 = 2**63 - 1


@dataclass(frozen=True, slots=True)
class SegmentArgs:
    """The validated arguments of ``record_prediction_segment``."""

    model_name: str
    model_version: int | None
    kind: PredictionLogKind
    start_time: int
    end_time: int
    row_count: int
    digest: str
    size: int


def _renamed(field: str, call: Any, value: Any) -> Any:
    """``call(value)``, its error reported under this call's argument name."""
    try:
        return call(value)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(exc.message, field=field) from None


def check_model_name(name: Any) -> str:
    """The registry's rule for model names (1 to 256 letters, digits, '.', '_', '-')."""
    return str(_renamed("model_name", validate_model_name, name))


def check_model_version(version: Any, field: str = "model_version") -> int | None:
    if version is None:
        return None
    return int(_renamed(field, validate_model_version, version))


def check_kind(kind: Any) -> PredictionLogKind:
    try:
        return PredictionLogKind(kind)
    except ValueError:
        shown = repr(kind) if len(repr(kind)) <= 80 else repr(kind)[:77] + "..."
        raise InvalidArgumentError(
            f"The kind must be one of {[k.value for k in PredictionLogKind]}. Got {shown}.",
            field="kind",
        ) from None


def _count(field: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= _INT64:
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        raise InvalidArgumentError(
            f"The {field} must be an integer from {minimum} to 2**63-1. Got {shown} instead.",
            field=field,
        )
    return value


def check_segment(
    model_name: Any,
    *,
    kind: Any,
    start_time: Any,
    end_time: Any,
    row_count: Any,
    digest: Any,
    size: Any,
    model_version: Any = None,
) -> SegmentArgs:
    """Every argument of ``record_prediction_segment`` checked (the blob's existence aside,
    which only the store holding it can check)."""
    start = validate_timestamp("start_time", start_time)
    end = validate_timestamp("end_time", end_time)
    if end < start:
        raise InvalidArgumentError(
            f"The end_time ({end}) must not be before the start_time ({start}): they are the "
            "timestamps of the segment's first and last rows.",
            field="end_time",
        )
    return SegmentArgs(
        model_name=check_model_name(model_name),
        model_version=check_model_version(model_version),
        kind=check_kind(kind),
        start_time=start,
        end_time=end,
        row_count=_count("row_count", row_count, minimum=1),
        digest=validate_digest(digest),
        size=_count("size", size, minimum=1),
    )


def check_segment_query(
    model_name: Any, *, kind: Any, start: Any, end: Any, version: Any
) -> tuple[str, PredictionLogKind, int | None, int | None, int | None]:
    """The arguments of ``list_prediction_segments``: the model, the kind, the time range
    ``[start, end)`` (either end open when ``None``) and the version (``None``: any)."""
    name = check_model_name(model_name)
    checked_kind = check_kind(kind)
    low = None if start is None else validate_timestamp("start", start)
    high = None if end is None else validate_timestamp("end", end)
    if low is not None and high is not None and high < low:
        raise InvalidArgumentError(
            f"The end ({high}) must not be before the start ({low}).", field="end"
        )
    return name, checked_kind, low, high, check_model_version(version, "version")
