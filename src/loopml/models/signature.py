"""Model signatures: what a model takes and returns, checked on every predict.

A :class:`Signature` is inferred from an input example (:func:`infer_signature`), stored as
plain JSON (:meth:`Signature.to_dict`) and enforced before each prediction
(:func:`enforce_signature`). It is either a list of named, typed columns (tabular models) or one
tensor with a dtype and a shape whose first (batch) dimension is ``-1`` (array models).

Accepted inputs: numpy arrays, pandas DataFrames, pyarrow Tables, lists of records (list of
dicts), dicts of columns (a dict of scalars is one record) and 2-D lists. For a column
signature the result is a DataFrame holding the signature's columns in the signature's order;
input columns the signature does not name are dropped silently, and a 2-D array is read
positionally when its width equals the number of columns. For a tensor signature the result
is a numpy array.

Enforcement collects every problem and raises one :class:`~loopml.errors.SignatureError`.
Cast rules (dtypes from numpy, pandas and pyarrow are typed; everything else is checked value
by value):

* int -> wider int (``np.can_cast(..., "safe")``: int8 -> int64, uint8 -> int16) and
  int -> float of the same or a wider size are applied; float32 -> float64 likewise.
* float -> int (even for whole numbers), narrowing (int64 -> int32, float64 -> float32,
  int64 -> float32), int -> uint, bool <-> number, string <-> number and datetime <-> anything
  else are refused. Strings are never parsed (not even ISO dates).
* Python values (object columns, records, dicts, 2-D lists) carry no width, so they are
  checked by value: ints fit the expected int range, ints convert to a float only where the
  float holds them exactly, floats go to any float dtype (JSON numbers for a float32 model).
* int and bool can't hold missing values (a NaN or None there is a problem); float, string,
  datetime and object columns can.
* ``string``, ``datetime64[ns]`` (any resolution, with or without a time zone) and ``object``
  columns are passed on unchanged; object columns of ``datetime`` values become datetime64.
* A column with ``required=False`` may be absent; it is then absent from the result too.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import numpy as np
from numpy.typing import NDArray

from loopml.errors import InvalidArgumentError, MissingDependencyError, SignatureError

__all__ = [
    "DTYPES",
    "ColumnSpec",
    "Signature",
    "TensorSpec",
    "enforce_signature",
    "infer_signature",
    "to_model_input",
]

_INTS = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
DTYPES = ("bool", *_INTS, "float16", "float32", "float64", "string", "datetime64[ns]", "object")
"""Every dtype a :class:`ColumnSpec` or :class:`TensorSpec` may name."""

_FORMAT_VERSION = 1
_ACCEPTED = (
    "a numpy array, a pandas DataFrame, a pyarrow Table, a list of records (dicts), "
    "a dict of columns or a 2-D list"
)
# pandas' infer_dtype names -> the words used here (other names are used as they are)
_OBJECT_KINDS = dict(integer="int", floating="float", boolean="bool", datetime64="datetime")
_OBJECT_KINDS.update({"mixed-integer-float": "float", "date": "datetime"})

Array = NDArray[Any]
T = TypeVar("T")


def _check_dtype(value: Any, field: str) -> None:
    if value not in DTYPES:
        raise InvalidArgumentError(
            f"'{field}' must be one of {', '.join(DTYPES)}. Got {value!r}.", field=field
        )


def _check_shape(value: Any, field: str) -> None:
    ok = isinstance(value, list | tuple) and len(value) > 0 and value[0] == -1
    ok = ok and all(isinstance(n, int) and not isinstance(n, bool) for n in value)
    if not ok or any(n < 1 and n != -1 for n in value):
        raise InvalidArgumentError(
            f"'{field}' must be a non-empty list of sizes, each -1 (any) or a positive int, "
            f"starting with -1 (the batch dimension). Got {value!r}.",
            field=field,
        )


@dataclass(frozen=True)
class ColumnSpec:
    """One named input or output column (``required=False``: the column may be absent)."""

    name: str
    dtype: str
    required: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidArgumentError(
                f"'name' must be a non-empty string. Got {self.name!r}.", field="name"
            )
        _check_dtype(self.dtype, "dtype")
        if not isinstance(self.required, bool):
            raise InvalidArgumentError(
                f"'required' must be true or false. Got {self.required!r}.", field="required"
            )


@dataclass(frozen=True)
class TensorSpec:
    """One array: its dtype and shape; ``-1`` is any size and the first dimension is -1."""

    dtype: str
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        _check_dtype(self.dtype, "dtype")
        _check_shape(self.shape, "shape")
        object.__setattr__(self, "shape", tuple(self.shape))


Spec = tuple[ColumnSpec, ...] | TensorSpec


def _check_spec(value: Any, field: str) -> Spec:
    if isinstance(value, TensorSpec):
        return value
    if isinstance(value, list | tuple) and value and all(isinstance(c, ColumnSpec) for c in value):
        names = [c.name for c in value]
        doubled = sorted({n for n in names if names.count(n) > 1})
        if doubled:
            raise InvalidArgumentError(
                f"'{field}' names columns more than once: {doubled}.", field=field
            )
        return tuple(value)
    raise InvalidArgumentError(
        f"'{field}' must be a TensorSpec or a non-empty sequence of ColumnSpec. Got {value!r}.",
        field=field,
    )


@dataclass(frozen=True)
class Signature:
    """What a model takes (``inputs``) and, when known, what it returns (``outputs``)."""

    inputs: tuple[ColumnSpec, ...] | TensorSpec
    outputs: tuple[ColumnSpec, ...] | TensorSpec | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", _check_spec(self.inputs, "inputs"))
        if self.outputs is not None:
            object.__setattr__(self, "outputs", _check_spec(self.outputs, "outputs"))

    @property
    def kind(self) -> str:
        """``"columns"`` or ``"tensor"``: the form of the inputs."""
        return "tensor" if isinstance(self.inputs, TensorSpec) else "columns"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON; :meth:`from_dict` reads it back."""
        outputs = None if self.outputs is None else _spec_to_dict(self.outputs)
        return {
            "format_version": _FORMAT_VERSION,
            "inputs": _spec_to_dict(self.inputs),
            "outputs": outputs,
        }

    @classmethod
    def from_dict(cls, d: Any) -> Signature:
        """The signature :meth:`to_dict` wrote; ``InvalidArgumentError`` names a bad field."""
        if not isinstance(d, Mapping):
            raise InvalidArgumentError(
                f"A signature must be a JSON object. Got {type(d).__name__}.", field="signature"
            )
        if d.get("format_version", _FORMAT_VERSION) != _FORMAT_VERSION:
            raise InvalidArgumentError(
                f"Unknown signature format_version {d['format_version']!r} (this loopml reads "
                f"version {_FORMAT_VERSION}).",
                field="format_version",
            )
        if d.get("inputs") is None:
            raise InvalidArgumentError("A signature needs 'inputs'.", field="inputs")
        outputs = d.get("outputs")
        return cls(
            inputs=_spec_from_dict(d["inputs"], "inputs"),
            outputs=None if outputs is None else _spec_from_dict(outputs, "outputs"),
        )

    def describe(self) -> list[str]:
        """Human lines: ``"tenure: int64"``, ``"input: float32 [-1, 4]"``, then the outputs
        (``"output: float64 [-1]"`` or ``"output churn: bool"``)."""
        lines = _describe(self.inputs, "input", "")
        if self.outputs is not None:
            lines += _describe(self.outputs, "output", "output ")
        return lines


