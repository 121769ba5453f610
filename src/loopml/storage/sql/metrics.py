"""Metric history and the atomic batch write in the SQL store."""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, select

from loopml.entities import Metric, MetricRow
from loopml.errors import InvalidArgumentError, RunNotFoundError
from loopml.storage.sql.runs import RunsMixin
from loopml.storage.sql.schema import runs
from loopml.storage.validation import metric_row, validate_key, validate_run_id, validate_string_map

__all__ = ["MetricsMixin"]

_Row = MetricRow

#: the hottest write: plain SQL on the driver's cursor, skipping SQLAlchemy's per-row work
_INSERT_SQL = (
    "INSERT INTO metrics (run_id, key, step, timestamp, value, is_nan) "
    "VALUES {values} ON CONFLICT DO NOTHING"
)
#: rows per INSERT statement: one statement of many rows costs SQLite ~30% less than as many
#: one-row statements (measured: 10,000 rows in 12.7 ms instead of 18.3 ms)
_ROWS_PER_STATEMENT = 100


@functools.cache
def _insert_sql(mark: str, rows: int) -> str:
    one = "(" + ", ".join([mark] * 6) + ")"
    return _INSERT_SQL.format(values=", ".join([one] * rows))


def _as_metric(point: Any) -> Metric:
    if isinstance(point, tuple) and len(point) == 4:
        return Metric(*point)
    raise InvalidArgumentError(
        "Each metric must be a loopml.Metric(key, value, timestamp, step). "
        f"Got {type(point).__name__} instead.",
        field="metrics",
    )


def _metric_rows(run_id: str, points: Sequence[Metric] | None) -> list[_Row]:
    """Validate every point (see :func:`metric_row`) and turn it into a row."""
    if points is None:
        return []
    if isinstance(points, str | bytes) or not isinstance(points, Iterable):
        raise InvalidArgumentError(
            "The metrics must be a sequence of loopml.Metric(key, value, timestamp, step). "
            f"Got {type(points).__name__} instead.",
            field="metrics",
        )
    valid_keys: set[str] = set()
    rows: list[_Row] = []
    append = rows.append
    for point in points:
        if type(point) is not Metric:
            point = _as_metric(point)
        key, value, timestamp, step = point
        append(metric_row(run_id, key, value, step, timestamp, valid_keys))
    return rows


def _refresh_latest(conn: Connection, pairs: set[tuple[str, str]]) -> None:
    """Recompute the latest point of each (run, key) from the history: one index probe each.

    The latest point is the one with the largest step, then the latest timestamp (then the
    largest value, so that the choice is deterministic)."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(_LATEST_SQL.format(m=mark), sorted(pairs))
    finally:
        cursor.close()


_LATEST_SQL = (
    "INSERT INTO latest_metrics (run_id, key, step, timestamp, value, is_nan) "
    "SELECT run_id, key, step, timestamp, value, is_nan FROM metrics "
    "WHERE run_id = {m} AND key = {m} "
    "ORDER BY step DESC, timestamp DESC, is_nan ASC, value DESC LIMIT 1 "
    "ON CONFLICT (run_id, key) DO UPDATE SET step = excluded.step, "
    "timestamp = excluded.timestamp, value = excluded.value, is_nan = excluded.is_nan"
)


def _insert_points(conn: Connection, rows: list[_Row]) -> None:
    """Insert the rows, skipping any already stored (a retried batch adds nothing)."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    size = _ROWS_PER_STATEMENT
    whole = len(rows) - len(rows) % size
    flat = itertools.chain.from_iterable
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        if whole:
            chunks = [tuple(flat(rows[i : i + size])) for i in range(0, whole, size)]
            cursor.executemany(_insert_sql(mark, size), chunks)
        if whole < len(rows):
            cursor.executemany(_insert_sql(mark, 1), rows[whole:])
    finally:
        cursor.close()


class MetricsMixin(RunsMixin):
    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Write metrics, params and tags of one run in one transaction: all or nothing.

        A point identical to one already stored (same key, step, timestamp and value) is
        skipped, so a retried batch never duplicates points.
        """
        run_id = validate_run_id(run_id)
        rows = _metric_rows(run_id, metrics)
        clean_params = validate_string_map("param", params)
        clean_tags = validate_string_map("tag", tags)

        def write(conn: Connection) -> None:
            self._require_run(conn, run_id)
            self._write_params(conn, run_id, clean_params)
            self._write_tags(conn, run_id, clean_tags)
            if rows:
                _insert_points(conn, rows)
                _refresh_latest(conn, {(run_id, row[1]) for row in rows})

        self._db.write(write)

    def append_metric_rows(self, rows: Sequence[MetricRow]) -> None:
        """Write pre-validated points of any runs at once (the tracking client's buffer)."""
        rows = list(rows)
        if not rows:
            return
        pairs = {(row[0], row[1]) for row in rows}
        run_ids = sorted({run_id for run_id, _ in pairs})

        def write(conn: Connection) -> None:
            self._require_runs(conn, run_ids)
            _insert_points(conn, rows)
            _refresh_latest(conn, pairs)

        self._db.write(write)

    def _require_runs(self, conn: Connection, run_ids: list[str]) -> None:
        query = self._statement(
            "runs_exist",
            lambda: select(runs.c.run_id).where(
                runs.c.run_id.in_(bindparam("b_ids", expanding=True))
            ),
        )
        found = {row[0] for row in conn.execute(query, {"b_ids": run_ids})}
        missing = [run_id for run_id in run_ids if run_id not in found]
        if missing:
            raise RunNotFoundError(
                f"No run with id {missing[0]!r}"
                + (f" (and {len(missing) - 1} more)." if len(missing) > 1 else "."),
                run_ids=missing,
            )

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of one metric of one run, by step then timestamp.

        This is the store's hottest read (a long history has 100,000s of points), so it runs
        one plain SQL statement on the driver's cursor and builds the tuples directly.
        """
        run_id = validate_run_id(run_id)
        key = validate_key("metric", key)
        with self._db.read() as conn:
            self._require_run(conn, run_id)
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
                cursor.execute(_HISTORY_SQL.format(mark=mark), (key, run_id, key))
                points = list(map(_make_metric, cursor))
            finally:
                cursor.close()
        nan = math.nan
        return [p if p[1] is not None else Metric(key, nan, p[2], p[3]) for p in points]


#: NaN is stored as is_nan; it comes back as NULL and becomes float("nan") above
_HISTORY_SQL = (
    "SELECT {mark}, CASE WHEN is_nan THEN NULL ELSE value END, timestamp, step "
    "FROM metrics WHERE run_id = {mark} AND key = {mark} ORDER BY step, timestamp"
)
_make_metric = functools.partial(tuple.__new__, Metric)
