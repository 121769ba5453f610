"""Authorization of the tracking server (RELIABILITY S5, S6, S10).

* S5: every route of the app's route table declares a policy (the test lists those that do
  not), and with auth on, every non-public route refuses a missing, unknown or revoked
  token (401) and a role below its own (403), before its handler or body validation runs,
  leaving the store unchanged.
* S6: a ``text/plain`` or form POST, a foreign ``Host`` and a foreign ``Origin`` are refused
  by the running server and change nothing.
* S10: no token exists until one is made; failed authentications are rate-limited per
  client address (429 with ``Retry-After``).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy import select

from loopml.entities import TokenScopes
from loopml.errors import PermissionDeniedError, UnauthenticatedError
from loopml.server import auth
from loopml.server.app import ServerConfig, create_app
from loopml.server.auth import FailedAuthLimiter, require_scope
from loopml.server.deps import POLICY_ATTRIBUTE, Role, actor_of, allow
from loopml.storage.rest.base import RestBase
from loopml.storage.sql import SqlStore
from loopml.storage.sql.schema import events, metadata
from loopml.testing.server import live_server

with warnings.catch_warnings():  # starlette warns, on import, that it prefers httpx2
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

_PARAM = re.compile(r"{([^}:]+)(?::[^}]+)?}")


# -- the route table ------------------------------------------------------------------------------


def _api_routes(app: FastAPI) -> list[Any]:
    """Every API route the app serves, with its effective path and dependencies.

    Newer FastAPI keeps an included router as one lazy entry of ``app.routes``, expanded by
    ``iter_route_contexts``; older FastAPI copies the routes into ``app.routes`` itself."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - FastAPI before lazy included routers
        routes: list[Any] = list(app.routes)
    else:
        routes = list(iter_route_contexts(app.routes))
    return [r for r in routes if isinstance(getattr(r, "original_route", r), APIRoute)]


def _policy(route: Any) -> Role | str | None:
    """The policy of the route's first dependency (``None``: it has none there)."""
    first = route.dependant.dependencies[0].call if route.dependant.dependencies else None
    return getattr(first, POLICY_ATTRIBUTE, None)


def _policies(route: Any) -> list[Role | str]:
    found = (getattr(dep.dependency, POLICY_ATTRIBUTE, None) for dep in route.dependencies)
    return [policy for policy in found if policy is not None]


def _calls(app: FastAPI, policies: set[Role | str]) -> list[tuple[str, str, Role | str]]:
    """(method, concrete path, policy) for every route whose policy is in ``policies``."""
    calls = []
    for route in _api_routes(app):
        policy = _policy(route)
        if policy not in policies:
            continue
        path = _PARAM.sub(lambda m: "0" * 32 if m.group(1).endswith("run_id") else "1", route.path)
        calls.extend((method, path, policy) for method in sorted(route.methods - {"HEAD"}))
    return calls


def _send(client: TestClient, method: str, path: str, secret: str | None) -> httpx.Response:
    """One call as a client would make it: a JSON body where the method takes one (bytes
    where the route takes an upload), so only the policy can refuse it."""
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    if method not in ("POST", "PUT", "PATCH"):
        return client.request(method, path, headers=headers)
    response = client.request(
        method, path, headers={**headers, "Content-Type": "application/json"}, content=b"{}"
    )
    if response.status_code == 415:  # an upload route
        octets = {**headers, "Content-Type": "application/octet-stream"}
        response = client.request(method, path, headers=octets, content=b"bytes")
    return response


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


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
def store(sql_store: SqlStore) -> SqlStore:
    sql_store.create_experiment("demo")
    return sql_store


@pytest.fixture
def secrets(store: SqlStore) -> dict[str, str]:
    made = {role: store.create_token(role, role)[1] for role in ("reader", "writer", "admin")}
    made["revoked"] = store.create_token("revoked", "admin")[1]
    store.revoke_token("revoked")
    return made


@pytest.fixture
def app(store: SqlStore) -> FastAPI:
    return create_app(store, ServerConfig(auth=True))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


# -- S5: every route has a policy, and it is enforced -------------------------------------------


def test_every_route_declares_a_policy(store: SqlStore) -> None:
    """A route without ``dependencies=[allow(Role.X)]`` or ``[public()]`` (its first one) would
    be open to anyone with auth on: this lists every such route."""
    app = create_app(store)
    missing = [
        f"{','.join(sorted(route.methods))} {route.path}"
        for route in _api_routes(app)
        if _policy(route) is None
    ]
    assert missing == [], "routes without a policy as their first dependency: " + "; ".join(missing)


