"""Routes: experiments, runs, params, tags, metrics, search and heartbeats.

Every route is one call into the :class:`~loopml.storage.protocols.ExperimentStore`,
:class:`~loopml.storage.protocols.RunStore` or :class:`~loopml.storage.protocols.MetricStore`
of the server; the store validates every value and raises the same errors as locally.

Access: reading needs ``READER``; everything that writes (reaping stale runs included) needs
``WRITER``. A token limited to some experiments (RELIABILITY S5) may only use those: the routes
with an experiment or run id in their path are checked by :mod:`loopml.server.auth`; the others
check what their body or query names (the experiment created or looked up by name, the
experiment and parent run of a new run, the experiments searched, the runs of a heartbeat or
of metric rows) before touching the store, and listing experiments leaves the others out.
Reaping stale runs acts on every experiment, so such a token is refused it (403); a token
without an experiment scope reaps as before.

Bodies: the request models are strict about JSON types (a number where a string belongs is a
400 naming the field) and say nothing about values, which only the store checks. Entities go
out as :func:`~loopml.storage.rest.wire.to_wire` makes them, and a run's ``source`` comes in
through :func:`~loopml.storage.rest.wire.from_wire`. Metric points are the bulk of the
traffic, so they travel as columns, one series per run and key: ``steps``, ``timestamps`` and
``values`` lists of equal length, a value being a JSON number or one of the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"`` (as everywhere on the wire).

Paths: only run ids (32 hexadecimal characters) and experiment ids (digits) are path segments.
Names and keys are free text (they may hold ``/``, ``?`` or ``%``), so they travel in the body
or the query (``?name=``, ``?key=``), never in the path.

Idempotence: a metric batch (``POST /runs/{run_id}/batch``, ``POST /metrics/rows``) sent twice
stores each point once, so clients retry them safely after a lost response.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from operator import itemgetter
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, WithJsonSchema

from loopml.entities import Experiment, Metric, MetricRow, Run, RunInfo, SourceInfo
from loopml.errors import InvalidArgumentError
from loopml.server.auth import require_every_experiment, require_scope, scopes_of
from loopml.server.deps import Role, allow, store_of
from loopml.storage.rest.wire import from_wire, to_wire
from loopml.storage.validation import validate_key, validate_run_id

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["tracking"])

_READ = [allow(Role.READER)]
_WRITE = [allow(Role.WRITER)]
_INT64 = 2**63 - 1
#: the most metric points one request may carry, and the most params or tags (RELIABILITY V2):
#: a batch is one transaction, so this bounds how long one holds the database. Over the limit
#: is a 400 naming it, and nothing is written. The remote store sends larger batches in parts.
MAX_POINTS_PER_REQUEST = 100_000
MAX_ENTRIES_PER_REQUEST = 1_000
_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_VALUE, _TIMESTAMP, _STEP = itemgetter(1), itemgetter(2), itemgetter(3)  # of a Metric


# ---------------------------------------------------------------------------- bodies


class _Body(BaseModel):
    """JSON types exactly (no ``"5"`` for 5, no ``1`` for true); unknown fields ignored."""

    model_config = ConfigDict(strict=True)


Tags = Annotated[dict[str, str], Field(max_length=MAX_ENTRIES_PER_REQUEST)]
Step = Annotated[int, Field(ge=-_INT64, le=_INT64)]
Timestamp = Annotated[int, Field(ge=0, le=_INT64, description="Milliseconds since the epoch.")]
WireFloat = float | Literal["NaN", "Infinity", "-Infinity"]
_SOURCE_SCHEMA = {
    "anyOf": [TypeAdapter(SourceInfo).json_schema(), {"type": "null"}],
    "description": "Where the run's code came from (user, host, git commit, packages...).",
}


class CreateExperimentRequest(_Body):
    name: str
    description: str = ""
    tags: Tags | None = None


class UpdateExperimentRequest(_Body):
    description: str | None = None
    lifecycle_stage: str | None = Field(
        None, description="'archived' archives the experiment, 'active' restores it."
    )


class SetExperimentTagRequest(_Body):
    key: str
    value: str


class CreateRunRequest(_Body):
    experiment_id: str
    run_name: str | None = Field(None, description="A generated name when omitted.")
    start_time: int | None = Field(
        None, description="Milliseconds since the epoch; now if omitted."
    )
    parent_run_id: str | None = None
    tags: Tags | None = None
    source: Annotated[dict[str, Any] | None, WithJsonSchema(_SOURCE_SCHEMA)] = None
    heartbeat: bool = Field(False, description="Watch the run: without beats it becomes KILLED.")


class UpdateRunRequest(_Body):
    status: str | None = Field(
        None,
        description="RUNNING, FINISHED, FAILED or KILLED. A final status sets end_time (now "
        "unless given) and stops the heartbeat watch; RUNNING resumes the run.",
    )
    end_time: int | None = None
    run_name: str | None = None
    error: str | None = None
    heartbeat: bool = Field(False, description="With status RUNNING: watch the run again.")


class LogParamsRequest(_Body):
    params: Tags


class SetTagsRequest(_Body):
    tags: Tags


class HeartbeatRequest(_Body):
    run_ids: list[str]


class MarkStaleRunsKilledRequest(_Body):
    timeout_seconds: float = Field(
        description="Kill RUNNING runs whose last heartbeat is older than this."
    )


class SearchRunsRequest(_Body):
    experiment_ids: list[str]
    filter_string: str | None = Field(None, examples=["metrics.loss < 0.3 and params.model = 'rf'"])
    order_by: str | list[str] | None = Field(None, examples=[["metrics.loss ASC", "run_name"]])
    max_results: int = 100
    page_token: str | None = Field(None, description="next_page_token of the previous page.")


class MetricSeries(_Body):
    """Points of one metric as columns: the i-th point is (steps[i], timestamps[i], values[i])."""

    key: str
    steps: list[Step]
    timestamps: list[Timestamp]
    values: list[WireFloat]


class RunMetricSeries(MetricSeries):
    run_id: str


class LogBatchRequest(_Body):
    metrics: list[MetricSeries] = []
    params: Tags | None = None
    tags: Tags | None = None


class AppendMetricRowsRequest(_Body):
    series: list[RunMetricSeries]


# ---------------------------------------------------------------------------- responses
# Routes build their JSON themselves (to_wire, then one json.dumps); the models below only
# document it. Metric values in them are numbers or "NaN", "Infinity" and "-Infinity".


class ExperimentList(BaseModel):
    experiments: list[Experiment]


class RunsPage(BaseModel):
    runs: list[Run]
    next_page_token: str | None = Field(description="Fetches the next page; null on the last.")


class MetricHistory(BaseModel):
    """Every point of one metric, by step then timestamp, as columns."""

    key: str
    steps: list[int]
    timestamps: list[int]
    values: list[WireFloat]


class KilledRuns(BaseModel):
    run_ids: list[str]


# ---------------------------------------------------------------------------- helpers


def _json(content: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(content, status_code=status_code)


def _done() -> Response:
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _float(value: float | str) -> float:
    """A wire value as a float (the request model admits only numbers and the 3 names)."""
    return _SPECIAL[value] if isinstance(value, str) else value


def _columns(series: MetricSeries, where: str) -> zip[tuple[int, int, Any]]:
    steps, timestamps, values = series.steps, series.timestamps, series.values
    if not len(steps) == len(timestamps) == len(values):
        raise InvalidArgumentError(
            f"{where}: steps, timestamps and values must have the same length. Got "
            f"{len(steps)}, {len(timestamps)} and {len(values)}.",
            field=where,
        )
    return zip(steps, timestamps, values, strict=True)


def _check_size(series: Sequence[MetricSeries], where: str) -> None:
    total = sum(len(one.steps) for one in series)
    if total > MAX_POINTS_PER_REQUEST:
        raise InvalidArgumentError(
            f"{where}: a request may carry at most {MAX_POINTS_PER_REQUEST:,} metric points; "
            f"this one has {total:,}. Nothing was written: send them in several requests.",
            field=where,
            limit=MAX_POINTS_PER_REQUEST,
        )


def _metrics(series: Sequence[MetricSeries]) -> list[Metric]:
    """The points of a log_batch body (the store validates them, keys included)."""
    _check_size(series, "metrics")
    points: list[Metric] = []
    for i, one in enumerate(series):
        key = one.key
        points += [Metric(key, _float(v), t, s) for s, t, v in _columns(one, f"metrics.{i}")]
    return points


def _rows(series: Sequence[RunMetricSeries]) -> list[MetricRow]:
    """The rows of an append body. The store takes rows as validated, so the run id and key
    are checked here (steps and timestamps by the request model)."""
    _check_size(series, "series")
    rows: list[MetricRow] = []
    for i, one in enumerate(series):
        columns = _columns(one, f"series.{i}")
        run_id, key = validate_run_id(one.run_id), validate_key("metric", one.key)
        for step, timestamp, value in columns:
            number = _float(value)
            if number != number:
                rows.append((run_id, key, step, timestamp, 0.0, True))
            else:
                rows.append((run_id, key, step, timestamp, number, False))
    return rows


def _wire_values(values: Sequence[float]) -> Sequence[float | str]:
    if all(map(math.isfinite, values)):
        return values
    return [v if math.isfinite(v) else to_wire(v) for v in values]


# ---------------------------------------------------------------------------- experiments


@router.post(
    "/experiments",
    dependencies=_WRITE,
    status_code=status.HTTP_201_CREATED,
    response_model=Experiment,
)
def create_experiment(body: CreateExperimentRequest, request: Request) -> Response:
    """Create an experiment (names are unique, archived experiments included: 409)."""
    require_scope(request, experiment_name=body.name)
    experiment = store_of(request).create_experiment(body.name, body.description, body.tags)
    return _json(to_wire(experiment), status.HTTP_201_CREATED)


@router.get("/experiments", dependencies=_READ, response_model=ExperimentList)
def list_experiments(request: Request, include_archived: bool = False) -> Response:
    """Every experiment, by id; archived ones only with ``include_archived=true``. A token
    limited to some experiments sees only those."""
    found = store_of(request).list_experiments(include_archived=include_archived)
    scopes = scopes_of(request)
    if scopes is not None and scopes.experiments:
        found = [experiment for experiment in found if experiment.name in scopes.experiments]
    return _json({"experiments": to_wire(found)})


@router.get("/experiments/by-name", dependencies=_READ, response_model=Experiment | None)
def get_experiment_by_name(request: Request, name: Annotated[str, Query()]) -> Response:
    """The experiment with this exact name, or ``null`` (200) when there is none."""
    require_scope(request, experiment_name=name)
    return _json(to_wire(store_of(request).get_experiment_by_name(name)))


@router.get("/experiments/{experiment_id}", dependencies=_READ, response_model=Experiment)
def get_experiment(experiment_id: str, request: Request) -> Response:
    return _json(to_wire(store_of(request).get_experiment(experiment_id)))


@router.patch("/experiments/{experiment_id}", dependencies=_WRITE, response_model=Experiment)
def update_experiment(
    experiment_id: str, body: UpdateExperimentRequest, request: Request
) -> Response:
    """Change the description, or archive / restore (``lifecycle_stage``)."""
    experiment = store_of(request).update_experiment(
        experiment_id,
        description=body.description,
        lifecycle_stage=body.lifecycle_stage,  # type: ignore[arg-type]  # the store parses it
    )
    return _json(to_wire(experiment))


@router.put(
    "/experiments/{experiment_id}/tags",
    dependencies=_WRITE,
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
def set_experiment_tag(
    experiment_id: str, body: SetExperimentTagRequest, request: Request
) -> Response:
    """Set one tag (the key is in the body: keys may hold ``/``)."""
    store_of(request).set_experiment_tag(experiment_id, body.key, body.value)
    return _done()


# ---------------------------------------------------------------------------- runs
# The fixed paths (/runs/search, /runs/heartbeat, /runs/reap) come before /runs/{run_id}.


@router.post("/runs/search", dependencies=_READ, response_model=RunsPage)
def search_runs(body: SearchRunsRequest, request: Request) -> Response:
    """Runs of the experiments matching ``filter_string``, in ``order_by`` order, one page."""
    require_scope(request, experiment_ids=body.experiment_ids)
    page = store_of(request).search_runs(
        body.experiment_ids, body.filter_string, body.order_by, body.max_results, body.page_token
    )
    return _json({"runs": to_wire(list(page)), "next_page_token": page.next_page_token})


@router.post(
    "/runs/heartbeat",
    dependencies=_WRITE,
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
def heartbeat(body: HeartbeatRequest, request: Request) -> Response:
    """The runs' processes are alive (runs no longer RUNNING are left alone)."""
    require_scope(request, run_ids=body.run_ids)
    store_of(request).heartbeat(body.run_ids)
    return _done()


