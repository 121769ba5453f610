"""Token scopes on every route that names an experiment, a run or a model (RELIABILITY S5).

A token limited to the experiment ``alpha`` (and the models ``churn``) does everything there;
each route that touches the experiment ``beta`` (or the model ``fraud``), whether through its
path, its body or its query, answers 403 and leaves the store as it was; listings leave
``beta``'s experiments, runs and models out. Reaping stale runs acts on every experiment, so a
token limited to experiments is refused it.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from loopml.entities import LifecycleStage
from loopml.errors import PermissionDeniedError
from loopml.server.app import ServerConfig, create_app
from loopml.storage.rest import RestStore
from loopml.storage.sql import SqlStore
from loopml.storage.sql.schema import metadata
from loopml.testing.server import live_server

with warnings.catch_warnings():  # starlette warns, on import, that it prefers httpx2
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

DIGEST = "blake3:" + "cd" * 32
MS = 1_700_000_000_000


@dataclass
class World:
    """Two experiments with a run each, a dataset both runs used, a model trained in each."""

    store: SqlStore
    client: TestClient
    alpha: str
    beta: str
    a_run: str
    b_run: str
    secrets: dict[str, str]

    def call(self, token: str, method: str, path: str, body: Any = None, **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.secrets[token]}"}
        return self.client.request(
            method, "/api/v1" + path, headers=headers, json=body, params=params or None
        )


@pytest.fixture
def world(sql_store: SqlStore) -> Iterator[World]:
    store = sql_store
    alpha = store.create_experiment("alpha").experiment_id
    beta = store.create_experiment("beta").experiment_id
    a_run = store.create_run(alpha, heartbeat=True).run_id
    b_run = store.create_run(beta, heartbeat=True).run_id
    store.create_dataset("iris")
    store.create_dataset_version("iris", digest=DIGEST, kind="files", num_files=1, size=10)
    store.log_dataset_inputs(a_run, [("iris", 1, "training")])
    store.log_dataset_inputs(b_run, [("iris", 1, "training")])
    store.create_model_version("churn", package_digest=DIGEST, run_id=a_run)
    store.create_model_version("fraud", package_digest=DIGEST, run_id=b_run)
    store.create_monitor("churn-drift", {"model": "churn", "threshold": 0.2})
    store.create_monitor("fraud-drift", {"model": "fraud", "threshold": 0.2})
    secrets = {
        # "gamma" and "churn2" do not exist yet: the token may create them
        "scoped": store.create_token(
            "scoped",
            "writer",
            scopes={"experiments": ["alpha", "gamma"], "models": ["churn", "churn2"]},
        )[1],
        "models_only": store.create_token("models-only", "writer", scopes={"models": ["churn"]})[1],
        "free": store.create_token("free", "writer")[1],
    }
    with TestClient(create_app(store, ServerConfig(auth=True))) as client:
        yield World(store, client, alpha, beta, a_run, b_run, secrets)


def _snapshot(store: SqlStore) -> dict[str, list[str]]:
    """Every row of every table (a token's last-used time aside: using it is no change)."""
    state = {}
    with store._db.read() as conn:
        for table in metadata.sorted_tables:
            rows = conn.execute(select(table)).all()
            state[table.name] = sorted(
                repr({k: v for k, v in row._mapping.items() if k != "last_used_time"})
                for row in rows
            )
    return state


def _series(run_id: str, step: int = 0) -> dict[str, Any]:
    return {"run_id": run_id, "key": "loss", "steps": [step], "timestamps": [MS], "values": [0.5]}


# -- inside its scope, a token does everything ----------------------------------------------------


def test_a_scoped_token_works_in_its_experiment_and_models(world: World) -> None:
    w, call = world, world.call
    created = call("scoped", "POST", "/experiments", {"name": "gamma"})
    assert created.status_code == 201, created.text
    gamma = created.json()["experiment_id"]
    assert call("scoped", "GET", "/experiments/by-name", name="alpha").json()["name"] == "alpha"
    assert call("scoped", "GET", "/experiments/by-name", name="gamma").status_code == 200
    assert call("scoped", "GET", f"/experiments/{w.alpha}").status_code == 200

    run = call("scoped", "POST", "/runs", {"experiment_id": w.alpha, "parent_run_id": w.a_run})
    assert run.status_code == 201, run.text
    child = run.json()["run_id"]
    assert call("scoped", "POST", "/runs", {"experiment_id": gamma}).status_code == 201
    found = call("scoped", "POST", "/runs/search", {"experiment_ids": [w.alpha, gamma]})
    assert found.status_code == 200, found.text
    assert {r["info"]["run_id"] for r in found.json()["runs"]} >= {w.a_run, child}

    heartbeat = call("scoped", "POST", "/runs/heartbeat", {"run_ids": [w.a_run, w.a_run]})
    assert heartbeat.status_code == 204, heartbeat.text
    rows = {"series": [_series(w.a_run), _series(child, 1)]}
    assert call("scoped", "POST", "/metrics/rows", rows).status_code == 204
    batch = {"metrics": [{"key": "acc", "steps": [0], "timestamps": [MS], "values": [0.9]}]}
    assert call("scoped", "POST", f"/runs/{w.a_run}/batch", batch).status_code == 204
    assert w.store.get_run(child).data.metrics == {"loss": 0.5}

    inputs = {"inputs": [["iris", 1, "evaluation"]]}
    assert call("scoped", "POST", f"/runs/{child}/inputs", inputs).status_code == 200
    assert [i["run_id"] for i in call("scoped", "GET", f"/runs/{child}/inputs").json()] == [child]

    assert call("scoped", "POST", "/models", {"name": "churn2"}).status_code == 201
    version = call(
        "scoped", "POST", "/models/churn/versions", {"package_digest": DIGEST, "run_id": child}
    )
    assert version.status_code == 201, version.text
    assert version.json()["version"] == 2
    assert call("scoped", "GET", "/models/churn/versions").status_code == 200


# -- outside it, every route refuses and nothing changes ------------------------------------------


def _outside(w: World) -> list[tuple[str, str, Any, dict[str, Any]]]:
    """(method, path, body, query) of calls that touch ``beta`` or the model ``fraud``."""
    series = {"series": [_series(w.a_run), _series(w.b_run)]}
    return [
        # tracking: named in the body or the query
        ("POST", "/experiments", {"name": "beta2"}, {}),
        ("GET", "/experiments/by-name", None, {"name": "beta"}),
        ("GET", "/experiments/by-name", None, {"name": "nowhere"}),  # existence not revealed
        ("POST", "/runs", {"experiment_id": w.beta}, {}),
        ("POST", "/runs", {"experiment_id": "999999"}, {}),
        ("POST", "/runs", {"experiment_id": w.alpha, "parent_run_id": w.b_run}, {}),
        ("POST", "/runs/search", {"experiment_ids": [w.alpha, w.beta]}, {}),
        ("POST", "/runs/search", {"experiment_ids": [w.beta]}, {}),
        ("POST", "/runs/heartbeat", {"run_ids": [w.a_run, w.b_run]}, {}),
        ("POST", "/runs/heartbeat", {"run_ids": ["f" * 32]}, {}),
        ("POST", "/metrics/rows", series, {}),
        ("POST", "/runs/reap", {"timeout_seconds": 0}, {}),  # every experiment: refused
        # tracking: named in the path (checked by the policy)
        ("GET", f"/experiments/{w.beta}", None, {}),
        ("PATCH", f"/experiments/{w.beta}", {"description": "x"}, {}),
        ("GET", f"/runs/{w.b_run}", None, {}),
        ("PATCH", f"/runs/{w.b_run}", {"status": "FINISHED"}, {}),
        ("POST", f"/runs/{w.b_run}/batch", {"params": {"a": "b"}}, {}),
        # datasets
        ("POST", f"/runs/{w.b_run}/inputs", {"inputs": [["iris", 1, "evaluation"]]}, {}),
        ("GET", f"/runs/{w.b_run}/inputs", None, {}),
        # registry
        ("POST", "/models", {"name": "fraud2"}, {}),
        ("POST", "/models/churn/versions", {"package_digest": DIGEST, "run_id": w.b_run}, {}),
        ("POST", "/models/fraud/versions", {"package_digest": DIGEST}, {}),
        ("GET", "/models/fraud", None, {}),
        ("GET", "/models/fraud/versions", None, {}),
        # artifacts of a run
        ("GET", f"/runs/{w.b_run}/artifacts", None, {}),
        # the prediction log of a model
        ("POST", "/models/fraud/prediction-segments", _segment_body(DIGEST, 10), {}),
        ("GET", "/models/fraud/prediction-segments", None, {}),
        ("GET", "/models/fraud/prediction-segments", None, {"kind": "feedback"}),
        # monitors of a model (its spec's "model"), or of none
        ("POST", "/monitors", {"name": "fraud-2", "spec": {"model": "fraud"}}, {}),
        ("POST", "/monitors", {"name": "nomodel", "spec": {"threshold": 1}}, {}),
        ("POST", "/monitors", {"name": "listed", "spec": {"model": ["churn"]}}, {}),
        ("GET", "/monitors/fraud-drift", None, {}),
        ("GET", "/monitors/nowhere", None, {}),  # existence not revealed
        ("PUT", "/monitors/fraud-drift", {"spec": {"model": "churn"}}, {}),  # taking it over
        ("PUT", "/monitors/churn-drift", {"spec": {"model": "fraud"}}, {}),  # moving it away
        ("PUT", "/monitors/churn-drift", {"spec": {}}, {}),
        ("POST", "/monitors/fraud-drift/results", _result_body(), {}),
        ("POST", "/monitors/nowhere/results", _result_body(), {}),
        ("GET", "/monitors/fraud-drift/results", None, {}),
        ("POST", "/monitors/fraud-drift/events", {"kind": "alert.opened", "payload": {}}, {}),
        ("GET", "/monitors/fraud-drift/events", None, {}),
        ("GET", "/monitors/fraud-drift/events", None, {"kinds": ["alert.opened"], "since": 0}),
        ("DELETE", "/monitors/fraud-drift", None, {}),
    ]


def _result_body(start: int = MS, status: str = "ok") -> dict[str, Any]:
    return {
        "window_start": start,
        "window_end": start + 3_600_000,
        "status": status,
        "summary": {"psi": 0.1},
    }


def _segment_body(digest: str, size: int) -> dict[str, Any]:
    return {
        "kind": "predictions",
        "model_version": 1,
        "start_time": MS,
        "end_time": MS + 5,
        "row_count": 3,
        "digest": digest,
        "size": size,
    }


def test_a_scoped_token_records_and_lists_its_models_prediction_log(world: World) -> None:
    ref = world.store.blobs.put_bytes(b"a parquet segment")
    body = _segment_body(ref.digest, ref.size)
    recorded = world.call("scoped", "POST", "/models/churn/prediction-segments", body)
    assert recorded.status_code == 201, recorded.text
    listed = world.call("scoped", "GET", "/models/churn/prediction-segments", start=MS)
    assert [s["digest"] for s in listed.json()] == [ref.digest]
    # a model it may create but that is not registered yet has a log too
    other = world.call("scoped", "POST", "/models/churn2/prediction-segments", body)
    assert other.status_code == 201, other.text
    refused = world.call("scoped", "POST", "/models/fraud/prediction-segments", body)
    assert refused.status_code == 403
    assert world.store.list_prediction_segments("fraud") == []


def test_a_scoped_token_uses_its_models_monitors(world: World) -> None:
    w, call = world, world.call
    spec = {"model": "churn", "threshold": 0.3}
    created = call("scoped", "POST", "/monitors", {"name": "m1", "spec": spec, "actor": "spoof"})
    assert created.status_code == 201, created.text
    assert created.json()["spec"] == spec
    assert call("scoped", "GET", "/monitors/m1").json()["spec"] == spec
    assert call("scoped", "GET", "/monitors/churn-drift").status_code == 200
    # moving a monitor between two models of its scope
    moved = call("scoped", "PUT", "/monitors/m1", {"spec": {"model": "churn2"}})
    assert moved.status_code == 200, moved.text
    recorded = call("scoped", "POST", "/monitors/m1/results", _result_body(status="drift"))
    assert recorded.status_code == 200, recorded.text
    results = call("scoped", "GET", "/monitors/m1/results", start=MS).json()
    assert [r["status"] for r in results] == ["drift"]
    event = call("scoped", "POST", "/monitors/m1/events", {"kind": "alert.opened", "payload": {}})
    assert event.status_code == 201, event.text
    assert event.json()["actor"] == "scoped"
    kinds = [e["kind"] for e in call("scoped", "GET", "/monitors/m1/events").json()]
    assert kinds == ["monitor.created", "monitor.updated", "alert.opened"]
    # the token's name is the actor, whatever the client sent
    assert {e.actor for e in w.store.list_monitor_events("m1")} == {"scoped"}
    deleted = call("scoped", "DELETE", "/monitors/m1")
    assert deleted.status_code == 204, deleted.text
    assert [m.name for m in w.store.list_monitors()] == ["churn-drift", "fraud-drift"]


def test_monitor_listings_hide_what_is_outside_the_scope(world: World) -> None:
    w, call = world, world.call
    w.store.record_monitor_event("fraud-drift", "alert.opened", {"psi": 0.9})
    w.store.record_monitor_event("churn-drift", "alert.opened", {"psi": 0.4})
    for token in ("scoped", "models_only"):
        assert [m["name"] for m in call(token, "GET", "/monitors").json()] == ["churn-drift"]
        listed = call(token, "GET", "/monitor-events").json()
        assert [(e["monitor"], e["kind"]) for e in listed] == [
            ("churn-drift", "monitor.created"),
            ("churn-drift", "alert.opened"),
        ]
        alerts = call(token, "GET", "/monitor-events", kinds=["alert.opened"], limit=1).json()
        assert [e["monitor"] for e in alerts] == ["churn-drift"]
    assert [m["name"] for m in call("free", "GET", "/monitors").json()] == [
        "churn-drift",
        "fraud-drift",
    ]
    assert len(call("free", "GET", "/monitor-events").json()) == 4
    # a token limited to experiments only is not limited here
    w.secrets["experiments"] = w.store.create_token(
        "experiments", "reader", scopes={"experiments": ["alpha"]}
    )[1]
    assert len(call("experiments", "GET", "/monitors").json()) == 2
    assert len(call("experiments", "GET", "/monitor-events").json()) == 4
    assert call("experiments", "GET", "/monitors/fraud-drift").status_code == 200


def test_a_scoped_token_sees_no_events_of_an_earlier_monitor_of_the_name(world: World) -> None:
    """A monitor deleted earlier may have watched another model: its events stay, but a
    token limited to models sees those of the monitor of that name since it was created."""
    w, call = world, world.call
    w.store.create_monitor("shared", {"model": "fraud"})
    w.store.record_monitor_event("shared", "alert.opened", {"psi": 0.9})
    w.store.delete_monitor("shared")
    time.sleep(0.002)  # the new monitor is created a millisecond later at least
    created = call("scoped", "POST", "/monitors", {"name": "shared", "spec": {"model": "churn"}})
    assert created.status_code == 201, created.text
    for path in ("/monitors/shared/events", "/monitor-events"):
        found = call("scoped", "GET", path).json()
        assert [(e["monitor"], e["kind"]) for e in found if e["monitor"] == "shared"] == [
            ("shared", "monitor.created")
        ], path
    everything = call("free", "GET", "/monitors/shared/events").json()
    assert [e["kind"] for e in everything] == [
        "monitor.created",
        "alert.opened",
        "monitor.deleted",
        "monitor.created",
    ]


def test_every_route_refuses_what_is_outside_the_scope(world: World) -> None:
    before = _snapshot(world.store)
    for method, path, body, query in _outside(world):
        response = world.call("scoped", method, path, body, **query)
        assert response.status_code == 403, (method, path, body, response.text)
        error = response.json()
        assert error["error_code"] == "PERMISSION_DENIED", (method, path)
        assert "This token is limited to the" in error["message"], (method, path)
    assert _snapshot(world.store) == before


def test_an_unscoped_token_is_not_refused(world: World) -> None:
    """The same calls pass the scope checks for a token without scopes (whatever the store
    then answers: some create things, some are 404 or 409)."""
    for method, path, body, query in _outside(world):
        response = world.call("free", method, path, body, **query)
        assert response.status_code != 403, (method, path, response.text)


# -- listings hide what is outside ----------------------------------------------------------------


def test_listings_hide_what_is_outside_the_scope(world: World) -> None:
    w, call = world, world.call
    w.store.update_experiment(w.beta, lifecycle_stage=LifecycleStage.ARCHIVED)
    w.store.create_experiment("delta")
    for archived in ("false", "true"):
        listed = call("scoped", "GET", "/experiments", include_archived=archived).json()
        assert [e["name"] for e in listed["experiments"]] == ["alpha"]
    everything = call("free", "GET", "/experiments", include_archived="true").json()
    assert {e["name"] for e in everything["experiments"]} == {"alpha", "beta", "delta"}
    # a token limited to models only sees every experiment
    assert len(call("models_only", "GET", "/experiments").json()["experiments"]) == 2

    assert [m["name"] for m in call("scoped", "GET", "/models").json()] == ["churn"]
    assert {m["name"] for m in call("free", "GET", "/models").json()} == {"churn", "fraud"}

    trained = call("scoped", "GET", "/datasets/iris/models").json()
    assert [(v["name"], v["run_id"]) for v in trained] == [("churn", w.a_run)]
    assert len(call("free", "GET", "/datasets/iris/models").json()) == 2

    for version in ({}, {"version": 1}):
        used = call("scoped", "GET", "/datasets/iris/usages", **version)
        assert used.status_code == 200, used.text
        assert [u["run_id"] for u in used.json()] == [w.a_run]
    assert {u["run_id"] for u in call("free", "GET", "/datasets/iris/usages").json()} == {
        w.a_run,
        w.b_run,
    }
    # models-only: every run is in its (experiment) scope
    assert len(call("models_only", "GET", "/datasets/iris/usages").json()) == 2

    found = call("scoped", "POST", "/runs/search", {"experiment_ids": [w.alpha]}).json()
    assert [r["info"]["run_id"] for r in found["runs"]] == [w.a_run]


# -- reaping stale runs ---------------------------------------------------------------------------


def test_reaping_needs_a_token_without_an_experiment_scope(world: World) -> None:
    refused = world.call("scoped", "POST", "/runs/reap", {"timeout_seconds": 0})
    assert refused.status_code == 403
    assert "every experiment" in refused.json()["message"]
    assert world.store.get_run(world.a_run).info.status == "RUNNING"
    # a token limited to models only may use every experiment, so it may reap
    time.sleep(0.05)
    reaped = world.call("models_only", "POST", "/runs/reap", {"timeout_seconds": 0.01})
    assert reaped.status_code == 200, reaped.text
    assert sorted(reaped.json()["run_ids"]) == sorted([world.a_run, world.b_run])


# -- the remote store raises the same error -------------------------------------------------------


def test_the_remote_store_raises_permission_denied(world: World) -> None:
    with live_server(world.store, ServerConfig(auth=True)) as url:
        limited = RestStore(url, token=world.secrets["scoped"], retry_seconds=0)
        try:
            assert [e.name for e in limited.list_experiments()] == ["alpha"]
            assert [r.info.run_id for r in limited.search_runs([world.alpha])] == [world.a_run]
            with pytest.raises(PermissionDeniedError, match="limited to the experiments"):
                limited.search_runs([world.beta])
            with pytest.raises(PermissionDeniedError):
                limited.create_run(world.beta)
            with pytest.raises(PermissionDeniedError):
                limited.get_experiment_by_name("beta")
            assert [u.run_id for u in limited.list_dataset_usages("iris")] == [world.a_run]
            assert [m.name for m in limited.list_monitors()] == ["churn-drift"]
            with pytest.raises(PermissionDeniedError, match="limited to the models"):
                limited.get_monitor("fraud-drift")
            with pytest.raises(PermissionDeniedError, match="limited to the models"):
                limited.create_monitor("fraud-3", {"model": "fraud"})
        finally:
            limited.close()


def test_a_scoped_admin_cannot_mint_an_unscoped_token(world: World) -> None:
    world.secrets["scoped-admin"] = world.store.create_token(
        "scoped-admin", "admin", scopes={"experiments": ["alpha"]}
    )[1]
    world.secrets["admin"] = world.store.create_token("admin", "admin")[1]
    before = [t.name for t in world.store.list_tokens()]
    for method, path, body in (
        ("POST", "/tokens", {"name": "escape", "role": "admin"}),
        ("GET", "/tokens", None),
        ("DELETE", "/tokens/free", None),
    ):
        refused = world.call("scoped-admin", method, path, body)
        assert refused.status_code == 403, (path, refused.text)
    assert [t.name for t in world.store.list_tokens()] == before
    created = world.call("admin", "POST", "/tokens", {"name": "ok", "role": "reader"})
    assert created.status_code == 201, created.text
