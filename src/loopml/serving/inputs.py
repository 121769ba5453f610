"""Request bodies → checked arrays: the three protocols the server speaks, read straight into
numpy (no DataFrame per request) and checked against the model's signature.

Body forms (JSON, parsed by orjson):

* **plain** (``POST /predict/{model}``): a list of records ``[{"tenure": 3, ...}]``, an
  object of columns ``{"tenure": [3, 40], ...}`` or a 2-D array ``[[3, ...], ...]`` (columns
  in the signature's order), bare or wrapped as ``{"records": ...}``, ``{"columns": ...}``,
  ``{"data": ...}`` or ``{"instances": ...}``.
* **Open Inference Protocol** (KServe V2, ``POST /v2/models/{model}/infer``): ``{"inputs":
  [{"name", "shape", "datatype", "data"}]}``: one input per column (shape ``[n]`` or
  ``[n, 1]``), or one ``[n, k]`` input for all ``k`` columns (or the model's tensor).
* **MLflow scoring** (``POST /invocations``): ``dataframe_split``, ``dataframe_records``,
  ``instances`` or ``inputs``.

Checks (every problem is collected; the request is refused with all of them and the model is
never called): a required column missing, a column the signature does not have, a value of
the wrong type (a string where a number belongs, a float or null in an int column, a bool in
a number column), ragged records or arrays, a V2 ``data`` whose length does not match its
``shape``, an empty batch, more rows than the server takes. Ints go into float columns;
nothing is parsed from strings except ISO dates in datetime columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from loopml.errors import InvalidArgumentError
from loopml.models.signature import ColumnSpec, Signature, TensorSpec

__all__ = [
    "V2_OF_DTYPE",
    "Batch",
    "InputError",
    "Payload",
    "parse_mlflow",
    "parse_plain",
    "parse_v2",
]

_WRAPPERS = ("records", "columns", "data", "instances", "inputs")
_V2_TYPES = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BYTES": "object",
}
V2_DATATYPE = {v: k for k, v in _V2_TYPES.items()} | {"string": "BYTES", "object": "BYTES"}
#: the numpy dtype of each V2 datatype, and back (dtype objects: no str() per request)
_V2_DTYPES = {k: np.dtype(v) for k, v in _V2_TYPES.items()}
V2_OF_DTYPE = {np.dtype(v): k for k, v in _V2_TYPES.items()}


class InputError(InvalidArgumentError):
    """A request the model cannot take (400, or 413 for too many rows), with every problem
    listed in ``details["problems"]``."""

    def __init__(self, problems: list[dict[str, Any]], *, status: int = 400) -> None:
        super().__init__(
            f"The request does not fit the model: {_summary(problems)}", problems=problems
        )
        self.status = status


def _summary(problems: list[dict[str, Any]]) -> str:
    """One line: the missing and unexpected columns named in groups, other problems each."""
    missing = [p["field"] for p in problems if p["problem"] == "missing"]
    extra = [p["field"] for p in problems if p["got"] == "unexpected"]
    parts = []
    for p in problems:
        if p["field"] in missing or p["field"] in extra:
            continue
        detail = ""
        if p.get("expected") is not None or p.get("got") is not None:
            detail = f" (expected {p['expected']}, got {p['got']})"
        parts.append(f"{p['field']}: {p['problem']}{detail}")
    for label, names in (("missing columns", missing), ("unexpected columns", extra)):
        if names:
            shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
            parts.append(f"{label}: {shown}")
    return "; ".join(parts[:20])


def _problem(field: str, problem: str, expected: Any = None, got: Any = None) -> dict[str, Any]:
    return {"field": field, "problem": problem, "expected": expected, "got": got}


@dataclass(frozen=True, slots=True)
class Payload:
    """A parsed body before the signature check: columns by name, or one positional array."""

    columns: dict[str, Any] | None = None
    array: Any = None


# ---------------------------------------------------------------------------- parsing


def _records(records: list[Any]) -> Payload:
    if not records:
        return Payload(columns={})
    problems = []
    names: dict[str, None] = {}
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            problems.append(
                _problem(f"records[{i}]", "not an object", "an object", type(record).__name__)
            )
            continue
        names.update(dict.fromkeys(record))
    if problems:
        raise InputError(problems)
    missing = object()
    columns = {name: [r.get(name, missing) for r in records] for name in names}
    for name, values in columns.items():
        absent = [i for i, v in enumerate(values) if v is missing]
        if absent:
            columns[name] = [None if v is missing else v for v in values]
            columns[name] = _Absent(columns[name], absent)
    return Payload(columns=columns)


class _Absent(list):  # type: ignore[type-arg]
    """A column read from records where some records lack the key (reported if required)."""

    def __init__(self, values: list[Any], absent: list[int]) -> None:
        super().__init__(values)
        self.absent = absent


def _columns(data: dict[str, Any]) -> Payload:
    problems = []
    lengths = set()
    for name, values in data.items():
        if isinstance(values, np.ndarray) and values.ndim == 1:
            lengths.add(len(values))
        elif not isinstance(values, list):
            problems.append(_problem(name, "not a list of values", "a list", type(values).__name__))
        else:
            lengths.add(len(values))
    if len(lengths) > 1:
        problems.append(
            _problem("columns", "columns of different lengths", "equal lengths", sorted(lengths))
        )
    if problems:
        raise InputError(problems)
    return Payload(columns=dict(data))


def _array(data: Any, field: str) -> Payload:
    try:
        array = np.asarray(data)
    except ValueError:
        raise InputError([_problem(field, "ragged rows", "rows of one length", None)]) from None
    if array.dtype == object and array.ndim >= 1 and any(isinstance(r, list) for r in array.flat):
        raise InputError([_problem(field, "ragged rows", "rows of one length", None)])
    if array.ndim == 1:
        array = array.reshape(1, -1) if array.size else array.reshape(0, 0)
    return Payload(array=array)


def parse_plain(body: Any) -> Payload:
    """The plain endpoint's forms (bare or wrapped)."""
    if isinstance(body, dict) and len(body) == 1 and next(iter(body)) in _WRAPPERS:
        key, inner = next(iter(body.items()))
        if key == "records":
            if not isinstance(inner, list):
                raise InputError([_problem("records", "not a list", "a list of objects", None)])
            return _records(inner)
        if key == "columns":
            if not isinstance(inner, dict):
                raise InputError([_problem("columns", "not an object", "an object of lists", None)])
            return _columns(inner)
        return parse_plain(inner) if isinstance(inner, dict) else _array(inner, key)
    if isinstance(body, list):
        if body and all(isinstance(r, dict) for r in body):
            return _records(body)
        return _array(body, "data")
    if isinstance(body, dict):
        if all(isinstance(v, list) for v in body.values()):
            return _columns(body)
        return _records([body])  # one record
    raise InputError(
        [
            _problem(
                "body",
                "not a table",
                "records, an object of columns or a 2-D array",
                type(body).__name__,
            )
        ]
    )