def _describe(spec: Spec, tensor_name: str, prefix: str) -> list[str]:
    if isinstance(spec, TensorSpec):
        return [f"{tensor_name}: {spec.dtype} {list(spec.shape)}"]
    return [f"{prefix}{c.name}: {c.dtype}" + ("" if c.required else " (optional)") for c in spec]


def _spec_to_dict(spec: Spec) -> dict[str, Any]:
    if isinstance(spec, TensorSpec):
        return {"type": "tensor", "dtype": spec.dtype, "shape": list(spec.shape)}
    columns = [{"name": c.name, "dtype": c.dtype, "required": c.required} for c in spec]
    return {"type": "columns", "columns": columns}


def _spec_from_dict(obj: Any, path: str) -> Spec:
    obj = _mapping(obj, path)
    kind = obj.get("type")
    if kind == "tensor":
        return _at(path, lambda: TensorSpec(obj.get("dtype"), obj.get("shape")))
    if kind != "columns":
        raise InvalidArgumentError(
            f"'{path}.type' must be 'columns' or 'tensor'. Got {kind!r}.", field=f"{path}.type"
        )
    columns = obj.get("columns")
    if not isinstance(columns, list) or not columns:
        raise InvalidArgumentError(
            f"'{path}.columns' must be a non-empty list. Got {columns!r}.",
            field=f"{path}.columns",
        )
    specs = tuple(_column_from_dict(c, f"{path}.columns[{i}]") for i, c in enumerate(columns))
    return _at(path, lambda: _check_spec(specs, "columns"))


