"""The model registry through a live server: the user's whole flow, who is recorded as the
actor, what the server refuses, the error bodies and the route table."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import httpx
import numpy as np
import pytest
from fastapi.routing import APIRoute

import loopml
from loopml import models, registry
from loopml.entities import TokenScopes
from loopml.errors import (
    ConflictError,
    InvalidArgumentError,
    ModelNotFoundError,
    PermissionDeniedError,
)
from loopml.server.app import ServerConfig
from loopml.server.deps import POLICY_ATTRIBUTE, Role
from loopml.server.routes import registry as registry_routes
from loopml.storage.rest import RestStore
from loopml.storage.sql import SqlStore
from loopml.testing.server import live_server

DIGEST = "blake3:" + "ab" * 32

#: every registry route and the role it needs
ROUTES = {
    ("POST", "/api/v1/models"): Role.WRITER,
    ("GET", "/api/v1/models"): Role.READER,
    ("GET", "/api/v1/models/{name}"): Role.READER,
    ("PATCH", "/api/v1/models/{name}"): Role.WRITER,
    ("DELETE", "/api/v1/models/{name}"): Role.ADMIN,
    ("PUT", "/api/v1/models/{name}/tags"): Role.WRITER,
    ("DELETE", "/api/v1/models/{name}/tags"): Role.WRITER,
    ("POST", "/api/v1/models/{name}/versions"): Role.WRITER,
    ("GET", "/api/v1/models/{name}/versions"): Role.READER,
    ("GET", "/api/v1/models/{name}/versions/{version}"): Role.READER,
    ("PATCH", "/api/v1/models/{name}/versions/{version}"): Role.WRITER,
    ("DELETE", "/api/v1/models/{name}/versions/{version}"): Role.WRITER,
    ("PUT", "/api/v1/models/{name}/versions/{version}/tags"): Role.WRITER,
    ("DELETE", "/api/v1/models/{name}/versions/{version}/tags"): Role.WRITER,
    ("POST", "/api/v1/models/{name}/versions/{version}/status"): Role.WRITER,
    ("PUT", "/api/v1/models/{name}/aliases/{alias}"): Role.WRITER,
    ("DELETE", "/api/v1/models/{name}/aliases/{alias}"): Role.WRITER,
    ("GET", "/api/v1/models/{name}/aliases/{alias}"): Role.READER,
    ("GET", "/api/v1/models/{name}/events"): Role.READER,
    ("GET", "/api/v1/datasets/{name}/models"): Role.READER,
}


@pytest.fixture
def http(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url + "/api/v1") as client:
        yield client


@pytest.fixture
def remote(server_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The process's tracking URI is the server; the client's actor is ``ci-bot``."""
    monkeypatch.setenv("LOOPML_ACTOR", "ci-bot")
    loopml.set_tracking_uri(server_url)
    return server_url


def test_train_log_register_alias_and_load_through_a_server(
    remote: str, server_store: SqlStore
) -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    frame = load_breast_cancer(as_frame=True).frame.iloc[:120]
    features, target = frame.drop(columns=["target"]), frame["target"]
    with loopml.start_run(experiment="churn") as run:
        model = LogisticRegression(max_iter=5000).fit(features, target)
        info = models.log_model(model, "model", input_example=features.iloc[:3])
    mv = registry.register(info.uri, "a.b-c_d", description="first")
    assert (mv.version, mv.run_id, mv.flavor, mv.source) == (1, run.run_id, "sklearn", info.uri)
    assert registry.set_alias("a.b-c_d", "champion", mv.version, reason="first") is None
    loaded = models.load("models:/a.b-c_d@champion")
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))
    # what the server's own store recorded
    assert server_store.get_model_version_by_alias("a.b-c_d", "champion").version == 1
    actors = {e.kind: e.actor for e in server_store.list_registry_events("a.b-c_d")}
    assert actors["model.version_created"] == "ci-bot"
    assert actors["model.alias_set"] == "ci-bot"


def test_the_actor_is_the_clients_with_auth_off(remote: str, server_store: SqlStore) -> None:
    # the registry API opens a RestStore from the tracking URI; the versions are made here
    server_store.create_model_version("churn", package_digest=DIGEST)
    server_store.create_model_version("churn", package_digest=DIGEST)
    registry.set_alias("churn", "champion", 1, reason="first")
    registry.set_alias("churn", "champion", 2, reason="better", actor="ana")
    registry.archive_version("churn", 1, reason="old")
    registry.restore_version("churn", 1)
    registry.delete_alias("churn", "champion")
    registry.delete_version("churn", 2)
    registry.delete_model("churn", reason="obsolete")
    recorded = [(e.kind, e.actor) for e in server_store.list_registry_events("churn") if e.actor]
    assert recorded == [
        ("model.alias_set", "ci-bot"),
        ("model.alias_set", "ana"),  # an explicit actor wins over LOOPML_ACTOR, as locally
        ("model.version_archived", "ci-bot"),
        ("model.version_restored", "ci-bot"),
        ("model.alias_deleted", "ci-bot"),
        ("model.version_deleted", "ci-bot"),
        ("model.deleted", "ci-bot"),
    ]
    # and through the remote store, history reads the same
    assert [(e.kind, e.actor) for e in registry.history("churn") if e.actor] == recorded


