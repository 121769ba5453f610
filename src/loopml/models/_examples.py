"""Input examples: written as ``input_example.json`` in a model package, read back lazily.

The file holds plain JSON a client could send to the model as is: a table (a DataFrame, a
dict of columns, a list of records, a pyarrow Table) as a list of records, anything
array-like as a (nested) list. Missing values and non-finite floats become ``null``.
Read back, a list of records becomes a DataFrame and a list a numpy array.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from loopml.errors import InvalidArgumentError

__all__ = ["example_from_json", "example_to_json"]


def _is_frame(value: Any) -> bool:
    return type(value).__name__ == "DataFrame" and hasattr(value, "to_json")


def _plain(value: Any) -> Any:
    """Python values JSON can hold: numpy scalars unwrapped, NaN and infinity as None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        return _plain(value.tolist())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _records(example: Any) -> list[dict[str, Any]] | None:
    """The example as a list of records if it is a table, else ``None``."""
    if _is_frame(example):
        return list(json.loads(example.to_json(orient="records", date_format="iso")))
    if type(example).__name__ == "Table" and hasattr(example, "to_pylist"):
        return [_plain(row) for row in example.to_pylist()]
    if isinstance(example, Mapping):
        import pandas as pd

        try:
            frame = pd.DataFrame({str(k): v for k, v in example.items()})
        except ValueError:  # a dict of scalars: one record
            frame = pd.DataFrame([dict(example)])
        return _records(frame)
    if isinstance(example, list) and example and all(isinstance(r, Mapping) for r in example):
        return [_plain(dict(row)) for row in example]
    return None


def example_to_json(example: Any) -> bytes:
    """The bytes of ``input_example.json`` for ``example``.

    Raises:
        InvalidArgumentError: the example is not a table or array-like value.
    """
    body: Any = _records(example)
    if body is None:
        if isinstance(example, str | bytes) or not (
            hasattr(example, "tolist") or isinstance(example, list | tuple)
        ):
            raise InvalidArgumentError(
                "input_example must be a pandas DataFrame, a numpy array, a list, a list of "
                f"records, a dict of columns or a pyarrow Table. Got {type(example).__name__}.",
                field="input_example",
            )
        body = _plain(example)
    try:
        return json.dumps(body, ensure_ascii=False, allow_nan=False, default=str).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            f"input_example cannot be written as JSON: {exc}", field="input_example"
        ) from None


def example_from_json(data: bytes) -> Any:
    """The example stored by :func:`example_to_json`: a DataFrame or a numpy array."""
    body = json.loads(data.decode("utf-8"))
    if isinstance(body, list) and body and all(isinstance(row, dict) for row in body):
        import pandas as pd

        return pd.DataFrame.from_records(body)
    import numpy as np

    return np.asarray(body)
