"""Entities on the wire: frozen dataclasses to JSON values and back.

The server and the remote store both use these two functions, so the JSON shape of every
entity is defined once: a dataclass becomes an object with its field names as keys, an enum
its value, a tuple a list; NaN and infinities (metric values) become the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"`` so the JSON stays standard. :func:`from_wire` rebuilds
the dataclass from its type hints and refuses a body that does not fit them.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import operator
import types
import typing
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

from loopml.errors import InvalidArgumentError

__all__ = ["from_wire", "to_wire"]

T = TypeVar("T")
_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def to_wire(value: Any) -> Any:
    """A JSON-ready copy of ``value`` (dataclasses, enums, tuples, lists, dicts, floats)."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    return _encoder(kind)(value)


#: types returned as they are (exactly these: a str enum or an int subclass is not one)
_PLAIN = frozenset({str, int, bool, type(None)})


def _item(value: Any) -> Any:
    """:func:`to_wire` of one element of a container, inlining the commonest cases."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is float:
        return value if value - value == 0.0 else _special(value)  # inf - inf and NaN: NaN
    return _encoder(kind)(value)


def _special(value: float) -> str:
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _float(value: float) -> Any:
    return value if math.isfinite(value) else _special(value)


def _dict(value: dict[Any, Any]) -> dict[str, Any]:
    return {str(k): _item(v) for k, v in value.items()}


def _list(value: list[Any] | tuple[Any, ...]) -> list[Any]:
    return [_item(v) for v in value]


def _other(value: Any) -> Any:
    return to_wire(tuple(value)) if hasattr(value, "_asdict") else value


_ENCODERS: dict[type, Callable[[Any], Any]] = {}


def _encoder(kind: type) -> Callable[[Any], Any]:
    """How to encode a value of this type, decided once per type (most of the cost of a
    page of runs was deciding it per value); in :func:`to_wire`'s order: an enum, a
    dataclass, a float, a dict, a list or tuple (a NamedTuple too), else ``_other``."""
    found = _ENCODERS.get(kind)
    if found is None:
        found = _ENCODERS[kind] = _choose(kind)
    return found


def _choose(kind: type) -> Callable[[Any], Any]:
    if issubclass(kind, enum.Enum):
        return operator.attrgetter("value")
    if dataclasses.is_dataclass(kind):
        names = tuple(f.name for f in dataclasses.fields(kind))

        def encode(value: Any) -> dict[str, Any]:
            return {name: _item(getattr(value, name)) for name in names}

        return encode
    if issubclass(kind, float):
        return _float
    if issubclass(kind, dict):
        return _dict
    if issubclass(kind, list | tuple):
        return _list
    return _other


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_wire(cls: type[T], data: Any, *, where: str = "body") -> T:
    """Rebuild a ``cls`` (a dataclass, or any type hint) from :func:`to_wire`'s output."""
    return _decode(cls, data, where)  # type: ignore[no-any-return]


def _bad(where: str, expected: str, data: Any) -> InvalidArgumentError:
    shown = repr(data)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return InvalidArgumentError(f"{where} must be {expected}. Got {shown}.", field=where)


def _decode(hint: Any, data: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if hint is Any:
        return data
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if data is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _decode(option, data, where)
            except InvalidArgumentError as exc:
                errors.append(exc)
        raise errors[0] if errors else _bad(where, str(hint), data)
    if origin in (list, tuple):
        if not isinstance(data, list):
            raise _bad(where, "a list", data)
        args = typing.get_args(hint)
        item = args[0] if args else Any
        items = [_decode(item, v, f"{where}[{i}]") for i, v in enumerate(data)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(data, dict):
            raise _bad(where, "an object", data)
        _, value_hint = typing.get_args(hint) or (str, Any)
        return {str(k): _decode(value_hint, v, f"{where}.{k}") for k, v in data.items()}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _decode_dataclass(hint, data, where)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(data)
        except ValueError:
            raise _bad(where, f"one of {[m.value for m in hint]}", data) from None
    if isinstance(hint, type) and issubclass(hint, tuple) and hasattr(hint, "_fields"):
        if not isinstance(data, list):
            raise _bad(where, "a list", data)
        field_hints = _hints(hint)
        return hint(
            *(
                _decode(field_hints[n], v, f"{where}.{n}")
                for n, v in zip(hint._fields, data, strict=False)
            )
        )
    return _scalar(hint, data, where)


def _scalar(hint: Any, data: Any, where: str) -> Any:
    if hint is float:
        if isinstance(data, str) and data in _FLOATS:
            return _FLOATS[data]
        if isinstance(data, int | float) and not isinstance(data, bool):
            return float(data)
        raise _bad(where, "a number", data)
    if hint is bool:
        if isinstance(data, bool):
            return data
        raise _bad(where, "true or false", data)
    if hint is int:
        if isinstance(data, int) and not isinstance(data, bool):
            return data
        raise _bad(where, "an integer", data)
    if hint is str:
        if isinstance(data, str):
            return data
        raise _bad(where, "a string", data)
    if hint is type(None):
        if data is None:
            return None
        raise _bad(where, "null", data)
    return data


def _decode_dataclass(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise _bad(where, f"an object ({cls.__name__})", data)
    hints = _hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            values[f.name] = _decode(hints[f.name], data[f.name], f"{where}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise InvalidArgumentError(f"{where}.{f.name} is required.", field=f"{where}.{f.name}")
    return cls(**values)
