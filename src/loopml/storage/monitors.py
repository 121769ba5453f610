"""Checks of the monitor store calls, shared by the SQL store and the remote store so both
refuse a bad argument with the same :class:`~loopml.errors.InvalidArgumentError` (whose
``field`` names the argument) and store the same JSON.

A spec, a summary or an event payload is a JSON object: a mapping with string keys whose
values are mappings, lists (or tuples), strings, booleans, ``None`` and finite numbers
(integers and floats of any kind, numpy's included, become Python's own). It is nested at most
:data:`MAX_JSON_DEPTH` levels (the object itself is level 1) and its compact JSON text, with
non-ASCII characters escaped, is under :data:`MAX_SPEC_BYTES` (a spec or a payload) or
:data:`MAX_SUMMARY_BYTES` (a summary). NaN and infinities are refused: JSON has no such
numbers (use ``null``).
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

from loopml.entities import MonitorStatus
from loopml.errors import InvalidArgumentError
from loopml.storage.validation import validate_timestamp

__all__ = [
    "MAX_EVENT_KINDS",
    "MAX_JSON_DEPTH",
    "MAX_LIMIT",
    "MAX_SPEC_BYTES",
    "MAX_SUMMARY_BYTES",
    "MONITOR_SUBJECT",
    "EventQuery",
    "ResultArgs",
    "ResultQuery",
    "check_actor",
    "check_event",
    "check_event_query",
    "check_monitor_name",
    "check_result",
    "check_result_query",
    "check_spec",
    "dump_json",
]

#: the ``subject_type`` of a monitor's rows in the ``events`` table
MONITOR_SUBJECT = "monitor"
#: the deepest nesting of a spec, summary or payload (the object itself is level 1)
MAX_JSON_DEPTH = 32
#: a spec's (and an event payload's) JSON text is shorter than this many bytes ...
MAX_SPEC_BYTES = 256 * 1024
#: ... and a result's summary shorter than this
MAX_SUMMARY_BYTES = 1024 * 1024
#: the most results or events one listing returns
MAX_LIMIT = 10_000
#: the most kinds one event listing may filter on
MAX_EVENT_KINDS = 100
_MAX_ACTOR = 256

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_KIND = re.compile(r"[a-z0-9_.-]{1,64}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# -- names, kinds, statuses, times ----------------------------------------------------------------


def check_monitor_name(name: Any, field: str = "name") -> str:
    """1 to 128 letters, digits, '_', '.' and '-', starting with a letter or digit."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidArgumentError(
            "The monitor name must be 1 to 128 characters: letters, digits, '_', '.' and '-', "
            f"starting with a letter or digit. Got {_short(name)} instead.",
            field=field,
        )
    return name


def _check_kind(kind: Any, field: str = "kind") -> str:
    if not isinstance(kind, str) or not _KIND.fullmatch(kind):
        raise InvalidArgumentError(
            "The event kind must be 1 to 64 characters: lowercase letters, digits, '_', '.' "
            f"and '-' (such as 'alert.opened'). Got {_short(kind)} instead.",
            field=field,
        )
    return kind


def _check_status(status: Any) -> str:
    try:
        return MonitorStatus(status).value
    except ValueError:
        raise InvalidArgumentError(
            f"The status must be one of {[s.value for s in MonitorStatus]}. "
            f"Got {_short(status)} instead.",
            field="status",
        ) from None


def check_actor(actor: Any) -> str | None:
    """Who made a change: ``None`` or a string (kept to its first 256 characters)."""
    if actor is None:
        return None
    if not isinstance(actor, str) or "\x00" in actor:
        raise InvalidArgumentError(
            f"The actor must be a string without NUL characters, or None. Got {_short(actor)}.",
            field="actor",
        )
    return actor[:_MAX_ACTOR]


def _check_limit(limit: Any) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgumentError(
            f"The limit must be an integer from 1 to {MAX_LIMIT}. Got {_short(limit)} instead.",
            field="limit",
        )
    return limit


# -- JSON objects ---------------------------------------------------------------------------------


