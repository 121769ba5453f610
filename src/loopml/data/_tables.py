"""Tables in, Parquet out: what counts as a table and how it is stored.

A pandas DataFrame, a pyarrow Table or RecordBatch, or a file ending in ``.parquet``,
``.pq``, ``.csv``, ``.tsv`` (optionally gzip-compressed, ``.csv.gz``) is a table. A table is
stored as one Parquet file; a Parquet source is stored byte for byte, anything else is
written with zstd compression. The DataFrame index is kept only when it carries information
(not a default ``RangeIndex``).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from loopml.errors import InvalidArgumentError, MissingDependencyError

__all__ = ["TABLE_MEMBER", "is_table_file", "is_table_object", "read_table_file", "to_arrow"]

TABLE_MEMBER = "data.parquet"
"""The path of the Parquet file inside a table version (fixed, so the version's digest
depends only on the table's content)."""

_PARQUET = (".parquet", ".pq")
_CSV = (".csv", ".csv.gz", ".tsv", ".tsv.gz")


def is_table_object(obj: Any) -> bool:
    module = type(obj).__module__
    if module.startswith("pandas") and type(obj).__name__ == "DataFrame":
        return True
    return module.startswith("pyarrow") and type(obj).__name__ in ("Table", "RecordBatch")


def is_table_file(path: str) -> bool:
    return path.lower().endswith(_PARQUET + _CSV)


def is_parquet_file(path: str) -> bool:
    return path.lower().endswith(_PARQUET)


def to_arrow(obj: Any) -> Any:
    """A pyarrow Table from a DataFrame, Table or RecordBatch."""
    import pyarrow as pa

    if isinstance(obj, pa.Table):
        return obj
    if isinstance(obj, pa.RecordBatch):
        return pa.Table.from_batches([obj])
    if "pandas" in sys.modules and type(obj).__module__.startswith("pandas"):
        import pandas as pd

        if isinstance(obj, pd.DataFrame):
            keep_index = not isinstance(obj.index, pd.RangeIndex) or obj.index.name is not None
            try:
                return pa.Table.from_pandas(obj, preserve_index=keep_index)
            except (pa.ArrowException, TypeError, ValueError) as exc:
                raise InvalidArgumentError(
                    f"This DataFrame cannot be stored as Parquet: {exc}", field="source"
                ) from None
    raise InvalidArgumentError(
        "Expected a pandas DataFrame, a pyarrow Table or RecordBatch, or a path. "
        f"Got {type(obj).__name__}.",
        field="source",
    )


def read_table_file(path: str) -> Any:
    """Read a Parquet or CSV/TSV file into a pyarrow Table, with a clear error if unreadable."""
    import pyarrow as pa
    import pyarrow.csv as csv
    import pyarrow.parquet as pq

    lower = path.lower()
    try:
        if lower.endswith(_PARQUET):
            return pq.read_table(path)
        delimiter = "\t" if lower.endswith((".tsv", ".tsv.gz")) else ","
        return csv.read_csv(path, parse_options=csv.ParseOptions(delimiter=delimiter))
    except (pa.ArrowException, OSError) as exc:
        raise InvalidArgumentError(
            f"Could not read {os.path.basename(path)!r} as a table: {exc}", field="path"
        ) from None


def write_parquet(table: Any, path: str) -> None:
    import pyarrow.parquet as pq

    pq.write_table(table, path, compression="zstd")


def require_pandas(purpose: str) -> Any:
    try:
        import pandas as pd
    except ImportError as exc:
        raise MissingDependencyError.for_extra("pandas", "pandas", purpose) from exc
    return pd