def parse_mlflow(body: Any) -> Payload:
    """MLflow's scoring protocol (``/invocations``)."""
    if not isinstance(body, dict) or len(body) != 1:
        keys = sorted(body) if isinstance(body, dict) else type(body).__name__
        raise InputError(
            [
                _problem(
                    "body",
                    "expected exactly one of dataframe_split, dataframe_records, instances, inputs",
                    ["dataframe_split", "dataframe_records", "instances", "inputs"],
                    keys,
                )
            ]
        )
    key, inner = next(iter(body.items()))
    if key == "dataframe_split":
        if not isinstance(inner, dict) or not isinstance(inner.get("data"), list):
            raise InputError(
                [_problem(key, "needs 'columns' and 'data'", {"columns": [], "data": [[]]}, None)]
            )
        names = inner.get("columns")
        payload = _array(inner["data"], f"{key}.data")
        if names is None:
            return payload
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise InputError([_problem(f"{key}.columns", "not a list of names", None, None)])
        array = payload.array
        if array.size and array.shape[1] != len(names):
            raise InputError(
                [
                    _problem(
                        f"{key}.data",
                        "rows do not have one value per column",
                        len(names),
                        array.shape[1],
                    )
                ]
            )
        rows = inner["data"]
        return Payload(columns={n: [row[i] for row in rows] for i, n in enumerate(names)})
    if key == "dataframe_records":
        if not isinstance(inner, list):
            raise InputError([_problem(key, "not a list", "a list of objects", None)])
        return _records(inner)
    if key in ("instances", "inputs"):
        return parse_plain(inner)
    raise InputError(
        [
            _problem(
                "body",
                f"unknown key {key!r}",
                ["dataframe_split", "dataframe_records", "instances", "inputs"],
                key,
            )
        ]
    )