def test_the_tokens_name_wins_over_a_client_sent_actor(
    http: httpx.Client, server_store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # stands in for the bearer-token check, which names the caller on the request
    monkeypatch.setattr(registry_routes, "actor_of", lambda request: "deploy-token")
    server_store.create_model_version("churn", package_digest=DIGEST)
    answer = http.put(
        "/models/churn/aliases/champion",
        json={"version": 1, "actor": "someone-else", "reason": "r"},
    )
    assert (answer.status_code, answer.json()) == (200, {"previous": None})
    answer = http.post(
        "/models/churn/versions", json={"package_digest": DIGEST, "actor": "someone-else"}
    )
    assert answer.status_code == 201, answer.text
    answer = http.delete("/models/churn/aliases/champion", params={"actor": "someone-else"})
    assert (answer.status_code, answer.json()) == (200, {"previous": 1})
    actors = {e.actor for e in server_store.list_registry_events("churn") if e.actor}
    assert actors == {"deploy-token"}


@pytest.mark.parametrize(("auth_on", "recorded"), [(False, "ana"), (True, None)])
def test_a_client_sent_actor_counts_only_with_auth_off(auth_on: bool, recorded: str | None) -> None:
    config = ServerConfig(auth=auth_on)
    request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(config=config)))
    request.state = SimpleNamespace()  # no token name on the request
    assert registry_routes._actor(request, "ana") == recorded  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "source",
    [
        "file:///etc",
        "s3://other/bucket/model",
        "http://169.254.169.254/latest",
        "/etc/passwd",
        "../model",
        "runs:/not-a-run-id/model",
        "models:/",
    ],
)
def test_a_source_that_is_not_a_store_reference_is_refused(
    http: httpx.Client, rest_store: RestStore, server_store: SqlStore, source: str
) -> None:
    answer = http.post("/models/churn/versions", json={"package_digest": DIGEST, "source": source})
    assert answer.status_code == 400
    body = answer.json()
    assert (body["error_code"], body["details"]["field"]) == ("INVALID_ARGUMENT", "source")
    with pytest.raises(InvalidArgumentError) as info:
        rest_store.create_model_version("churn", package_digest=DIGEST, source=source)
    assert info.value.details["field"] == "source"
    # nothing was created, not even the registered model
    with pytest.raises(ModelNotFoundError):
        server_store.get_registered_model("churn")
    assert server_store.list_registry_events("churn") == []


@pytest.mark.parametrize("source", ["", "models:/other/3", "models:/other@champion"])
def test_store_references_are_accepted_as_sources(rest_store: RestStore, source: str) -> None:
    mv = rest_store.create_model_version("churn", package_digest=DIGEST, source=source)
    assert mv.source == source


def test_unknown_models_are_404_with_an_error_body(
    http: httpx.Client, rest_store: RestStore
) -> None:
    answer = http.get("/models/nope")
    assert answer.status_code == 404
    assert answer.json() == {
        "error_code": "MODEL_NOT_FOUND",
        "message": "No registered model named 'nope'.",
        "details": {"name": "nope"},
    }
    for path in ("/models/nope/versions/1", "/models/nope/aliases/champion"):
        assert http.get(path).json()["error_code"] == "MODEL_NOT_FOUND"
    with pytest.raises(ModelNotFoundError, match="nope") as info:
        rest_store.get_model_version_by_alias("nope", "champion")
    assert info.value.details == {"name": "nope"}


def test_errors_keep_their_details(http: httpx.Client, rest_store: RestStore) -> None:
    rest_store.create_model_version("churn", package_digest=DIGEST)
    rest_store.set_alias("churn", "champion", 1)
    rest_store.set_alias("churn", "champion.v2", 1)
    with pytest.raises(ConflictError) as info:
        rest_store.set_model_version_status("churn", 1, "ARCHIVED")
    assert info.value.details["aliases"] == ["champion", "champion.v2"]
    answer = http.delete("/models/churn/versions/1")
    assert answer.status_code == 409
    assert answer.json()["details"]["aliases"] == ["champion", "champion.v2"]
    bad = http.get("/models/churn/versions/two")
    assert bad.status_code == 400
    assert bad.json()["error_code"] == "INVALID_ARGUMENT"


