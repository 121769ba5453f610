"""Metric history and the atomic batch write in the SQL store."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection

from loopml.entities import Metric
from loopml.errors import InvalidArgumentError
from loopml.storage.sql.runs import RunsMixin
from loopml.storage.sql.schema import latest_metrics
from loopml.storage.sql.schema import metrics as metrics_table
from loopml.storage.validation import (
    validate_key,
    validate_metric_value,
    validate_run_id,
    validate_step,
    validate_string_map,
    validate_timestamp,
)

__all__ = ["MetricsMixin"]

_METRIC_KEYS = ["run_id", "key", "step", "timestamp", "value", "is_nan"]
_CHUNK = 5000


def _metric_rows(run_id: str, points: Sequence[Metric]) -> list[dict[str, Any]]:
    rows = []
    seen_keys: set[str] = set()
    for point in points:
        if not isinstance(point, Metric):
            if isinstance(point, tuple) and len(point) == 4:
                point = Metric(*point)
            else:
                raise InvalidArgumentError(
                    "Each metric must be a loopml.Metric(key, value, timestamp, step). "
                    f"Got {type(point).__name__} instead.",
                    field="metrics",
                )
        key = point.key
        if key not in seen_keys:
            validate_key("metric", key)
            seen_keys.add(key)
        value = validate_metric_value(key, point.value)
        nan = math.isnan(value)
        rows.append(
            {
                "run_id": run_id,
                "key": key,
                "step": validate_step(key, point.step),
                "timestamp": validate_timestamp(f"timestamp of metric {key!r}", point.timestamp),
                "value": 0.0 if nan else value,
                "is_nan": nan,
            }
        )
    return rows


def _latest_per_key(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    best: dict[str, dict[str, Any]] = {}
    for row in rows:
        current = best.get(row["key"])
        if current is None or (row["step"], row["timestamp"]) >= (
            current["step"],
            current["timestamp"],
        ):
            best[row["key"]] = row
    return list(best.values())


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
            for start in range(0, len(rows), _CHUNK):
                self._insert_ignore(conn, metrics_table, rows[start : start + _CHUNK], _METRIC_KEYS)
            if rows:
                self._update_latest(conn, _latest_per_key(rows))

        self._db.write(write)

    def _update_latest(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        def build() -> Any:
            stmt = self._insert(latest_metrics)
            newer = (stmt.excluded.step > latest_metrics.c.step) | (
                (stmt.excluded.step == latest_metrics.c.step)
                & (stmt.excluded.timestamp >= latest_metrics.c.timestamp)
            )
            columns = ("step", "timestamp", "value", "is_nan")
            return stmt.on_conflict_do_update(
                index_elements=["run_id", "key"],
                set_={c: stmt.excluded[c] for c in columns},
                where=newer,
            )

        conn.execute(self._statement("latest_upsert", build), rows)

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
