"""The remote store: experiments, runs, params, tags, metrics, search and heartbeats.

Each method is one request to the server's tracking routes (:mod:`loopml.server.routes.tracking`)
and returns what the SQL store returns there, rebuilt with
:func:`~loopml.storage.rest.wire.from_wire`.

Arguments are checked here with the validators the store itself applies
(:mod:`loopml.storage.validation`), in the store's order: a bad argument fails before any
request, with the very error the store raises, and only checked values reach a URL path or
the JSON body (params and tags as the store normalises them, timestamps as integers). The
server's store checks everything again; what depends on stored state (not found, conflicts,
archived experiments, filter syntax) comes back from the server as the same error class.

Metric points travel as columns, one series per run and key (see the routes' module). Metric
batches are idempotent on the server, so :meth:`log_batch` and :meth:`append_metric_rows` are
retried after connection errors and 502/503/504, as are reads and the other writes that give
the same result when repeated; creating an experiment or a run is sent once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from itertools import repeat
from typing import Any

from loopml.entities import (
    Experiment,
    LifecycleStage,
    Metric,
    MetricRow,
    PagedList,
    Run,
    RunInfo,
    RunStatus,
    SourceInfo,
)
from loopml.errors import InvalidArgumentError
from loopml.storage.rest.base import RestBase
from loopml.storage.rest.wire import from_wire, to_wire
from loopml.storage.validation import (
    metric_row,
    validate_experiment_id,
    validate_experiment_name,
    validate_key,
    validate_run_id,
    validate_status,
    validate_string_map,
    validate_string_value,
    validate_timestamp,
)

__all__ = ["RestTrackingMixin"]

_make_metric = partial(tuple.__new__, Metric)
#: the columns of one series: steps, timestamps, values
#: the most points sent in one request (the server takes 100,000): a buffer that filled up
#: while the server was down goes out in parts, each retried on its own
_ROWS_PER_REQUEST = 50_000
_Columns = tuple[list[int], list[int], list[float | str]]


def _wire_value(value: float, is_nan: bool) -> float | str:
    """A metric value on the wire: the number, or "NaN", "Infinity", "-Infinity"."""
    if is_nan or value != value:
        return "NaN"
    if value - value == 0.0:
        return value
    return "Infinity" if value > 0 else "-Infinity"


def _group(rows: Iterable[MetricRow]) -> dict[tuple[str, str], _Columns]:
    """Rows as columns, one series per (run, key), in the order they first appear."""
    groups: dict[tuple[str, str], _Columns] = {}
    for run_id, key, step, timestamp, value, is_nan in rows:
        columns = groups.get((run_id, key))
        if columns is None:
            columns = groups[(run_id, key)] = ([], [], [])
        columns[0].append(step)
        columns[1].append(timestamp)
        columns[2].append(
            value if not is_nan and value - value == 0.0 else _wire_value(value, is_nan)
        )
    return groups


def _metric_rows(run_id: str, metrics: Sequence[Metric] | None) -> list[MetricRow]:
    """The points of a batch checked as the store checks them, as rows."""
    if metrics is None:
        return []
    if isinstance(metrics, str | bytes) or not isinstance(metrics, Iterable):
        raise InvalidArgumentError(
            "The metrics must be a sequence of loopml.Metric(key, value, timestamp, step). "
            f"Got {type(metrics).__name__} instead.",
            field="metrics",
        )
    valid_keys: set[str] = set()
    rows: list[MetricRow] = []
    for point in metrics:
        if type(point) is not Metric:
            if not (isinstance(point, tuple) and len(point) == 4):
                raise InvalidArgumentError(
                    "Each metric must be a loopml.Metric(key, value, timestamp, step). "
                    f"Got {type(point).__name__} instead.",
                    field="metrics",
                )
            point = Metric(*point)
        key, value, timestamp, step = point
        rows.append(metric_row(run_id, key, value, step, timestamp, valid_keys))
    return rows


def _enum_value(value: Any) -> Any:
    return value.value if isinstance(value, LifecycleStage | RunStatus) else value


class RestTrackingMixin(RestBase):
    # -- experiments -------------------------------------------------------------------------

    def create_experiment(
        self, name: str, description: str = "", tags: Mapping[str, Any] | None = None
    ) -> Experiment:
        body = {
            "name": validate_experiment_name(name),
            "description": validate_string_value("experiment", "description", description or ""),
            "tags": validate_string_map("tag", tags),
        }
        data = self._call("POST", "/experiments", json=body, idempotent=False)
        return from_wire(Experiment, data)

    def get_experiment(self, experiment_id: str) -> Experiment:
        data = self._call("GET", f"/experiments/{validate_experiment_id(experiment_id)}")
        return from_wire(Experiment, data)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        if not isinstance(name, str):
            raise InvalidArgumentError("The experiment name must be a string.", field="name")
        data = self._call("GET", "/experiments/by-name", params={"name": name})
        return None if data is None else from_wire(Experiment, data)

    def list_experiments(self, *, include_archived: bool = False) -> list[Experiment]:
        params = {"include_archived": "true"} if include_archived else None
        data = self._call("GET", "/experiments", params=params)
        return from_wire(list[Experiment], data["experiments"], where="experiments")

    def update_experiment(
        self,
        experiment_id: str,
        *,
        description: str | None = None,
        lifecycle_stage: LifecycleStage | None = None,
    ) -> Experiment:
        path = f"/experiments/{validate_experiment_id(experiment_id)}"
        body: dict[str, Any] = {}
        if description is not None:
            body["description"] = validate_string_value("experiment", "description", description)
        if lifecycle_stage is not None:
            body["lifecycle_stage"] = _enum_value(lifecycle_stage)  # the server's store checks it
        data = self._call("PATCH", path, json=body, idempotent=True)
        return from_wire(Experiment, data)

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        path = f"/experiments/{validate_experiment_id(experiment_id)}/tags"
        key = validate_key("tag", key)
        body = {"key": key, "value": validate_string_value("tag", key, value)}
        self._call("PUT", path, json=body, idempotent=True)

    # -- runs --------------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str,
        *,
        run_name: str | None = None,
        start_time: int | None = None,
        parent_run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        source: SourceInfo | None = None,
        heartbeat: bool = False,
    ) -> RunInfo:
        body: dict[str, Any] = {"experiment_id": validate_experiment_id(experiment_id)}
        if run_name is not None:
            body["run_name"] = validate_string_value("run", "run_name", run_name)
        if start_time is not None:
            body["start_time"] = validate_timestamp("start_time", start_time)
        if parent_run_id is not None:
            body["parent_run_id"] = validate_run_id(parent_run_id)
        if tags is not None:
            body["tags"] = validate_string_map("tag", tags)
        if source is not None:
            body["source"] = to_wire(source)
        if heartbeat:
            body["heartbeat"] = True
        data = self._call("POST", "/runs", json=body, idempotent=False)
        return from_wire(RunInfo, data)

    def get_run(self, run_id: str) -> Run:
        return from_wire(Run, self._call("GET", f"/runs/{validate_run_id(run_id)}"))

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
        path = f"/runs/{validate_run_id(run_id)}"
        body: dict[str, Any] = {}
        if status is not None:
            body["status"] = validate_status(status).value
        if end_time is not None:
            body["end_time"] = validate_timestamp("end_time", end_time)
        if run_name is not None:
            body["run_name"] = validate_string_value("run", "run_name", run_name)
        if error is not None:
            body["error"] = str(error)
        if heartbeat:
            body["heartbeat"] = True
        # repeating it gives the same run (at most a later end_time): retried, so that a run
        # ended while the server restarts is not left RUNNING
        data = self._call("PATCH", path, json=body, idempotent=True)
        return from_wire(RunInfo, data)

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        path = f"/runs/{validate_run_id(run_id)}/params"
        body = {"params": validate_string_map("param", params)}
        self._call("POST", path, json=body, idempotent=True)  # the same values again are fine

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        path = f"/runs/{validate_run_id(run_id)}/tags"
        self._call("POST", path, json={"tags": validate_string_map("tag", tags)}, idempotent=True)

    def delete_tag(self, run_id: str, key: str) -> None:
        path = f"/runs/{validate_run_id(run_id)}/tags"
        self._call("DELETE", path, params={"key": validate_key("tag", key)})

    def heartbeat(self, run_ids: Sequence[str]) -> None:
        ids = [validate_run_id(r) for r in run_ids]
        if ids:  # not retried: the next beat replaces a lost one
            self._call("POST", "/runs/heartbeat", json={"run_ids": ids}, idempotent=False)

    def mark_stale_runs_killed(self, timeout_seconds: float) -> list[str]:
        body = {"timeout_seconds": timeout_seconds}
        data = self._call("POST", "/runs/reap", json=body, idempotent=False)
        return from_wire(list[str], data["run_ids"], where="run_ids")

    def search_runs(
        self,
        experiment_ids: Sequence[str] | str,
        filter_string: str | None = None,
        order_by: Sequence[str] | str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        if isinstance(experiment_ids, str | int):
            experiment_ids = [str(experiment_ids)]
        if not isinstance(experiment_ids, Iterable):
            raise InvalidArgumentError(
                "experiment_ids must be an experiment id or a list of them. "
                f"Got {type(experiment_ids).__name__} instead.",
                field="experiment_ids",
            )
        body = {
            "experiment_ids": [validate_experiment_id(e) for e in experiment_ids],
            "filter_string": filter_string,
            "order_by": order_by
            if order_by is None or isinstance(order_by, str)
            else list(order_by),
            "max_results": max_results,
            "page_token": page_token,
        }
        data = self._call("POST", "/runs/search", json=body, idempotent=True)  # a read
        runs = from_wire(list[Run], data["runs"], where="runs")
        return PagedList(runs, data.get("next_page_token"))

    # -- metrics -----------------------------------------------------------------------------

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        path = f"/runs/{validate_run_id(run_id)}/batch"
        rows = _metric_rows(run_id, metrics)
        clean_params = validate_string_map("param", params)
        clean_tags = validate_string_map("tag", tags)
        body: dict[str, Any] = {
            "metrics": [
                {"key": key, "steps": steps, "timestamps": stamps, "values": values}
                for (_, key), (steps, stamps, values) in _group(rows).items()
            ]
        }
        if clean_params:
            body["params"] = clean_params
        if clean_tags:
            body["tags"] = clean_tags
        self._call("POST", path, json=body, idempotent=True)

    def append_metric_rows(self, rows: Sequence[MetricRow]) -> None:
        """Over ``_ROWS_PER_REQUEST`` rows go in several requests, each one atomic and
        idempotent (so a failure part-way is fixed by sending all the rows again)."""
        for start in range(0, len(rows), _ROWS_PER_REQUEST):
            part = rows[start : start + _ROWS_PER_REQUEST]
            series = [
                {"run_id": run, "key": key, "steps": steps, "timestamps": stamps, "values": values}
                for (run, key), (steps, stamps, values) in _group(part).items()
            ]
            self._call("POST", "/metrics/rows", json={"series": series}, idempotent=True)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        path = f"/runs/{validate_run_id(run_id)}/metrics/history"
        key = validate_key("metric", key)
        data = self._call("GET", path, params={"key": key})
        values = map(float, data["values"])  # float() also reads "NaN", "Infinity", "-Infinity"
        return list(map(_make_metric, zip(repeat(key), values, data["timestamps"], data["steps"])))
