"""Runs, params and tags in the SQL store."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, Row, bindparam, delete, select, update

from loopml.entities import LifecycleStage, Metric, Run, RunData, RunInfo, RunStatus, SourceInfo
from loopml.errors import (
    ExperimentNotFoundError,
    InvalidArgumentError,
    InvalidStateError,
    ParamConflictError,
    RunNotFoundError,
)
from loopml.storage.names import random_run_name
from loopml.storage.sql.base import SqlBase, now_ms
from loopml.storage.sql.experiments import parse_experiment_id
from loopml.storage.sql.schema import experiments, latest_metrics, run_tags, runs
from loopml.storage.sql.schema import params as params_table
from loopml.storage.validation import (
    validate_key,
    validate_run_id,
    validate_status,
    validate_string_map,
    validate_string_value,
    validate_timestamp,
)

__all__ = ["RunsMixin"]


def _to_info(row: Any) -> RunInfo:
    """A RunInfo from a fetched row (or anything with the same attributes)."""
    return RunInfo(
        run_id=row.run_id,
        experiment_id=str(row.experiment_id),
        run_name=row.run_name,
        status=RunStatus(row.status),
        start_time=row.start_time,
        end_time=row.end_time,
        parent_run_id=row.parent_run_id,
        source=SourceInfo(
            user=row.user_name,
            host=row.host,
            entry_point=row.entry_point,
            git_commit=row.git_commit,
            git_dirty=row.git_dirty,
            python_version=row.python_version,
            packages=json.loads(row.packages) if row.packages else {},
        ),
        error=row.error,
    )


class RunsMixin(SqlBase):
    def create_run(
        self,
        experiment_id: str,
        *,
        run_name: str | None = None,
        start_time: int | None = None,
        parent_run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        source: SourceInfo | None = None,
        heartbeat: bool = False,
    ) -> RunInfo:
        exp_key = parse_experiment_id(experiment_id)
        name = run_name if run_name is not None else random_run_name()
        name = validate_string_value("run", "run_name", name)
        start = now_ms() if start_time is None else validate_timestamp("start_time", start_time)
        parent = validate_run_id(parent_run_id) if parent_run_id is not None else None
        clean_tags = validate_string_map("tag", tags)
        src = source or SourceInfo()
        run_id = uuid.uuid4().hex
        row = {
            "run_id": run_id,
            "experiment_id": exp_key,
            "run_name": name,
            "status": RunStatus.RUNNING.value,
            "start_time": start,
            "parent_run_id": parent,
            "user_name": src.user,
            "host": src.host,
            "entry_point": src.entry_point,
            "git_commit": src.git_commit,
            "git_dirty": src.git_dirty,
            "python_version": src.python_version,
            "packages": json.dumps(src.packages, sort_keys=True) if src.packages else None,
            "heartbeat_time": now_ms() if heartbeat else None,
        }

        def write(conn: Connection) -> None:
            stage_query = self._statement(
                "experiment_stage",
                lambda: select(experiments.c.lifecycle_stage).where(
                    experiments.c.experiment_id == bindparam("b_id")
                ),
            )
            stage = conn.execute(stage_query, {"b_id": exp_key}).scalar()
            if stage is None:
                raise ExperimentNotFoundError(
                    f"No experiment with id {experiment_id!r}.", experiment_id=str(experiment_id)
                )
            if stage != LifecycleStage.ACTIVE.value:
                raise InvalidStateError(
                    f"Experiment {experiment_id!r} is archived; restore it before adding runs.",
                    experiment_id=str(experiment_id),
                )
            if parent is not None:
                self._require_run(conn, parent)
            conn.execute(self._statement("run_insert", runs.insert), row)
            if clean_tags:
                conn.execute(
                    self._statement("tags_insert", run_tags.insert),
                    [{"run_id": run_id, "key": k, "value": v} for k, v in clean_tags.items()],
                )
            self._event(conn, "run.created", "run", run_id, {"experiment_id": str(exp_key)})

        self._db.write(write)
        return _to_info(SimpleNamespace(end_time=None, error=None, **row))

    def _require_run(self, conn: Connection, run_id: str) -> Row:
        query = self._statement(
            "run_by_id", lambda: select(runs).where(runs.c.run_id == bindparam("b_run_id"))
        )
        row = conn.execute(query, {"b_run_id": run_id}).first()
        if row is None:
            raise RunNotFoundError(f"No run with id {run_id!r}.", run_id=run_id)
        return row

    def _load_data(self, conn: Connection, run_ids: list[str]) -> dict[str, RunData]:
        """The params, tags and latest metrics of these runs. A page of 100 wide runs is
        25,000 rows, so the rows are fetched at once and unpacked, not read as attributes."""
        data = {rid: RunData() for rid in run_ids}
        if not run_ids:
            return data
        for table, into in ((params_table, "params"), (run_tags, "tags")):
            found = {rid: getattr(entry, into) for rid, entry in data.items()}
            query = select(table.c.run_id, table.c.key, table.c.value)
            for run_id, key, text in conn.execute(query.where(table.c.run_id.in_(run_ids))).all():
                found[run_id][key] = text
        values = {rid: entry.metrics for rid, entry in data.items()}
        points = {rid: entry.latest_metrics for rid, entry in data.items()}
        c = latest_metrics.c
        points_query = select(c.run_id, c.key, c.value, c.is_nan, c.timestamp, c.step)
        points_query = points_query.where(c.run_id.in_(run_ids))
        for run_id, key, value, is_nan, timestamp, step in conn.execute(points_query).all():
            if is_nan:
                value = math.nan
            values[run_id][key] = value
            points[run_id][key] = Metric(key, value, timestamp, step)
        return data

    def _load_runs(self, conn: Connection, rows: Sequence[Row]) -> list[Run]:
        data = self._load_data(conn, [row.run_id for row in rows])
        return [Run(info=_to_info(row), data=data[row.run_id]) for row in rows]

    def get_run(self, run_id: str) -> Run:
        run_id = validate_run_id(run_id)
        with self._db.read() as conn:
            return self._load_runs(conn, [self._require_run(conn, run_id)])[0]

    def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus | str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
        error: str | None = None,
        heartbeat: bool = False,
    ) -> RunInfo:
        """Change a run's status, end time, name or error. A terminal status stops its
        heartbeats; ``heartbeat=True`` (with RUNNING, to resume a run) starts them again."""
        run_id = validate_run_id(run_id)
        values: dict[str, object] = {}
        if status is not None:
            values["status"] = validate_status(status).value
            if values["status"] != RunStatus.RUNNING.value:
                values["end_time"] = now_ms() if end_time is None else end_time
                values["heartbeat_time"] = None
            else:  # resumed: it has not ended (any more), and no error stands
                values["end_time"] = None
                values["error"] = None
                if heartbeat:
                    values["heartbeat_time"] = now_ms()
        if end_time is not None:
            values["end_time"] = validate_timestamp("end_time", end_time)
        if run_name is not None:
            values["run_name"] = validate_string_value("run", "run_name", run_name)
        if error is not None:
            values["error"] = str(error)[:8000]

        def write(conn: Connection) -> Row:
            if not values:
                return self._require_run(conn, run_id)
            stmt = self._statement(
                "run_update",
                lambda: (
                    update(runs).where(runs.c.run_id == bindparam("b_run_id")).returning(*runs.c)
                ),
            )
            row = conn.execute(stmt, {"b_run_id": run_id, **values}).first()
            if row is None:
                raise RunNotFoundError(f"No run with id {run_id!r}.", run_id=run_id)
            if "status" in values:
                self._event(conn, "run.status", "run", run_id, {"status": values["status"]})
            return row

        return _to_info(self._db.write(write))

    def _write_params(self, conn: Connection, run_id: str, clean: dict[str, str]) -> None:
        if not clean:
            return
        query = self._statement(
            "params_existing",
            lambda: select(params_table.c.key, params_table.c.value).where(
                params_table.c.run_id == bindparam("b_run_id"),
                params_table.c.key.in_(bindparam("b_keys", expanding=True)),
            ),
        )
        found = conn.execute(query, {"b_run_id": run_id, "b_keys": list(clean)})
        existing = {key: value for key, value in found}
        for key, old in existing.items():
            if old != clean[key]:
                raise ParamConflictError(
                    f"Param {key!r} of run {run_id} was already logged with value {old!r}; "
                    f"params are immutable, so it cannot become {clean[key]!r}. "
                    "Log it under another key or start a new run.",
                    run_id=run_id,
                    key=key,
                )
        new = [
            {"run_id": run_id, "key": k, "value": v} for k, v in clean.items() if k not in existing
        ]
        if new:
            conn.execute(self._statement("params_insert", params_table.insert), new)

    def _write_tags(self, conn: Connection, run_id: str, clean: dict[str, str]) -> None:
        if clean:
            rows = [{"run_id": run_id, "key": k, "value": v} for k, v in clean.items()]
            self._upsert(conn, run_tags, rows, ["run_id", "key"], ["value"])

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        run_id = validate_run_id(run_id)
        clean = validate_string_map("param", params)

        def write(conn: Connection) -> None:
            self._require_run(conn, run_id)
            self._write_params(conn, run_id, clean)

        self._db.write(write)

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        run_id = validate_run_id(run_id)
        clean = validate_string_map("tag", tags)

        def write(conn: Connection) -> None:
            self._require_run(conn, run_id)
            self._write_tags(conn, run_id, clean)

        self._db.write(write)

    def delete_tag(self, run_id: str, key: str) -> None:
        run_id = validate_run_id(run_id)
        key = validate_key("tag", key)

        def write(conn: Connection) -> None:
            self._require_run(conn, run_id)
            conn.execute(delete(run_tags).where(run_tags.c.run_id == run_id, run_tags.c.key == key))

        self._db.write(write)

    def heartbeat(self, run_ids: Sequence[str]) -> None:
        ids = [validate_run_id(r) for r in run_ids]
        if not ids:
            return
        query = (
            update(runs)
            .where(runs.c.run_id.in_(ids), runs.c.status == RunStatus.RUNNING.value)
            .values(heartbeat_time=now_ms())
        )
        self._db.write(lambda conn: conn.execute(query))

    def mark_stale_runs_killed(self, timeout_seconds: float) -> list[str]:
        """Mark RUNNING runs whose heartbeat stopped more than ``timeout_seconds`` ago KILLED."""
        if not timeout_seconds > 0:
            raise InvalidArgumentError("timeout_seconds must be > 0.", field="timeout_seconds")
        # past ~31,700 years nothing can be stale; capping keeps the cutoff an int64 (and
        # an infinite timeout an error-free no-op)
        cutoff = now_ms() - int(min(timeout_seconds, 1e12) * 1000)
        stale = (
            (runs.c.status == RunStatus.RUNNING.value)
            & runs.c.heartbeat_time.is_not(None)
            & (runs.c.heartbeat_time < cutoff)
        )
        with self._db.read() as conn:
            if conn.execute(select(runs.c.run_id).where(stale).limit(1)).first() is None:
                return []

        kill = (
            update(runs)
            .where(stale)
            .values(
                status=RunStatus.KILLED.value,
                end_time=runs.c.heartbeat_time,  # the last moment it was known alive
                heartbeat_time=None,
                error=f"The run's process stopped sending heartbeats "
                f"(none for over {timeout_seconds:g} s); marked KILLED.",
            )
            .returning(runs.c.run_id)
        )

        def write(conn: Connection) -> list[str]:
            killed = sorted(row.run_id for row in conn.execute(kill))
            for run_id in killed:
                self._event(conn, "run.status", "run", run_id, {"status": "KILLED"})
            return killed

        return self._db.write(write)