def test_each_route_has_exactly_one_policy(store: SqlStore) -> None:
    app = create_app(store)
    doubled = [route.path for route in _api_routes(app) if len(_policies(route)) > 1]
    assert doubled == []


def test_only_the_configured_public_paths_are_public(store: SqlStore) -> None:
    config = ServerConfig()
    app = create_app(store, config)
    public = {route.path for route in _api_routes(app) if _policy(route) == "public"}
    assert public <= set(config.public_paths)
    assert {"/health", "/ready"} <= public


def test_public_routes_answer_without_a_token(client: TestClient) -> None:
    assert client.get("/health").status_code == 200
    assert client.get("/ready").status_code == 200


def test_every_route_refuses_a_missing_token(
    app: FastAPI, client: TestClient, store: SqlStore, secrets: dict[str, str]
) -> None:
    calls = _calls(app, {Role.READER, Role.WRITER, Role.ADMIN})
    assert any(path == "/api/v1/tokens" for _, path, _ in calls)
    before = _snapshot(store)
    for method, path, _ in calls:
        response = _send(client, method, path, None)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error_code"] == "UNAUTHENTICATED"
    assert _snapshot(store) == before


@pytest.mark.parametrize("secret", ["revoked", "unknown", "malformed"])
def test_every_route_refuses_a_token_that_is_not_valid(
    app: FastAPI, client: TestClient, store: SqlStore, secrets: dict[str, str], secret: str
) -> None:
    app.state.auth_limiter = FailedAuthLimiter(max_failures=10_000)
    value = {
        "revoked": secrets["revoked"],
        "unknown": "lml_" + "A" * 43,
        "malformed": "not a token",
    }[secret]
    before = _snapshot(store)
    for method, path, _ in _calls(app, {Role.READER, Role.WRITER, Role.ADMIN}):
        response = _send(client, method, path, value)
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error_code"] == "UNAUTHENTICATED"
    assert _snapshot(store) == before


@pytest.mark.parametrize(
    ("role", "forbidden"), [("reader", {Role.WRITER, Role.ADMIN}), ("writer", {Role.ADMIN})]
)
def test_every_route_refuses_a_role_below_its_own(
    app: FastAPI,
    client: TestClient,
    store: SqlStore,
    secrets: dict[str, str],
    role: str,
    forbidden: set[Role],
) -> None:
    calls = _calls(app, forbidden)
    assert calls, "the tokens routes at least need ADMIN"
    before = _snapshot(store)
    for method, path, policy in calls:
        response = _send(client, method, path, secrets[role])
        assert response.status_code == 403, (method, path, response.text)
        body = response.json()
        assert body["error_code"] == "PERMISSION_DENIED"
        assert f"role {role!r} cannot call" in body["message"]
        assert f"needs {policy.name.lower()!r}" in body["message"]  # type: ignore[union-attr]
    assert _snapshot(store) == before


def test_a_reader_passes_the_policy_of_reading_routes(
    app: FastAPI, client: TestClient, secrets: dict[str, str]
) -> None:
    for method, path, _ in _calls(app, {Role.READER}):
        if method != "GET":
            continue
        response = _send(client, method, path, secrets["reader"])
        assert response.status_code not in (401, 403, 429), (method, path, response.text)
    assert (
        client.get("/metrics", headers={"Authorization": f"Bearer {secrets['reader']}"}).status_code
        == 200
    )


def test_the_policy_runs_before_body_validation(
    client: TestClient, store: SqlStore, secrets: dict[str, str]
) -> None:
    json = {"Content-Type": "application/json"}
    reader = {**json, "Authorization": f"Bearer {secrets['reader']}"}
    assert client.post("/api/v1/tokens", headers=json, content=b"").status_code == 401
    assert client.post("/api/v1/tokens", headers=json, content=b'{"name": 5}').status_code == 401
    assert client.post("/api/v1/tokens", headers=reader, content=b"{}").status_code == 403
    assert client.post("/api/v1/tokens", headers=reader, content=b"[1, 2]").status_code == 403
    # a body that is not JSON at all is refused while it is read, before any dependency runs
    assert client.post("/api/v1/tokens", headers=json, content=b"{oops").status_code == 400
    assert len(store.list_tokens(include_revoked=True)) == 4