def test_names_aliases_and_tag_keys_with_odd_characters(rest_store: RestStore) -> None:
    rest_store.create_model_version("a.b-c_d", package_digest=DIGEST)
    assert rest_store.set_alias("a.b-c_d", "champ.v2-x_y", 1) is None
    assert rest_store.get_model_version_by_alias("a.b-c_d", "champ.v2-x_y").version == 1
    keys = ["team/owner", "a b?c=d&e", "..", "%2F", "ünï#"]
    for key in keys:
        rest_store.set_registered_model_tag("a.b-c_d", key, key)
        rest_store.set_model_version_tag("a.b-c_d", 1, key, 7)
    assert rest_store.get_registered_model("a.b-c_d").tags == {k: k for k in keys}
    assert rest_store.get_model_version("a.b-c_d", 1).tags == dict.fromkeys(keys, "7")
    for key in keys:
        rest_store.delete_registered_model_tag("a.b-c_d", key)
        rest_store.delete_model_version_tag("a.b-c_d", 1, key)
    assert rest_store.get_registered_model("a.b-c_d").tags == {}
    assert rest_store.delete_alias("a.b-c_d", "champ.v2-x_y") == 1
    # a name that cannot be a path segment is refused like the SQL store refuses it
    for name in ("a/b", "..", "a b"):
        with pytest.raises(InvalidArgumentError) as info:
            rest_store.get_registered_model(name)
        assert info.value.details["field"] == "name"


def test_openapi_lists_the_registry_routes_with_their_roles(server_url: str) -> None:
    spec = httpx.get(server_url + "/openapi.json")
    assert spec.status_code == 200
    listed = {
        (method.upper(), path)
        for path, operations in spec.json()["paths"].items()
        for method in operations
    }
    assert set(ROUTES) <= listed
    found: dict[tuple[str, str], list[Role]] = {}
    for route in registry_routes.router.routes:
        if isinstance(route, APIRoute):
            roles = [
                getattr(dep.call, POLICY_ATTRIBUTE)
                for dep in route.dependant.dependencies
                if hasattr(dep.call, POLICY_ATTRIBUTE)
            ]
            for method in route.methods or ():
                found[(method, route.path)] = roles
    assert found == {key: [role] for key, role in ROUTES.items()}


def test_with_auth_on_roles_scopes_and_the_recorded_actor(server_store: SqlStore) -> None:
    """The client sends actor="ana"; the server records the token's name instead."""
    secrets = {
        role: server_store.create_token(f"{role}-token", role)[1]
        for role in ("reader", "writer", "admin")
    }
    _, scoped = server_store.create_token(
        "churn-only", "writer", scopes=TokenScopes(models=("churn",))
    )
    with live_server(server_store, ServerConfig(auth=True)) as url:
        clients = {
            role: RestStore(url, token=secret, retry_seconds=0) for role, secret in secrets.items()
        }
        limited = RestStore(url, token=scoped, retry_seconds=0)
        try:
            writer, reader, admin = clients["writer"], clients["reader"], clients["admin"]
            writer.create_model_version("churn", package_digest=DIGEST, actor="ana")
            writer.set_alias("churn", "champion", 1, actor="ana")
            writer.create_registered_model("fraud")
            assert reader.get_model_version_by_alias("churn", "champion").version == 1
            with pytest.raises(PermissionDeniedError):
                reader.set_alias("churn", "champion", 1)
            with pytest.raises(PermissionDeniedError):
                writer.delete_registered_model("fraud")
            admin.delete_registered_model("fraud", actor="ana")
            # a token limited to churn sees and changes churn only
            writer.create_registered_model("other")
            assert [m.name for m in limited.list_registered_models()] == ["churn"]
            limited.set_alias("churn", "challenger", 1)
            for call in (
                lambda: limited.get_registered_model("other"),
                lambda: limited.create_registered_model("fraud"),
                lambda: limited.create_model_version("other", package_digest=DIGEST),
            ):
                with pytest.raises(PermissionDeniedError):
                    call()
        finally:
            for client in (*clients.values(), limited):
                client.close()
    recorded = {
        (e.kind, e.actor)
        for name in ("churn", "fraud")
        for e in server_store.list_registry_events(name)
        if e.kind != "model.created"
    }
    assert recorded == {
        ("model.version_created", "writer-token"),
        ("model.alias_set", "writer-token"),
        ("model.alias_set", "churn-only"),
        ("model.deleted", "admin-token"),
    }