def _column_from_dict(obj: Any, path: str) -> ColumnSpec:
    obj = _mapping(obj, path)
    return _at(
        path, lambda: ColumnSpec(obj.get("name"), obj.get("dtype"), obj.get("required", True))
    )


def _mapping(obj: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise InvalidArgumentError(f"'{path}' must be a JSON object. Got {obj!r}.", field=path)
    return obj


def _at(path: str, make: Callable[[], T]) -> T:
    """``make()``, its InvalidArgumentError's field prefixed with ``path``."""
    try:
        return make()
    except InvalidArgumentError as exc:
        inner = exc.details["field"]
        message = exc.message.replace(f"'{inner}'", f"'{path}.{inner}'", 1)
        raise InvalidArgumentError(message, field=f"{path}.{inner}") from None


# --- reading the accepted input forms ------------------------------------------------------


def _pandas(purpose: str) -> Any:
    try:
        import pandas as pd
    except ImportError as exc:
        raise MissingDependencyError.for_extra("pandas", "pandas", purpose) from exc
    return pd


def _is_pandas(value: Any, *names: str) -> bool:
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(value, tuple(getattr(pd, n) for n in names))


def _is_arrow(value: Any) -> bool:
    pa = sys.modules.get("pyarrow")
    return pa is not None and isinstance(value, pa.Table | pa.RecordBatch)


def _arrow_to_pandas(table: Any, *, nullable: bool) -> Any:
    """A DataFrame; with ``nullable``, int and bool columns keep their nulls (pandas' masked
    dtypes) instead of turning into float or object columns."""
    pd = _pandas("Reading a pyarrow Table as model input")
    if not nullable:
        return table.to_pandas()
    import pyarrow as pa

    mapping = {
        getattr(pa, n)(): pd.api.types.pandas_dtype(n.replace("uint", "UInt").replace("int", "Int"))
        for n in _INTS
    }
    mapping[pa.bool_()] = pd.BooleanDtype()
    return table.to_pandas(types_mapper=mapping.get)


def _bad_input(field: str, why: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"The '{field}' {why}", field=field)


def _bad_type(data: Any, field: str) -> InvalidArgumentError:
    got = "None" if data is None else f"a value of type {type(data).__name__}"
    return _bad_input(field, f"must be {_ACCEPTED}. Got {got} instead.")


def _read(data: Any, field: str, *, raw: bool = False) -> Any:
    """``data`` as a DataFrame or ndarray. With ``raw``, Python values stay Python objects
    (object columns and arrays), so that they can be checked by value."""
    if isinstance(data, np.ndarray):
        if data.ndim == 0:
            raise _bad_input(field, "must have rows. Got a 0-d array (one value).")
        return data
    if _is_pandas(data, "DataFrame"):
        return data
    if _is_pandas(data, "Series"):
        return data.to_frame()
    if _is_arrow(data):
        return _arrow_to_pandas(data, nullable=raw)
    if isinstance(data, Mapping):
        return _read_dict(data, field, raw=raw)
    if isinstance(data, list | tuple):
        return _read_list(data, field, raw=raw)
    raise _bad_type(data, field)


def _read_dict(data: Mapping[Any, Any], field: str, *, raw: bool) -> Any:
    pd = _pandas("Reading a dict as model input")
    if not data:
        raise _bad_input(field, "must have columns. Got an empty dict.")
    columnar = (list, tuple, np.ndarray, pd.Series)
    if not any(isinstance(v, columnar) for v in data.values()):
        return _read_list([data], field, raw=raw)  # a dict of scalars is one record
    try:
        if raw:
            typed = (np.ndarray, pd.Series)
            data = {k: v if isinstance(v, typed) else _objects(v) for k, v in data.items()}
        return pd.DataFrame(data)
    except (ValueError, TypeError) as exc:
        raise _bad_input(field, f"is a dict of columns that is not a table: {exc}") from None


def _objects(values: Any) -> Array:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _is_records(data: Any) -> bool:
    return isinstance(data, list | tuple) and bool(data) and isinstance(data[0], Mapping)


def _read_list(data: list[Any] | tuple[Any, ...], field: str, *, raw: bool) -> Any:
    if not data:
        raise _bad_input(field, "must have at least one row. Got an empty list.")
    if _is_records(data):
        pd = _pandas("Reading records as model input")
        try:
            return pd.DataFrame(list(data), dtype=object if raw else None)
        except (ValueError, TypeError) as exc:
            raise _bad_input(field, f"is a list of records that is not a table: {exc}") from None
    try:
        array = np.array(data, dtype=object) if raw else np.asarray(data)
    except ValueError:
        raise _bad_input(field, "must have rows of one length. Got a ragged list.") from None
    if raw and array.ndim == 1 and any(isinstance(v, list | tuple | Mapping) for v in data):
        raise _bad_input(field, "must have rows of one length. Got a ragged list.")
    return array


def _column_values(s: Any) -> Array:
    """A column's values as a numpy array (nullable ints and bools holding nulls become
    object arrays, whose missing values are then reported)."""
    dtype = s.dtype
    if isinstance(dtype, np.dtype):
        return np.asarray(s.to_numpy())
    np_dtype = getattr(dtype, "numpy_dtype", None)
    if isinstance(np_dtype, np.dtype) and np_dtype.kind in "biuf":
        if not s.hasnans:
            return np.asarray(s.to_numpy(dtype=np_dtype))
        if np_dtype.kind == "f":
            return np.asarray(s.to_numpy(dtype=np_dtype, na_value=np.nan))
        return np.asarray(s.to_numpy(dtype=object, na_value=None))
    return np.asarray(s.to_numpy())


def to_model_input(data: Any) -> Any:
    """``data`` in the form a model takes, without a signature: a DataFrame stays a DataFrame,
    records, a dict and a pyarrow Table become a DataFrame, a list a numpy array."""
    return _read(data, "data")


# --- inference -----------------------------------------------------------------------------


def _object_kind(values: Any) -> str:
    """What an object array holds: a word of :data:`_OBJECT_KINDS` or pandas' own name."""
    pd = _pandas("Checking a column of Python objects")
    inferred = str(pd.api.types.infer_dtype(np.ravel(values), skipna=True))
    return _OBJECT_KINDS.get(inferred, inferred)


def _infer_objects(values: Any) -> str:
    kind = _object_kind(values)
    nulls = bool(_pandas("Inferring a signature").isna(values).any())
    if kind == "int":
        return "float64" if nulls else "int64"
    if kind == "bool" and not nulls:
        return "bool"
    return {"float": "float64", "string": "string", "datetime": "datetime64[ns]"}.get(
        kind, "object"
    )


def _infer_numpy(values: Array) -> str:
    dtype = values.dtype
    if dtype.kind == "O":
        return _infer_objects(values)
    if dtype.kind == "M":
        return "datetime64[ns]"
    if dtype.kind == "U":
        return "string"
    return dtype.name if dtype.name in DTYPES else "object"


def _infer_spec(example: Any, field: str) -> Spec:
    if isinstance(example, str | bytes | int | float | bool | np.generic):
        raise _bad_type(example, field)
    data = _read(example, field)
    if len(data) == 0:
        raise _bad_input(field, "must have at least one row. Got none.")
    if isinstance(data, np.ndarray):
        return TensorSpec(_infer_numpy(data), (-1, *data.shape[1:]))
    if data.shape[1] == 0:
        raise _bad_input(field, "must have at least one column. Got none.")
    names = [str(c) for c in data.columns]
    if len(set(names)) < len(names):
        raise _bad_input(field, f"names a column more than once: {names}.")
    columns = (_column_values(data.iloc[:, i]) for i in range(len(names)))
    return tuple(ColumnSpec(n, _infer_numpy(v)) for n, v in zip(names, columns, strict=True))


def infer_signature(input_example: Any, output: Any = None) -> Signature:
    """The signature of a model that takes ``input_example`` (and, when given, returns
    ``output``: its predictions on the example)."""
    outputs = None if output is None else _infer_spec(output, "output")
    return Signature(inputs=_infer_spec(input_example, "input_example"), outputs=outputs)


# --- enforcement ---------------------------------------------------------------------------


class _Refused(NamedTuple):
    problem: str  # "type" or "nulls"
    got: str


def _widens(src: np.dtype[Any], dst: np.dtype[Any]) -> bool:
    if src.kind in "iu" and dst.kind in "iu":
        return bool(np.can_cast(src, dst, "safe"))
    return src.kind in "iuf" and dst.kind == "f" and dst.itemsize >= src.itemsize


def _cast(values: Array, expected: str, *, by_value: bool) -> Array | _Refused:
    """``values`` as ``expected``, or why not. Returns ``values`` itself when they are
    accepted as they are."""
    if expected == "object":
        return values
    if values.dtype.kind == "O":
        return _cast_objects(values, expected)
    kind = values.dtype.kind
    word = {"b": "bool", "i": "int", "u": "int", "f": "float", "U": "string"}.get(kind)
    label = "string" if kind == "U" else values.dtype.name
    label = f"{word} values" if by_value and word else label
    if expected in ("string", "datetime64[ns]"):
        return values if kind == ("U" if expected == "string" else "M") else _Refused("type", label)
    target = np.dtype(expected)
    if kind == "b" or target.kind == "b":
        return values if kind == target.kind else _Refused("type", label)
    if kind not in "iuf" or (kind == "f" and target.kind != "f"):
        return _Refused("type", label)
    if by_value:
        return _cast_by_value(values, target)
    if _widens(values.dtype, target):
        return values.astype(target, copy=False)
    return _Refused("type", label)


def _cast_by_value(values: Array, target: np.dtype[Any]) -> Array | _Refused:
    """Ints or floats without a meaningful width (Python values) as ``target``."""
    if target.kind in "iu":
        info = np.iinfo(target)
        if values.size and (values.min() < info.min or values.max() > info.max):
            return _Refused("type", f"int values outside the {target} range")
        return values.astype(target)
    if values.dtype.kind in "iu":
        limit = 2 ** (np.finfo(target).nmant + 1)
        if values.size and (values.min() < -limit or values.max() > limit):
            return _Refused("type", f"int values that {target} cannot hold exactly")
        return values.astype(target)
    with np.errstate(over="ignore"):
        out = values.astype(target)
    if np.any(np.isinf(out) & ~np.isinf(values)):
        return _Refused("type", f"float values outside the {target} range")
    return out


def _cast_objects(values: Array, expected: str) -> Array | _Refused:
    pd = _pandas("Checking a column of Python objects")
    kind = _object_kind(values)
    refused = _Refused("type", f"{kind} values")
    if expected == "string":
        return values if kind in ("string", "empty") else refused
    if expected == "datetime64[ns]":
        if kind not in ("datetime", "empty"):
            return refused
        try:
            converted = pd.to_datetime(values.ravel())
        except (ValueError, TypeError):
            return values
        ok = isinstance(converted.dtype, np.dtype)
        return converted.to_numpy().reshape(values.shape) if ok else values
    target = np.dtype(expected)
    if kind == "empty":  # only missing values (or no rows): their count decides
        kind = "bool" if target.kind == "b" else "int"
    if kind not in ("int", "float", "bool") or (kind == "bool") != (target.kind == "b"):
        return refused
    if kind == "float" and target.kind != "f":
        return refused
    missing = pd.isna(values)
    count = int(missing.sum())
    if count and target.kind != "f":
        return _Refused("nulls", f"{count} missing value" + ("s" if count > 1 else ""))
    if kind == "bool":
        return values.astype(bool)
    present = values[~missing]
    numbers = _python_numbers(present, kind)
    if numbers is None:
        return _Refused("type", f"{kind} values outside the {target} range")
    cast = _cast_by_value(numbers, target)
    if isinstance(cast, _Refused):
        return cast
    if not count:
        return cast.reshape(values.shape)
    out = np.full(values.shape, np.nan, dtype=target)
    out[~missing] = cast
    return out


def _python_numbers(values: Array, kind: str) -> Array | None:
    """Python ints or floats as int64, uint64 or float64; None where they overflow."""
    for dtype in (np.int64, np.uint64) if kind == "int" else (np.float64,):
        try:
            return values.astype(dtype)
        except OverflowError:
            continue
    return None


class _Problems:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.lines: list[str] = []

    def add(self, field: str, problem: str, expected: Any, got: Any, line: str) -> None:
        self.items.append({"field": field, "problem": problem, "expected": expected, "got": got})
        self.lines.append(line)

    def add_refusal(self, field: str, where: str, expected: str, refused: _Refused) -> None:
        if refused.problem == "nulls":
            line = f"{where}: has {refused.got}, expected {expected}"
        else:
            line = f"{where}: got {refused.got}, expected {expected}"
        self.add(field, refused.problem, expected, refused.got, line)

    def error(self, hint: str = "") -> SignatureError:
        lines = "\n".join(f"  - {line}" for line in self.lines)
        message = f"Input does not match the model signature:\n{lines}{hint}"
        return SignatureError(message, problems=self.items)


def _enforce_columns(specs: tuple[ColumnSpec, ...], data: Any) -> Any:
    pd = _pandas("Checking input against a column signature")
    frame = _read(data, "data", raw=True)
    problems = _Problems()
    if isinstance(frame, np.ndarray):
        frame = _positional_frame(specs, frame, problems)
        if frame is None:
            raise problems.error()
    names = [str(c) for c in frame.columns]
    position = {name: i for i, name in enumerate(names)}
    counts = Counter(names)
    columns: dict[str, Any] = {}
    for spec in specs:
        if spec.name not in position:
            if spec.required:
                line = f"column {spec.name!r}: missing (expected {spec.dtype})"
                problems.add(spec.name, "missing", spec.dtype, None, line)
            continue
        if counts[spec.name] > 1:
            line = f"column {spec.name!r}: appears {counts[spec.name]} times"
            problems.add(spec.name, "duplicate", spec.dtype, "duplicate columns", line)
            continue
        series = frame.iloc[:, position[spec.name]]
        values = _column_values(series)
        out = _cast(values, spec.dtype, by_value=False)
        if isinstance(out, _Refused):
            problems.add_refusal(spec.name, f"column {spec.name!r}", spec.dtype, out)
        elif out is values and spec.dtype in ("string", "datetime64[ns]", "object"):
            columns[spec.name] = series.array  # passed on unchanged, with its pandas dtype
        else:
            columns[spec.name] = out
    if problems.items:
        raise problems.error(_unexpected_hint(specs, names, problems))
    return pd.DataFrame(columns, index=frame.index)


def _unexpected_hint(specs: tuple[ColumnSpec, ...], names: list[str], problems: _Problems) -> str:
    """Names the input's extra columns when columns are missing (a typo, a case mix-up)."""
    known = {s.name for s in specs}
    unexpected = [n for n in names if n not in known][:20]
    if not unexpected or all(p["problem"] != "missing" for p in problems.items):
        return ""
    return f"\nThe input got unexpected columns {unexpected} (column names are case-sensitive)."


def _positional_frame(specs: tuple[ColumnSpec, ...], array: Array, problems: _Problems) -> Any:
    """A 2-D array read as the signature's columns in order, or None (problem added)."""
    pd = _pandas("Checking input against a column signature")
    if array.ndim != 2 or array.shape[1] != len(specs):
        expected = f"a table or a 2-D array with {len(specs)} columns"
        got = f"an array of shape {list(array.shape)}"
        problems.add("input", "shape", expected, got, f"input: got {got}, expected {expected}")
        return None
    return pd.DataFrame({s.name: array[:, i] for i, s in enumerate(specs)})


def _tensor_values(data: Any) -> tuple[Array, bool]:
    """The input as one array, and whether its values came from Python (checked by value)."""
    if isinstance(data, np.ndarray):
        return _read(data, "data"), False
    if _is_arrow(data):
        if data.num_columns == 0:
            raise _bad_input("data", "must have at least one column. Got none.")
        return np.column_stack([c.to_numpy() for c in data.columns]), False
    from_python = isinstance(data, list | tuple | Mapping)
    # records and dicts stay Python objects, so a missing key reads as a missing value
    frame = _read(data, "data", raw=_is_records(data) or isinstance(data, Mapping))
    if not isinstance(frame, np.ndarray):
        frame = frame.to_numpy()
    return np.asarray(frame), from_python


def _enforce_tensor(spec: TensorSpec, data: Any) -> Array:
    values, by_value = _tensor_values(data)
    problems = _Problems()
    expected_shape = list(spec.shape)
    shape_ok = values.ndim == len(spec.shape) and all(
        want in (-1, got) for want, got in zip(spec.shape, values.shape, strict=False)
    )
    if not shape_ok:
        got_shape = list(values.shape)
        line = f"input: got shape {got_shape}, expected {expected_shape}"
        problems.add("input", "shape", expected_shape, got_shape, line)
    out = _cast(values, spec.dtype, by_value=by_value)
    if isinstance(out, _Refused):
        problems.add_refusal("input", "input", spec.dtype, out)
    if problems.items or isinstance(out, _Refused):
        raise problems.error()
    return out


def enforce_signature(signature: Signature, data: Any) -> Any:
    """``data`` checked against ``signature`` and cast where that is safe: a DataFrame with
    the signature's columns in its order, or a numpy array for a tensor signature.

    Raises ``SignatureError`` listing every problem, or ``InvalidArgumentError`` when ``data``
    is not one of the accepted input forms.
    """
    if isinstance(signature.inputs, TensorSpec):
        return _enforce_tensor(signature.inputs, data)
    return _enforce_columns(signature.inputs, data)
