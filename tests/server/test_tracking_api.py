"""The tracking routes over HTTP: what the conformance suite cannot see from the store's side
(retries, status codes, error bodies, the OpenAPI document, the fluent API end to end)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

import loopml
from loopml.entities import Metric, RunStatus
from loopml.errors import (
    ExperimentNotFoundError,
    FilterSyntaxError,
    InvalidArgumentError,
    ParamConflictError,
    RunNotFoundError,
)
from loopml.server.deps import POLICY_ATTRIBUTE, Role
from loopml.server.routes import tracking as tracking_routes
from loopml.storage.rest import RestStore
from loopml.storage.sql import SqlStore

API = "/api/v1"


@pytest.fixture
def http(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url + API) as client:
        yield client


def _run(store: RestStore | SqlStore, name: str | None = None) -> str:
    experiment = store.create_experiment(name or f"exp-{uuid.uuid4().hex[:8]}")
    return store.create_run(experiment.experiment_id).run_id


class LoseFirstResponse(httpx.BaseTransport):
    """Delivers each request, but loses the server's first answer on paths ending in
    ``suffix`` (the connection drops after the server has done the work)."""

    def __init__(self, suffix: str) -> None:
        self._inner = httpx.HTTPTransport()
        self._suffix = suffix
        self.lost = 0
        self.sent = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        if request.url.path.endswith(self._suffix):
            self.sent += 1
            if self.lost == 0:
                response.read()
                response.close()
                self.lost += 1
                raise httpx.ReadError("connection reset after the request", request=request)
        return response

    def close(self) -> None:
        self._inner.close()


# -- idempotent metric batches ---------------------------------------------------------------


def test_retried_metric_rows_are_stored_once(server_url: str, rest_store: RestStore) -> None:
    run_id = _run(rest_store)
    transport = LoseFirstResponse("/metrics/rows")
    flaky = RestStore(server_url, transport=transport, retry_seconds=30)
    try:
        rows = [(run_id, "loss", s, 1000 + s, 1 / (s + 1), False) for s in range(500)]
        rows += [(run_id, "loss/val", 0, 1000, 0.0, True), (run_id, "inf", 0, 1, math.inf, False)]
        flaky.append_metric_rows(rows)
    finally:
        flaky.close()
    assert (transport.sent, transport.lost) == (2, 1)  # the server got the batch twice
    history = rest_store.get_metric_history(run_id, "loss")
    assert [(p.step, p.value) for p in history] == [(s, 1 / (s + 1)) for s in range(500)]
    assert math.isnan(rest_store.get_metric_history(run_id, "loss/val")[0].value)
    assert rest_store.get_metric_history(run_id, "inf")[0].value == math.inf


def test_retried_log_batch_is_stored_once(server_url: str, rest_store: RestStore) -> None:
    run_id = _run(rest_store)
    transport = LoseFirstResponse("/batch")
    flaky = RestStore(server_url, transport=transport, retry_seconds=30)
    try:
        points = [Metric("acc", s / 10, 2000 + s, s) for s in range(10)]
        flaky.log_batch(run_id, points, params={"lr": 0.1}, tags={"t": "v"})
    finally:
        flaky.close()
    assert (transport.sent, transport.lost) == (2, 1)
    assert rest_store.get_metric_history(run_id, "acc") == points
    run = rest_store.get_run(run_id)
    assert (run.data.params, run.data.tags) == ({"lr": "0.1"}, {"t": "v"})


def test_the_same_rows_posted_twice_are_stored_once(
    http: httpx.Client, rest_store: RestStore
) -> None:
    run_id = _run(rest_store)
    body = {
        "series": [
            {
                "run_id": run_id,
                "key": "loss",
                "steps": [0, 1, 2],
                "timestamps": [10, 11, 12],
                "values": [0.5, "NaN", "-Infinity"],
            }
        ]
    }
    for _ in range(2):
        assert http.post("/metrics/rows", json=body).status_code == 204
    history = rest_store.get_metric_history(run_id, "loss")
    assert [p.step for p in history] == [0, 1, 2]
    assert history[0].value == 0.5
    assert math.isnan(history[1].value)
    assert history[2].value == -math.inf
    assert rest_store.get_run(run_id).data.metrics == {"loss": -math.inf}


def test_rows_of_a_missing_run_write_nothing(http: httpx.Client, rest_store: RestStore) -> None:
    run_id, missing = _run(rest_store), uuid.uuid4().hex
    series = [
        {"run_id": rid, "key": "x", "steps": [0], "timestamps": [1], "values": [1.0]}
        for rid in (run_id, missing)
    ]
    response = http.post("/metrics/rows", json={"series": series})
    assert response.status_code == 404
    assert response.json()["error_code"] == "RUN_NOT_FOUND"
    assert response.json()["details"] == {"run_ids": [missing]}
    assert rest_store.get_metric_history(run_id, "x") == []


# -- errors on the wire ----------------------------------------------------------------------


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error_code", "message", "details"}
    return body


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/experiments", {"name": 5}, "name"),
        ("POST", "/experiments", {"name": "x", "tags": {"a": 1}}, "tags.a"),
        ("POST", "/runs", {"experiment_id": "1", "heartbeat": "yes"}, "heartbeat"),
        ("POST", "/runs", {"experiment_id": "1", "start_time": "10"}, "start_time"),
        ("POST", "/runs/search", {"experiment_ids": "1"}, "experiment_ids"),
        ("POST", "/runs/search", {"experiment_ids": ["1"], "max_results": True}, "max_results"),
        ("POST", "/runs/heartbeat", {"run_ids": [1]}, "run_ids.0"),
        ("POST", "/runs/reap", {}, "timeout_seconds"),
        (
            "POST",
            "/metrics/rows",
            {"series": [{"run_id": "a" * 32, "key": "k", "steps": [0, "1"], "timestamps": [1, 2]}]},
            "series.0.steps.1",
        ),
        (
            "POST",
            "/metrics/rows",
            {
                "series": [
                    {
                        "run_id": "a" * 32,
                        "key": "k",
                        "steps": [0],
                        "timestamps": [-1],
                        "values": [1.0],
                    }
                ]
            },
            "series.0.timestamps.0",
        ),
    ],
)
def test_wrong_json_types_are_400_with_the_field(
    http: httpx.Client, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    error = _error(http.request(method, path, json=body), 400)
    assert error["error_code"] == "INVALID_ARGUMENT"
    assert error["details"]["field"] == field
    assert field in error["message"]


def test_columns_of_different_lengths_are_400(http: httpx.Client, rest_store: RestStore) -> None:
    run_id = _run(rest_store)
    metrics = [{"key": "k", "steps": [0, 1], "timestamps": [1], "values": [1.0, 2.0]}]
    error = _error(http.post(f"/runs/{run_id}/batch", json={"metrics": metrics}), 400)
    assert error["details"]["field"] == "metrics.0"
    assert "same length" in error["message"]
    assert rest_store.get_metric_history(run_id, "k") == []


def test_bad_values_get_the_stores_error(http: httpx.Client) -> None:
    error = _error(http.post("/experiments", json={"name": " padded"}), 400)
    assert error["details"] == {"field": "name"}
    assert "experiment name" in error["message"]
    error = _error(http.get("/runs/not-a-run"), 400)
    assert error["details"] == {"field": "run_id"}


def test_malformed_json_is_400(http: httpx.Client) -> None:
    response = http.post(
        "/experiments", content=b'{"name": "x",', headers={"Content-Type": "application/json"}
    )
    assert _error(response, 400)["error_code"] == "INVALID_ARGUMENT"
    response = http.post(
        "/metrics/rows", content=b"[1, 2", headers={"Content-Type": "application/json"}
    )
    assert _error(response, 400)["error_code"] == "INVALID_ARGUMENT"


def test_a_body_must_be_json(http: httpx.Client) -> None:
    response = http.post("/experiments", content=b"name=x", headers={"Content-Type": "text/plain"})
    assert _error(response, 415)["error_code"] == "UNSUPPORTED_MEDIA_TYPE"


def test_unknown_run_is_404_with_the_loopml_body(http: httpx.Client) -> None:
    missing = uuid.uuid4().hex
    for response in (
        http.get(f"/runs/{missing}"),
        http.patch(f"/runs/{missing}", json={"status": "FINISHED"}),
        http.post(f"/runs/{missing}/params", json={"params": {"a": "b"}}),
        http.get(f"/runs/{missing}/metrics/history", params={"key": "loss"}),
    ):
        error = _error(response, 404)
        assert error["error_code"] == "RUN_NOT_FOUND"
        assert error["details"] == {"run_id": missing}
        assert missing in error["message"]
        assert "Traceback" not in response.text


def test_unknown_experiment_is_404(http: httpx.Client) -> None:
    error = _error(http.get("/experiments/987654"), 404)
    assert error["error_code"] == "EXPERIMENT_NOT_FOUND"
    assert error["details"] == {"experiment_id": "987654"}


def test_client_raises_the_stores_errors(rest_store: RestStore) -> None:
    run_id = _run(rest_store)
    rest_store.log_params(run_id, {"lr": "0.1"})
    with pytest.raises(ParamConflictError) as conflict:
        rest_store.log_params(run_id, {"lr": "0.2"})
    assert conflict.value.details == {"run_id": run_id, "key": "lr"}
    with pytest.raises(FilterSyntaxError) as syntax:
        rest_store.search_runs(["1"], "params.lr ~ 3")
    assert syntax.value.position == 10
    with pytest.raises(ExperimentNotFoundError) as missing:
        rest_store.update_experiment("987654", description="x")
    assert missing.value.details == {"experiment_id": "987654"}
    with pytest.raises(RunNotFoundError):
        rest_store.set_tags(uuid.uuid4().hex, {"a": "b"})
    with pytest.raises(InvalidArgumentError, match="lifecycle_stage"):
        rest_store.update_experiment("1", lifecycle_stage="deleted")  # type: ignore[arg-type]


# -- names and keys travel outside the path --------------------------------------------------


@pytest.mark.parametrize("text", ["a/b", "../../etc/passwd", "q?x=1&y=2#frag", "%2e%2e%2F", "é 🚀"])
def test_names_and_keys_round_trip(rest_store: RestStore, text: str) -> None:
    experiment = rest_store.create_experiment(f"exp {text}", tags={text: text})
    assert rest_store.get_experiment_by_name(f"exp {text}") == experiment
    rest_store.set_experiment_tag(experiment.experiment_id, f"{text}2", text)
    run_id = rest_store.create_run(experiment.experiment_id, run_name=text).run_id
    rest_store.log_batch(run_id, [Metric(text, 2.5, 1, 0)], params={text: text}, tags={text: "x"})
    rest_store.set_tags(run_id, {f"{text}2": text})
    rest_store.delete_tag(run_id, text)
    run = rest_store.get_run(run_id)
    assert run.info.run_name == text
    assert run.data.params == {text: text}
    assert run.data.tags == {f"{text}2": text}
    assert rest_store.get_metric_history(run_id, text) == [Metric(text, 2.5, 1, 0)]
    assert rest_store.get_experiment(experiment.experiment_id).tags == {
        text: text,
        f"{text}2": text,
    }


def test_missing_name_is_null(http: httpx.Client) -> None:
    response = http.get("/experiments/by-name", params={"name": "nobody"})
    assert response.status_code == 200
    assert response.json() is None


def test_ids_never_reach_a_path_unchecked(rest_store: RestStore) -> None:
    for bad in ("../1", "1/../2", "%2e%2e", "1?x=2", True):
        with pytest.raises(InvalidArgumentError, match="experiment_id"):
            rest_store.get_experiment(bad)  # type: ignore[arg-type]
    for bad_run in ("../" + "a" * 29, "A" * 32, "a" * 31 + "/"):
        with pytest.raises(InvalidArgumentError, match="run_id"):
            rest_store.get_run(bad_run)


# -- runs, search and heartbeats through the store -------------------------------------------


def test_run_lifecycle_and_search(rest_store: RestStore, server_store: SqlStore) -> None:
    experiment = rest_store.create_experiment("life")
    exp_id = experiment.experiment_id
    info = rest_store.create_run(exp_id, run_name="r", start_time=5, heartbeat=True, tags={"n": 1})
    assert info == server_store.get_run(info.run_id).info
    rest_store.heartbeat([info.run_id])
    rest_store.heartbeat([])
    ended = rest_store.update_run(info.run_id, status="finished", end_time=9.0)  # type: ignore[arg-type]
    assert (ended.status, ended.end_time) == (RunStatus.FINISHED, 9)
    assert rest_store.mark_stale_runs_killed(0.001) == []
    page = rest_store.search_runs(int(exp_id), "tags.n = '1'", "run_name", max_results=1)  # type: ignore[arg-type]
    assert [r.info.run_id for r in page] == [info.run_id]
    assert page.next_page_token is None
    assert page == server_store.search_runs([exp_id], "tags.n = '1'", "run_name")
    assert rest_store.list_experiments() == server_store.list_experiments()


# -- the OpenAPI document and access policies ------------------------------------------------

ROUTES = {
    ("POST", "/experiments"): Role.WRITER,
    ("GET", "/experiments"): Role.READER,
    ("GET", "/experiments/by-name"): Role.READER,
    ("GET", "/experiments/{experiment_id}"): Role.READER,
    ("PATCH", "/experiments/{experiment_id}"): Role.WRITER,
    ("PUT", "/experiments/{experiment_id}/tags"): Role.WRITER,
    ("POST", "/runs"): Role.WRITER,
    ("GET", "/runs/{run_id}"): Role.READER,
    ("PATCH", "/runs/{run_id}"): Role.WRITER,
    ("POST", "/runs/{run_id}/params"): Role.WRITER,
    ("POST", "/runs/{run_id}/tags"): Role.WRITER,
    ("DELETE", "/runs/{run_id}/tags"): Role.WRITER,
    ("POST", "/runs/{run_id}/batch"): Role.WRITER,
    ("GET", "/runs/{run_id}/metrics/history"): Role.READER,
    ("POST", "/runs/heartbeat"): Role.WRITER,
    ("POST", "/runs/reap"): Role.WRITER,
    ("POST", "/runs/search"): Role.READER,
    ("POST", "/metrics/rows"): Role.WRITER,
}


def test_openapi_lists_the_routes(http: httpx.Client, server_url: str) -> None:
    document = httpx.get(server_url + "/openapi.json").json()
    paths = document["paths"]
    for method, path in ROUTES:
        assert method.lower() in paths[API + path], (method, path)
    schemas = document["components"]["schemas"]
    for name in ("CreateRunRequest", "AppendMetricRowsRequest", "Run", "Experiment", "RunsPage"):
        assert name in schemas
    create = paths[API + "/runs"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CreateRunRequest"
    }
    assert "201" in create["responses"]


def test_every_route_has_its_policy() -> None:
    found = {}
    for route in tracking_routes.router.routes:
        assert isinstance(route, APIRoute)
        policies = [
            getattr(d.dependency, POLICY_ATTRIBUTE)
            for d in route.dependencies
            if hasattr(d.dependency, POLICY_ATTRIBUTE)
        ]
        for method in route.methods or ():
            found[(method, route.path.removeprefix(API))] = policies
    assert found == {key: [role] for key, role in ROUTES.items()}


# -- the fluent API end to end ---------------------------------------------------------------


def test_fluent_api_through_the_server(server_url: str, rest_store: RestStore) -> None:
    loopml.set_tracking_uri(server_url)
    with loopml.start_run(experiment="e2e", run_name="through http") as run:
        loopml.log_param("lr", 0.01)
        loopml.set_tag("stage", "test")
        for step in range(1000):
            loopml.log_metric("loss", 1 / (step + 1), step=step)
        loopml.log_metric("bad", math.nan, step=0)
    assert isinstance(loopml.Client().store, RestStore)
    history = rest_store.get_metric_history(run.run_id, "loss")
    assert [p.step for p in history] == list(range(1000))
    assert [p.value for p in history] == [1 / (s + 1) for s in range(1000)]
    stored = rest_store.get_run(run.run_id)
    assert stored.info.status is RunStatus.FINISHED
    assert stored.data.params == {"lr": "0.01"}
    assert stored.data.tags["stage"] == "test"
    assert math.isnan(stored.data.metrics["bad"])
    client = loopml.Client(tracking_uri=server_url)
    assert client.get_run(run.run_id).data.metrics["loss"] == 1 / 1000