@router.post("/runs/reap", dependencies=_WRITE, response_model=KilledRuns)
def mark_stale_runs_killed(body: MarkStaleRunsKilledRequest, request: Request) -> Response:
    """Mark RUNNING runs whose heartbeat stopped KILLED; returns their ids. Refused (403) to
    a token limited to some experiments: this acts on every experiment."""
    require_every_experiment(request, "reap stale runs")
    killed = store_of(request).mark_stale_runs_killed(body.timeout_seconds)
    return _json({"run_ids": killed})


@router.post(
    "/runs", dependencies=_WRITE, status_code=status.HTTP_201_CREATED, response_model=RunInfo
)
def create_run(body: CreateRunRequest, request: Request) -> Response:
    """Start a run (RUNNING) in an active experiment."""
    require_scope(request, experiment_id=body.experiment_id, run_id=body.parent_run_id)
    source = from_wire(SourceInfo, body.source, where="source") if body.source else None
    info = store_of(request).create_run(
        body.experiment_id,
        run_name=body.run_name,
        start_time=body.start_time,
        parent_run_id=body.parent_run_id,
        tags=body.tags,
        source=source,
        heartbeat=body.heartbeat,
    )
    return _json(to_wire(info), status.HTTP_201_CREATED)


@router.get("/runs/{run_id}", dependencies=_READ, response_model=Run)
def get_run(run_id: str, request: Request) -> Response:
    """The run with its params, tags and the latest value of each metric."""
    return _json(to_wire(store_of(request).get_run(run_id)))


