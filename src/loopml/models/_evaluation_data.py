"""Parsing the ``data`` of :func:`loopml.models.evaluate`: features, targets, checks."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from loopml.errors import InvalidArgumentError, MissingDependencyError
from loopml.storage.paths import validate_artifact_path
from loopml.storage.validation import validate_key

TASKS = ("classification", "regression")
ARTIFACT_FOLDER = "evaluation"


@dataclass(frozen=True)
class _Data:
    features: Any
    targets: Any  # a 1-D numpy array
    rows: int


def _bad(field_name: str, message: str) -> InvalidArgumentError:
    return InvalidArgumentError(message, field=field_name)


def _sklearn_metrics() -> Any:
    try:
        import sklearn.metrics
    except ImportError:
        raise MissingDependencyError.for_extra(
            "scikit-learn", "sklearn", "loopml.evaluate"
        ) from None
    return sklearn.metrics


def _is_frame(value: Any) -> bool:
    return hasattr(value, "columns") and hasattr(value, "drop") and hasattr(value, "iloc")


def _check_task(task: Any) -> str | None:
    if task is None or task in TASKS:
        return task
    raise _bad("task", f"task must be one of {', '.join(TASKS)} or None (inferred). Got {task!r}.")


def _check_threshold(threshold: Any) -> float:
    ok = isinstance(threshold, numbers.Real) and not isinstance(threshold, bool)
    if not ok or not 0.0 <= float(threshold) <= 1.0:
        raise _bad("threshold", f"threshold must be a number in [0, 1]. Got {threshold!r}.")
    return float(threshold)


def _check_prefix(prefix: Any) -> str:
    if not isinstance(prefix, str):
        raise _bad("prefix", f"prefix must be a string. Got {type(prefix).__name__}.")
    try:
        validate_key("metric", f"{prefix}accuracy")
    except InvalidArgumentError as exc:
        raise _bad(
            "prefix", f"prefix {prefix!r} makes invalid metric keys: {exc.message}"
        ) from None
    try:
        validate_artifact_path(_artifact_folder(prefix))
    except InvalidArgumentError:
        raise _bad(
            "prefix", f"prefix {prefix!r} cannot name a folder of artifacts (evaluation/...)."
        ) from None
    return prefix


def _artifact_folder(prefix: str) -> str:
    """``evaluation`` for the default prefix (or none), else ``evaluation/<prefix>``: two
    evaluations logged into one run under different prefixes keep their own files."""
    name = prefix.strip("_-. ")
    return ARTIFACT_FOLDER if prefix == "eval_" or not name else f"{ARTIFACT_FOLDER}/{name}"


def _parse_data(data: Any, targets: Any) -> _Data:
    """``(X, y)`` or a DataFrame with ``targets`` naming its target column."""
    if isinstance(data, tuple):
        if len(data) != 2:
            raise _bad("data", f"data must be a tuple (X, y). Got a tuple of {len(data)} items.")
        if targets is not None:
            raise _bad(
                "targets",
                "targets names the target column of a DataFrame; with data=(X, y) leave it out.",
            )
        features, y = data
    elif _is_frame(data):
        features, y = _split_frame(data, targets)
    else:
        raise _bad(
            "data",
            "data must be a tuple (X, y) or a pandas DataFrame with targets='<column>'. "
            f"Got {type(data).__name__}.",
        )
    labels = _target_array(y)
    rows = _row_count(features)
    if rows == 0 or len(labels) == 0:
        raise _bad("data", f"data is empty: X has {rows} rows and y has {len(labels)} values.")
    if rows != len(labels):
        raise _bad(
            "data", f"X and y must have the same length: X has {rows} rows, y has {len(labels)}."
        )
    return _Data(features, labels, rows)


def _split_frame(frame: Any, targets: Any) -> tuple[Any, Any]:
    if targets is None:
        raise _bad(
            "targets",
            "With a DataFrame as data, pass targets='<target column>' (or pass data=(X, y)).",
        )
    if isinstance(targets, list | tuple | set | dict):
        raise _bad("targets", f"targets must name one column. Got {targets!r}.")
    columns = list(frame.columns)
    if targets not in columns:
        shown = ", ".join(repr(c) for c in columns[:20]) + (", ..." if len(columns) > 20 else "")
        raise _bad(
            "targets", f"The target column {targets!r} is not in the data. Columns: {shown}."
        )
    features = frame.drop(columns=[targets])
    if len(features.columns) == 0:
        raise _bad("data", f"The DataFrame has no feature columns besides {targets!r}.")
    return features, frame[targets]


def _row_count(features: Any) -> int:
    if features is None:
        raise _bad("data", "X is None; data must be a tuple (X, y).")
    shape = getattr(features, "shape", None)
    if isinstance(shape, tuple) and shape:
        return int(shape[0])
    if isinstance(features, Mapping):
        lengths = {_length(column) for column in features.values()}
        return lengths.pop() if len(lengths) == 1 else _bad_columns()
    return _length(features)


def _bad_columns() -> int:
    raise _bad("data", "The columns of X have different lengths.")


def _length(values: Any) -> int:
    try:
        return len(values)
    except TypeError:
        raise _bad(
            "data", f"X must be a table, an array or a list of rows. Got {type(values).__name__}."
        ) from None


def _target_array(y: Any) -> Any:
    """``y`` as a 1-D numpy array without missing values; numbers in object arrays typed."""
    import numpy as np

    if y is None:
        raise _bad("data", "y is None; data must be a tuple (X, y).")
    if _is_frame(y):
        if len(y.columns) != 1:
            raise _bad("data", f"y must be one column. Got {len(y.columns)} columns.")
        y = y.iloc[:, 0]
    missing = int(y.isna().sum()) if hasattr(y, "isna") else 0
    values = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values.ravel()
    if values.ndim != 1:
        raise _bad("data", f"y must be one value per row (1-D). Got shape {values.shape}.")
    if values.dtype.kind == "f":
        missing = max(missing, int(np.isnan(values).sum()))
    elif values.dtype.kind == "O":
        missing = max(missing, sum(1 for v in values.tolist() if _is_missing(v)))
    if missing:
        raise _bad("data", f"y has {missing} missing values; every row needs a target.")
    return _typed(values)


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)
    except TypeError:  # pandas.NA
        return True


def _typed(values: Any) -> Any:
    """An object array of only bools, ints or floats as a bool, int64 or float64 array."""
    import numpy as np

    if values.dtype.kind != "O":
        return values
    items = values.tolist()
    if all(isinstance(v, bool | np.bool_) for v in items):
        return values.astype(bool)
    numbers_only = all(
        isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_) for v in items
    )
    if numbers_only:
        integral = all(isinstance(v, numbers.Integral) for v in items)
        return values.astype(np.int64 if integral else np.float64)
    return values


def _is_numeric(values: Any) -> bool:
    return bool(values.dtype.kind in "biuf")


def _one_column(values: Any, what: str, rows: int, field_name: str) -> Any:
    import numpy as np

    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array.ravel()
    if array.ndim != 1 or len(array) != rows:
        raise _bad(
            field_name,
            f"The model's {what} must be one value per row ({rows} rows). "
            f"Got shape {array.shape}; evaluate supports one target.",
        )
    return _typed(array)