def test_the_remote_client_raises_the_same_errors(store: SqlStore, secrets: dict[str, str]) -> None:
    with live_server(store, ServerConfig(auth=True)) as url:
        anonymous = RestBase(url, retry_seconds=0)
        reader = RestBase(url, token=secrets["reader"], retry_seconds=0)
        try:
            with pytest.raises(UnauthenticatedError, match="requires a token"):
                anonymous._call("GET", "/tokens")
            with pytest.raises(PermissionDeniedError, match="needs 'admin'"):
                reader._call("GET", "/tokens")
        finally:
            anonymous.close()
            reader.close()


# -- the token routes -----------------------------------------------------------------------------


def test_token_routes_for_an_admin(
    client: TestClient, store: SqlStore, secrets: dict[str, str]
) -> None:
    admin = {"Authorization": f"Bearer {secrets['admin']}"}
    created = client.post(
        "/api/v1/tokens",
        headers=admin,
        json={"name": "ci-bot", "role": "writer", "experiments": ["demo"], "models": ["churn"]},
    )
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    body = created.json()
    secret = body["secret"]
    assert secret.startswith("lml_")
    assert body["token"]["scopes"] == {"experiments": ["demo"], "models": ["churn"]}
    verified = store.verify_token(secret)
    assert verified is not None
    assert verified.name == "ci-bot"

    listed = client.get("/api/v1/tokens", headers=admin)
    assert listed.status_code == 200
    assert [t["name"] for t in listed.json()["tokens"]] == ["admin", "ci-bot", "reader", "writer"]
    text = listed.text
    assert secret not in text
    assert "hash" not in text
    assert all(s not in text for s in secrets.values())

    duplicate = client.post(
        "/api/v1/tokens", headers=admin, json={"name": "ci-bot", "role": "reader"}
    )
    assert duplicate.status_code == 409
    bad_role = client.post("/api/v1/tokens", headers=admin, json={"name": "x", "role": "root"})
    assert bad_role.status_code == 400

    revoked = client.delete("/api/v1/tokens/ci-bot", headers=admin)
    assert revoked.status_code == 200
    assert revoked.json()["token"]["revoked_time"] is not None
    assert store.verify_token(secret) is None
    assert client.delete("/api/v1/tokens/ci-bot", headers=admin).status_code == 404
    everything = client.get("/api/v1/tokens?include_revoked=true", headers=admin).json()["tokens"]
    assert {t["name"] for t in everything} == {"admin", "ci-bot", "reader", "writer", "revoked"}

    with store._db.read() as conn:
        actors = conn.execute(
            select(events.c.kind, events.c.actor).where(events.c.subject_id == "ci-bot")
        ).all()
    assert [tuple(a) for a in actors] == [("token.created", "admin"), ("token.revoked", "admin")]


def test_token_routes_with_auth_off(store: SqlStore) -> None:
    with TestClient(create_app(store)) as client:
        created = client.post("/api/v1/tokens", json={"name": "first", "role": "admin"})
        assert created.status_code == 201
        assert client.get("/api/v1/tokens").json()["tokens"][0]["name"] == "first"


# -- scopes ---------------------------------------------------------------------------------------


class _Target(BaseModel):
    experiment_name: str | None = None
    model: str | None = None


def _probe_router() -> APIRouter:
    """Routes shaped like the resource routes, to check scopes without depending on them."""
    router = APIRouter(prefix="/api/v1")

    @router.get("/experiments/{experiment_id}/probe", dependencies=[allow(Role.READER)])
    def experiment(request: Request, experiment_id: str) -> Any:
        return {"actor": actor_of(request)}

    @router.get("/runs/{run_id}/probe", dependencies=[allow(Role.READER)])
    def run(request: Request, run_id: str) -> Any:
        return {"actor": actor_of(request)}

    @router.get("/models/{name}/probe", dependencies=[allow(Role.READER)])
    def model(request: Request, name: str) -> Any:
        return {"actor": actor_of(request)}

    @router.post("/probe", dependencies=[allow(Role.WRITER)])
    def by_body(request: Request, body: _Target) -> Any:
        require_scope(request, experiment_name=body.experiment_name, model=body.model)
        return {"actor": actor_of(request)}

    return router