class _Refused(Exception):
    """A value that is not JSON, and where it is (``$.a[2].b``)."""

    def __init__(self, problem: str, where: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.where = where


def _plain(value: Any, depth: int, where: str) -> Any:
    """A copy of ``value`` made of Python's JSON types only (see the module docs)."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, Mapping | list | tuple):
        if depth > MAX_JSON_DEPTH:
            raise _Refused(f"it is nested more than {MAX_JSON_DEPTH} levels deep", where)
        if isinstance(value, Mapping):
            copy: dict[str, Any] = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise _Refused(
                        f"a key is {type(key).__name__} {_short(key)}, not a string", where
                    )
                copy[key] = _plain(item, depth + 1, f"{where}.{key}")
            return copy
        return [_plain(item, depth + 1, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            raise _Refused(f"it holds {number}, which JSON cannot (use null)", where)
        return number
    raise _Refused(f"it holds a {type(value).__name__}, which is not a JSON value", where)


def dump_json(value: dict[str, Any]) -> str:
    """The stored text of a JSON object already checked (compact, non-ASCII escaped)."""
    return json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":"))


def _json_object(field: str, value: Any, max_bytes: int) -> tuple[dict[str, Any], str]:
    """``value`` as a plain JSON object and its stored text, or InvalidArgumentError."""
    if not isinstance(value, Mapping):
        raise InvalidArgumentError(
            f"The {field} must be a JSON object (a mapping). Got {type(value).__name__} "
            f"{_short(value)} instead.",
            field=field,
        )
    try:
        plain = _plain(value, 1, "$")
    except _Refused as exc:
        where = "" if exc.where == "$" else f" at {exc.where}"
        raise InvalidArgumentError(
            f"The {field} is not a JSON object{where}: {exc.problem}.", field=field
        ) from None
    text = dump_json(plain)
    if len(text) >= max_bytes:
        raise InvalidArgumentError(
            f"The {field} is {len(text):,} bytes of JSON; it must be under {max_bytes:,}.",
            field=field,
            size=len(text),
            limit=max_bytes,
        )
    return plain, text


def check_spec(spec: Any) -> tuple[dict[str, Any], str]:
    """A monitor's spec as a plain JSON object, and its stored text."""
    return _json_object("spec", spec, MAX_SPEC_BYTES)


# -- calls ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResultArgs:
    """The checked arguments of ``record_monitor_result``."""

    name: str
    window_start: int
    window_end: int
    status: str
    summary: dict[str, Any]
    summary_text: str
    late: bool


def _flag(name: str, value: Any, *, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, bool):
        wanted = "True, False or None" if optional else "True or False"
        raise InvalidArgumentError(
            f"The {name} must be {wanted}. Got {type(value).__name__} {_short(value)}.",
            field=name,
        )
    return value


def check_result(
    name: Any,
    *,
    window_start: Any,
    window_end: Any,
    status: Any,
    summary: Any,
    late: Any = False,
) -> ResultArgs:
    name = check_monitor_name(name)
    start = validate_timestamp("window_start", window_start)
    end = validate_timestamp("window_end", window_end)
    if end <= start:
        raise InvalidArgumentError(
            f"The window_end ({end}) must be after the window_start ({start}): a window is "
            "[window_start, window_end) in milliseconds.",
            field="window_end",
        )
    checked_status = _check_status(status)
    plain, text = _json_object("summary", summary, MAX_SUMMARY_BYTES)
    return ResultArgs(name, start, end, checked_status, plain, text, _flag("late", late))


@dataclass(frozen=True, slots=True)
class ResultQuery:
    """The checked arguments of ``list_monitor_results``; ``empty`` when the range holds
    nothing (``end <= start``)."""

    name: str
    start: int | None
    end: int | None
    limit: int
    late: bool | None = None
    newest: bool = False

    @property
    def empty(self) -> bool:
        return self.start is not None and self.end is not None and self.end <= self.start


def check_result_query(
    name: Any, *, start: Any, end: Any, limit: Any, late: Any = None, newest: Any = False
) -> ResultQuery:
    name = check_monitor_name(name)
    low = None if start is None else validate_timestamp("start", start)
    high = None if end is None else validate_timestamp("end", end)
    if low is not None and high is not None and high < low:
        raise InvalidArgumentError(
            f"The end ({high}) must not be before the start ({low}).", field="end"
        )
    return ResultQuery(
        name,
        low,
        high,
        _check_limit(limit),
        _flag("late", late, optional=True),
        _flag("newest", newest),
    )


def check_event(
    name: Any, kind: Any, payload: Any, actor: Any
) -> tuple[str, str, dict[str, Any], str, str | None]:
    """The arguments of ``record_monitor_event``: the name, the kind, the payload as a plain
    JSON object and its stored text, and the actor."""
    name = check_monitor_name(name)
    checked_kind = _check_kind(kind)
    plain, text = _json_object("payload", payload, MAX_SPEC_BYTES)
    return name, checked_kind, plain, text, check_actor(actor)


@dataclass(frozen=True, slots=True)
class EventQuery:
    """The checked arguments of ``list_monitor_events``: ``kinds`` is ``None`` for every
    kind, and an empty tuple when the caller asked for no kind (nothing matches)."""

    name: str | None
    kinds: tuple[str, ...] | None
    since: int | None
    limit: int
    newest: bool = False


def check_event_query(
    name: Any, *, kinds: Any, since: Any, limit: Any, newest: Any = False
) -> EventQuery:
    checked_name = None if name is None else check_monitor_name(name)
    checked_kinds: tuple[str, ...] | None = None
    if kinds is not None:
        if isinstance(kinds, str | bytes) or not isinstance(kinds, Sequence | Set):
            raise InvalidArgumentError(
                "The kinds must be a list of event kinds (or None for every kind). "
                f"Got {type(kinds).__name__} {_short(kinds)} instead.",
                field="kinds",
            )
        if len(kinds) > MAX_EVENT_KINDS:
            raise InvalidArgumentError(
                f"At most {MAX_EVENT_KINDS} kinds may be asked for at once. Got {len(kinds)}.",
                field="kinds",
            )
        found = [_check_kind(k, "kinds") for k in kinds]
        checked_kinds = tuple(sorted(set(found)))
    low = None if since is None else validate_timestamp("since", since)
    return EventQuery(
        checked_name, checked_kinds, low, _check_limit(limit), _flag("newest", newest)
    )