def _v2_input(item: Any, i: int) -> tuple[str, Any]:
    if type(item) is dict:  # the usual case first: a flat list of numbers of a known type
        name, shape, data = item.get("name"), item.get("shape"), item.get("data")
        datatype = item.get("datatype")
        dtype = _V2_DTYPES.get(datatype) if type(datatype) is str else None
        if (
            dtype is not None
            and dtype.kind != "O"
            and type(name) is str
            and name
            and type(data) is list
            and (not data or type(data[0]) is not list)
            and len(data) == _shape_size(shape)
        ):
            try:
                return name, np.asarray(data, dtype=dtype).reshape(shape)
            except (ValueError, TypeError, OverflowError):
                pass  # the checks below name the problem
    where = f"inputs[{i}]"
    if not isinstance(item, dict):
        raise InputError([_problem(where, "not an object", "an object", type(item).__name__)])
    name, shape, datatype, data = (item.get(k) for k in ("name", "shape", "datatype", "data"))
    problems = []
    if not isinstance(name, str) or not name:
        problems.append(_problem(f"{where}.name", "missing", "a name", name))
    size = _shape_size(shape)
    if size is None:
        problems.append(_problem(f"{where}.shape", "not a shape", "a list of sizes", shape))
    if not isinstance(datatype, str) or datatype not in _V2_TYPES:
        problems.append(
            _problem(f"{where}.datatype", "unknown datatype", sorted(_V2_TYPES), datatype)
        )
    if not isinstance(data, list):
        problems.append(_problem(f"{where}.data", "not a list", "a list", type(data).__name__))
    if problems:
        raise InputError(problems)
    assert isinstance(name, str)
    assert isinstance(shape, list)
    assert isinstance(data, list)
    flat = _flatten(data)
    if len(flat) != size:
        raise InputError([_problem(f"{where}.data", "does not match its shape", size, len(flat))])
    try:
        array = np.asarray(flat, dtype=_V2_DTYPES[str(datatype)]).reshape(shape)
    except (ValueError, TypeError, OverflowError):
        raise InputError(
            [_problem(f"{where}.data", f"values are not {datatype}", datatype, None)]
        ) from None
    return name, array


def _shape_size(shape: Any) -> int | None:
    """The number of values a V2 ``shape`` holds; ``None`` if it is not a list of sizes."""
    if type(shape) is not list:
        return None
    size = 1
    for dim in shape:
        if type(dim) is not int or dim < 0:
            return None
        size *= dim
    return size


def _flatten(data: list[Any]) -> list[Any]:
    if data and isinstance(data[0], list):
        out: list[Any] = []
        for part in data:
            out.extend(_flatten(part) if isinstance(part, list) else [part])
        return out
    return data


def parse_v2(body: Any, signature: Signature | None) -> Payload:
    """An Open Inference Protocol request body."""
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list):
        raise InputError(
            [_problem("inputs", "missing", "a list of named tensors", None)], status=400
        )
    wants_columns = signature is not None and not isinstance(signature.inputs, TensorSpec)
    if len(inputs) == 1 and not wants_columns:  # one tensor for a tensor model
        return Payload(array=_v2_input(inputs[0], 0)[1])
    items = [_v2_input(item, i) for i, item in enumerate(inputs)]
    if not items:
        return Payload(columns={})
    if len(items) == 1 and items[0][1].ndim >= 2:  # one tensor for a columns model
        name, array = items[0]
        names = [s.name for s in signature.inputs]  # type: ignore[union-attr]
        if array.ndim == 2 and name in names and array.shape[1] == 1:
            return Payload(columns={name: array[:, 0]})
        return Payload(array=array)
    columns = {}
    for name, array in items:
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise InputError(
                [_problem(name, "one input per column must be 1-D", "[n] or [n, 1]", array.shape)]
            )
        columns[name] = array
    return _columns({k: list(v) if v.dtype == object else v for k, v in columns.items()})


# ---------------------------------------------------------------------------- checking


@dataclass(frozen=True, slots=True)
class Batch:
    """A checked request: its columns in signature order (or its tensor), and its rows."""

    columns: dict[str, np.ndarray] | None
    tensor: np.ndarray | None
    rows: int