@pytest.fixture
def probed(store: SqlStore) -> Iterator[tuple[TestClient, dict[str, str]]]:
    demo = store.get_experiment_by_name("demo")
    other = store.create_experiment("other")
    assert demo is not None
    ids = {
        "demo": demo.experiment_id,
        "other": other.experiment_id,
        "demo_run": store.create_run(demo.experiment_id).run_id,
        "other_run": store.create_run(other.experiment_id).run_id,
    }
    _, ids["scoped"] = store.create_token(
        "scoped", "writer", scopes=TokenScopes(experiments=("demo",), models=("churn",))
    )
    _, ids["models_only"] = store.create_token(
        "models-only", "writer", scopes={"models": ["churn"]}
    )
    _, ids["free"] = store.create_token("free", "writer")
    app = create_app(store, ServerConfig(auth=True))
    app.include_router(_probe_router())
    with TestClient(app) as client:
        yield client, ids


@pytest.mark.parametrize(
    ("token", "target", "allowed"),
    [
        ("scoped", "/experiments/{demo}/probe", True),
        ("scoped", "/experiments/{other}/probe", False),
        ("scoped", "/experiments/999999/probe", False),
        ("scoped", "/experiments/not-an-id/probe", False),
        ("scoped", "/runs/{demo_run}/probe", True),
        ("scoped", "/runs/{other_run}/probe", False),
        ("scoped", "/runs/" + "f" * 32 + "/probe", False),
        ("scoped", "/models/churn/probe", True),
        ("scoped", "/models/fraud/probe", False),
        ("models_only", "/experiments/{other}/probe", True),
        ("models_only", "/runs/{other_run}/probe", True),
        ("models_only", "/models/fraud/probe", False),
        ("free", "/experiments/{other}/probe", True),
        ("free", "/runs/{other_run}/probe", True),
        ("free", "/models/fraud/probe", True),
    ],
)
def test_path_scopes(
    probed: tuple[TestClient, dict[str, str]], token: str, target: str, allowed: bool
) -> None:
    client, ids = probed
    response = client.get(
        "/api/v1" + target.format(**ids), headers={"Authorization": f"Bearer {ids[token]}"}
    )
    if allowed:
        assert response.status_code == 200, response.text
        assert response.json()["actor"] == token.replace("_", "-")
    else:
        assert response.status_code == 403, response.text
        assert response.json()["error_code"] == "PERMISSION_DENIED"
        assert "This token is limited to the" in response.json()["message"]


@pytest.mark.parametrize(
    ("body", "allowed"),
    [
        ({"experiment_name": "demo"}, True),
        ({"experiment_name": "other"}, False),
        ({"model": "churn"}, True),
        ({"model": "fraud"}, False),
        ({"experiment_name": "demo", "model": "fraud"}, False),
        ({}, True),
    ],
)
def test_scopes_checked_by_a_route(
    probed: tuple[TestClient, dict[str, str]], body: dict[str, str], allowed: bool
) -> None:
    client, ids = probed
    response = client.post(
        "/api/v1/probe", json=body, headers={"Authorization": f"Bearer {ids['scoped']}"}
    )
    assert response.status_code == (200 if allowed else 403), response.text


def test_scopes_do_nothing_with_auth_off(store: SqlStore) -> None:
    app = create_app(store)
    app.include_router(_probe_router())
    with TestClient(app) as client:
        response = client.post("/api/v1/probe", json={"experiment_name": "nope", "model": "m"})
        assert response.status_code == 200
        assert response.json()["actor"] is None


# -- S10: rate limit of failed authentications ---------------------------------------------------


def _from(app: FastAPI, address: str) -> TestClient:
    return TestClient(app, client=(address, 50000))


def test_failed_authentications_are_rate_limited_per_address(
    app: FastAPI, secrets: dict[str, str]
) -> None:
    attacker, bystander = _from(app, "10.0.0.1"), _from(app, "10.0.0.2")
    wrong = {"Authorization": "Bearer lml_" + "B" * 43}
    for _ in range(auth.MAX_FAILURES):
        assert attacker.get("/api/v1/tokens", headers=wrong).status_code == 401
    refused = attacker.get("/api/v1/tokens", headers=wrong)
    assert refused.status_code == 429
    assert refused.json()["error_code"] == "RATE_LIMITED"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    good = {"Authorization": f"Bearer {secrets['admin']}"}
    assert attacker.get("/api/v1/tokens", headers=good).status_code == 429  # no more guesses
    assert bystander.get("/api/v1/tokens", headers=good).status_code == 200