@router.patch("/runs/{run_id}", dependencies=_WRITE, response_model=RunInfo)
def update_run(run_id: str, body: UpdateRunRequest, request: Request) -> Response:
    """Change the status (end or resume the run), end time, name or error."""
    info = store_of(request).update_run(
        run_id,
        status=body.status,
        end_time=body.end_time,
        run_name=body.run_name,
        error=body.error,
        heartbeat=body.heartbeat,
    )
    return _json(to_wire(info))


@router.post(
    "/runs/{run_id}/params",
    dependencies=_WRITE,
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
def log_params(run_id: str, body: LogParamsRequest, request: Request) -> Response:
    """Log params; all or nothing. A param logged again with another value is a 409."""
    store_of(request).log_params(run_id, body.params)
    return _done()


@router.post(
    "/runs/{run_id}/tags",
    dependencies=_WRITE,
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
def set_tags(run_id: str, body: SetTagsRequest, request: Request) -> Response:
    """Set tags (existing keys get the new value)."""
    store_of(request).set_tags(run_id, body.tags)
    return _done()


@router.delete(
    "/runs/{run_id}/tags",
    dependencies=_WRITE,
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
def delete_tag(run_id: str, request: Request, key: Annotated[str, Query()]) -> Response:
    """Remove one tag (``?key=``); removing a tag that is not there is not an error."""
    store_of(request).delete_tag(run_id, key)
    return _done()


@router.post(
    "/runs/{run_id}/batch",
    dependencies=_WRITE,
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
def log_batch(run_id: str, body: LogBatchRequest, request: Request) -> Response:
    """Metrics, params and tags of one run in one transaction: all or nothing. Idempotent:
    a point identical to a stored one is skipped, so a retried batch adds nothing."""
    metrics = _metrics(body.metrics)
    store_of(request).log_batch(run_id, metrics, body.params, body.tags)
    return _done()


@router.get("/runs/{run_id}/metrics/history", dependencies=_READ, response_model=MetricHistory)
def get_metric_history(run_id: str, request: Request, key: Annotated[str, Query()]) -> Response:
    """Every point of the metric ``?key=``, by step then timestamp."""
    points = store_of(request).get_metric_history(run_id, key)
    values = list(map(_VALUE, points))
    steps, timestamps = list(map(_STEP, points)), list(map(_TIMESTAMP, points))
    return _json(
        {"key": key, "steps": steps, "timestamps": timestamps, "values": _wire_values(values)}
    )


# ---------------------------------------------------------------------------- metrics


@router.post(
    "/metrics/rows",
    dependencies=_WRITE,
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
def append_metric_rows(body: AppendMetricRowsRequest, request: Request) -> Response:
    """Points of one or more runs in one transaction (the client's buffered flush). A run
    that does not exist is a 404 and nothing is written. Idempotent: a retried batch adds
    nothing."""
    rows = _rows(body.series)
    require_scope(request, run_ids=[one.run_id for one in body.series])
    if rows:
        store_of(request).append_metric_rows(rows)
    return _done()