def _describe(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _to_numbers(values: Any, spec: ColumnSpec) -> tuple[np.ndarray | None, str | None]:
    dtype = np.dtype(spec.dtype)
    if isinstance(values, np.ndarray) and values.dtype != object:
        kind = values.dtype.kind
        if kind == "b" or (dtype.kind in "iu" and kind == "f"):
            return None, str(values.dtype)
        if kind not in "iuf":
            return None, str(values.dtype)
        return values.astype(dtype, copy=False), None
    array = np.asarray(values) if not isinstance(values, np.ndarray) else values
    if array.dtype.kind in "iu":
        return array.astype(dtype, copy=False), None
    if array.dtype.kind == "f":
        if dtype.kind in "iu":
            return None, "a float"
        return array.astype(dtype, copy=False), None
    # object, bool or strings: find the offending value
    for value in values:
        if value is None:
            if dtype.kind in "iu":
                return None, "null"
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None, _describe(value)
        if dtype.kind in "iu" and isinstance(value, float):
            return None, "a float"
    try:
        return np.array(values, dtype=dtype), None
    except (OverflowError, ValueError, TypeError):
        return None, "a value out of range"


def _column(values: Any, spec: ColumnSpec) -> tuple[np.ndarray | None, str | None]:
    """The column as the dtype the signature names, or (None, what was wrong)."""
    dtype = spec.dtype
    if dtype in ("string", "object"):
        array = np.asarray(values, dtype=object)
        if dtype == "string":
            bad = next((v for v in array if v is not None and not isinstance(v, str)), None)
            if bad is not None:
                return None, _describe(bad)
        return array, None
    if dtype == "bool":
        array = np.asarray(values)
        if array.dtype != bool:
            bad = next((v for v in values if not isinstance(v, bool | np.bool_)), None)
            return None, _describe(bad)
        return array, None
    if dtype.startswith("datetime"):
        try:
            return np.asarray(values, dtype="datetime64[ns]"), None
        except (ValueError, TypeError):
            return None, "a value that is not an ISO date"
    return _to_numbers(values, spec)


def check(payload: Payload, signature: Signature | None, *, max_rows: int) -> Batch:
    """The payload checked against ``signature``; raises :class:`InputError` with every
    problem (413 for too many rows, 400 otherwise)."""
    if payload.columns is not None:
        rows = len(next(iter(payload.columns.values()))) if payload.columns else 0
    else:
        rows = int(payload.array.shape[0]) if payload.array.ndim else 0
    if rows == 0:
        raise InputError([_problem("body", "empty batch", "at least one row", 0)])
    if rows > max_rows:
        raise InputError(
            [_problem("body", "too many rows", f"at most {max_rows:,}", rows)], status=413
        )
    if signature is None:
        if payload.columns is not None:
            return Batch({k: np.asarray(v) for k, v in payload.columns.items()}, None, rows)
        return Batch(None, payload.array, rows)
    if isinstance(signature.inputs, TensorSpec):
        return _check_tensor(payload, signature.inputs, rows)
    return _check_columns(payload, signature.inputs, rows)


def _check_tensor(payload: Payload, spec: TensorSpec, rows: int) -> Batch:
    if payload.array is None:
        raise InputError(
            [_problem("inputs", "named columns for a tensor model", "one array", "columns")]
        )
    array = payload.array
    shape_ok = array.ndim == len(spec.shape) and all(
        want in (-1, got) for want, got in zip(spec.shape, array.shape, strict=False)
    )
    if not shape_ok:
        raise InputError([_problem("input", "wrong shape", list(spec.shape), list(array.shape))])
    fake = ColumnSpec(name="input", dtype=spec.dtype)
    out, bad = _column(array.reshape(-1), fake)
    if out is None:
        raise InputError([_problem("input", "wrong type", spec.dtype, bad)])
    return Batch(None, out.reshape(array.shape), rows)


def _check_columns(payload: Payload, specs: Sequence[ColumnSpec], rows: int) -> Batch:
    if payload.columns is None:
        array = payload.array
        if array.ndim != 2 or array.shape[1] != len(specs):
            raise InputError(
                [
                    _problem(
                        "data",
                        "wrong number of columns",
                        f"{len(specs)} columns ({', '.join(s.name for s in specs[:10])}...)",
                        list(array.shape),
                    )
                ]
            )
        given: Mapping[str, Any] = {s.name: array[:, i] for i, s in enumerate(specs)}
    else:
        given = payload.columns
    problems = []
    known = {s.name for s in specs}
    for name in given:
        if name not in known:
            problems.append(_problem(name, "not a column of the model", None, "unexpected"))
    out: dict[str, np.ndarray] = {}
    for spec in specs:
        if spec.name not in given:
            if spec.required:
                problems.append(_problem(spec.name, "missing", spec.dtype, None))
            continue
        values = given[spec.name]
        absent = getattr(values, "absent", None)
        if absent and spec.required:
            problems.append(_problem(spec.name, f"missing in record {absent[0]}", spec.dtype, None))
            continue
        column, bad = _column(values, spec)
        if column is None:
            problems.append(_problem(spec.name, "wrong type", spec.dtype, bad))
        else:
            out[spec.name] = column
    if problems:
        raise InputError(problems)
    return Batch(out, None, rows)