def test_missing_tokens_and_low_roles_are_not_failures(
    app: FastAPI, secrets: dict[str, str]
) -> None:
    client = _from(app, "10.0.0.3")
    reader = {"Authorization": f"Bearer {secrets['reader']}"}
    for _ in range(3 * auth.MAX_FAILURES):
        assert client.get("/api/v1/tokens").status_code == 401
        assert client.get("/api/v1/tokens", headers=reader).status_code == 403
    admin = {"Authorization": f"Bearer {secrets['admin']}"}
    assert client.get("/api/v1/tokens", headers=admin).status_code == 200


def test_the_limit_lifts_when_the_window_passes(app: FastAPI, secrets: dict[str, str]) -> None:
    now = [1000.0]
    app.state.auth_limiter = FailedAuthLimiter(clock=lambda: now[0])
    client = _from(app, "10.0.0.4")
    for _ in range(auth.MAX_FAILURES):
        assert client.get("/api/v1/tokens", headers={"Authorization": "Basic x"}).status_code == 401
    now[0] += 30
    response = client.get("/api/v1/tokens", headers={"Authorization": "Bearer lml_x"})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "30"
    now[0] += 30
    admin = {"Authorization": f"Bearer {secrets['admin']}"}
    assert client.get("/api/v1/tokens", headers=admin).status_code == 200


def test_the_limiter_forgets_old_addresses() -> None:
    limiter = FailedAuthLimiter(max_failures=2, window=60, clock=lambda: 0.0, max_clients=3)
    for address in ("a", "b", "c", "d"):
        limiter.failed(address)
        limiter.failed(address)
    assert limiter.retry_after("d") == 60
    assert len(limiter._failures) == 3
    limiter.reset()
    assert limiter.retry_after("d") is None


def test_no_token_exists_until_one_is_made(sql_store: SqlStore) -> None:
    assert sql_store.list_tokens(include_revoked=True) == []
    app = create_app(sql_store, ServerConfig(auth=True))
    with TestClient(app) as client:
        for guess in ("admin", "password", "lml_admin", "loopml", ""):
            response = client.get("/api/v1/tokens", headers={"Authorization": f"Bearer {guess}"})
            assert response.status_code == 401


# -- S6: cross-site requests against the running server -----------------------------------------


@pytest.mark.parametrize("auth_on", [True, False])
def test_cross_site_requests_are_refused(
    store: SqlStore, secrets: dict[str, str], auth_on: bool
) -> None:
    admin = {"Authorization": f"Bearer {secrets['admin']}"} if auth_on else {}
    body = b'{"name": "evil", "role": "admin"}'
    before = _snapshot(store)
    with live_server(store, ServerConfig(auth=auth_on)) as url, httpx.Client(base_url=url) as http:
        as_text = http.post(
            "/api/v1/tokens", content=body, headers={**admin, "Content-Type": "text/plain"}
        )
        assert as_text.status_code == 415
        as_form = http.post(
            "/api/v1/tokens",
            content=b"name=evil&role=admin",
            headers={**admin, "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert as_form.status_code == 415
        json = {**admin, "Content-Type": "application/json"}
        rebound = http.post(
            "/api/v1/tokens", content=body, headers={**json, "Host": "evil.example"}
        )
        assert rebound.status_code == 400
        assert rebound.json()["error_code"] == "FORBIDDEN_HOST"
        foreign = http.post(
            "/api/v1/tokens", content=body, headers={**json, "Origin": "http://evil.example"}
        )
        assert foreign.status_code == 403
        assert "origin" in foreign.json()["message"]
        null_origin = http.get("/api/v1/tokens", headers={**admin, "Origin": "null"})
        assert null_origin.status_code == 403
        preflight = http.options(
            "/api/v1/tokens",
            headers={
                "Origin": "http://evil.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code >= 400
        assert "access-control-allow-origin" not in preflight.headers
        assert _snapshot(store) == before

        same_origin = http.post("/api/v1/tokens", content=body, headers={**json, "Origin": url})
        assert same_origin.status_code == 201, same_origin.text


def test_a_configured_cors_origin_is_accepted(store: SqlStore, secrets: dict[str, str]) -> None:
    config = ServerConfig(auth=True, cors_origins=("https://ui.example",))
    with TestClient(create_app(store, config)) as client:
        headers = {"Authorization": f"Bearer {secrets['admin']}", "Origin": "https://ui.example"}
        response = client.get("/api/v1/tokens", headers=headers)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "https://ui.example"
        other = client.get("/api/v1/tokens", headers={**headers, "Origin": "https://x.example"})
        assert other.status_code == 403
