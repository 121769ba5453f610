"""Hostile and broken requests against a live server (RELIABILITY V1, V2, V3 and the issue's
"error bodies never leak" and "no endpoint fetches a URL or opens a path it is given").

* V1: malformed or truncated JSON, bodies that are not UTF-8 or hold a lone surrogate,
  wrong JSON types, the ``NaN`` / ``Infinity`` literals Python's JSON reader accepts, integers
  past int64, nesting 10,000 levels deep (and a few hundred inside free-form fields): 400 with
  the loopml error body and a field path, never 5xx, nothing stored, and the server answers
  afterwards.
* V2: a JSON body over ``max_json_bytes`` is 413 naming the limit, with or without a
  Content-Length; a request over the batch limits (100,000 metric points, 1,000 params or
  tags) or with a 6 MB value or a 10,000-character key is 400 naming the limit; in every case
  the database is unchanged (a snapshot of every table before and after). The remote store
  splits a large buffered flush into requests below the limit.
* V3: a param logged again with the same value is accepted, with another value 409 (never
  5xx) and nothing of its batch is kept; a metric point sent twice (in one request or two) is
  stored once.
* Errors: a handler that fails answers 500 with only an incident id (the log has the
  traceback); framework errors (no route, wrong method) have the loopml body; unknown ids are
  404 with it. Invalid tokens are covered route by route in ``test_auth.py``.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blake3
import httpx
import psutil
import pytest
from sqlalchemy import select

import loopml
from loopml.entities import Metric
from loopml.server.app import ServerConfig
from loopml.server.routes.tracking import MAX_ENTRIES_PER_REQUEST, MAX_POINTS_PER_REQUEST
from loopml.storage.rest import RestStore
from loopml.storage.sql import SqlStore
from loopml.storage.sql.schema import metadata
from loopml.storage.validation import MAX_KEY_LENGTH, MAX_VALUE_LENGTH
from loopml.testing.server import live_server

API = "/api/v1"
JSON = {"Content-Type": "application/json"}
ERROR_KEYS = {"error_code", "message", "details"}
INT64 = 2**63 - 1
HUGE = 2**70
PAYLOAD = b"payload"
PAYLOAD_DIGEST = "blake3:" + blake3.blake3(PAYLOAD).hexdigest()


# ---------------------------------------------------------------------------- helpers


@pytest.fixture
def http(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url + API, headers=JSON, timeout=60) as client:
        yield client


@pytest.fixture
def run_id(server_store: SqlStore) -> str:
    experiment = server_store.create_experiment(f"hardening-{uuid.uuid4().hex[:8]}")
    return server_store.create_run(experiment.experiment_id).run_id


def _snapshot(store: SqlStore) -> dict[str, list[str]]:
    """Every row of every table (what "nothing was stored" is checked against)."""
    state = {}
    with store._db.read() as conn:
        for table in metadata.sorted_tables:
            rows = conn.execute(select(table)).all()
            state[table.name] = sorted(
                repr({k: v for k, v in row._mapping.items() if k != "last_used_time"})
                for row in rows
            )
    return state


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The loopml error body of ``response``, which must have ``status``."""
    assert response.status_code == status, (response.request.url, response.text[:500])
    body: dict[str, Any] = response.json()
    assert set(body) == ERROR_KEYS, body
    assert isinstance(body["details"], dict)
    assert "Traceback" not in response.text
    return body


def _series(run_id: str, key: str, steps: list[Any], **columns: list[Any]) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "key": key,
        "steps": steps,
        "timestamps": columns.get("timestamps", [1] * len(steps)),
        "values": columns.get("values", [1.0] * len(steps)),
    }


def _post_raw(http: httpx.Client, path: str, raw: bytes) -> httpx.Response:
    return http.post(path, content=raw)


def _alive(http: httpx.Client) -> None:
    assert httpx.get(str(http.base_url).removesuffix(API + "/") + "/health").status_code == 200


# ---------------------------------------------------------------------------- V1: malformed


MALFORMED = [
    b'{"name": "x",',  # truncated
    b'{"name": "x"',
    b'{"name": "x"} trailing',
    b"",
    b"null",
    b"[]",
    b'"name"',
    b"\xff\xfe{}",  # not UTF-8
    b'{"name": "\xe9"}',  # latin-1, not UTF-8
    b'{"name": "half \\ud800 a pair"}',  # a lone surrogate: valid JSON, no database takes it
    b'{"name": "nul \\u0000"}',
    b"[" * 10_000 + b"]" * 10_000,  # nesting past what the JSON reader allows
    b'{"name": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
    b'{"name": "x", "tags": ' + b'{"a": ' * 10_000 + b"1" + b"}" * 10_001,
]


def test_malformed_bodies_are_400_with_a_field(
    http: httpx.Client, server_store: SqlStore, subtests: pytest.Subtests
) -> None:
    before = _snapshot(server_store)
    for raw in MALFORMED:
        with subtests.test(body=raw[:24]):
            error = _error(_post_raw(http, "/experiments", raw), 400)
            assert error["error_code"] == "INVALID_ARGUMENT"
            if "surrogate" not in error["message"]:
                assert error["details"]["field"] in ("body", "name", "tags.a")
    assert _snapshot(server_store) == before
    _alive(http)


def test_deeply_nested_bodies_keep_the_server_small_and_answering(
    http: httpx.Client, run_id: str
) -> None:
    """V1: 10,000 levels of nesting, 40 times, on every kind of route; the server (here, this
    process) grows by less than 50 MB and answers afterwards."""
    process = psutil.Process()
    deep_list = b"[" * 10_000 + b"]" * 10_000
    deep_map = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
    targets = [
        ("POST", "/experiments"),
        ("POST", "/metrics/rows"),
        ("POST", f"/runs/{run_id}/batch"),
        ("PUT", "/datasets/iris/rules"),
        ("POST", "/models/m/versions"),
    ]
    baseline = process.memory_info().rss
    for _ in range(4):
        for method, path in targets:
            for deep in (deep_list, deep_map):
                response = http.request(method, path, content=b'{"x": ' + deep + b"}")
                assert _error(response, 400)["details"]["field"] == "body"
    assert process.memory_info().rss - baseline < 50 * 1024**2
    _alive(http)


def test_deep_values_in_free_form_fields_are_refused(
    http: httpx.Client, server_store: SqlStore, subtests: pytest.Subtests
) -> None:
    """Schemas, profiles and rules are stored JSON: too deep to be served back (JSON encoders
    stop at a few hundred levels; 900 also broke the store's own encoder) is a 400."""
    server_store.create_dataset("deep")
    before = _snapshot(server_store)
    version = {"digest": "blake3:" + "1" * 64, "kind": "table", "num_files": 1, "size": 1}
    for depth in (65, 300, 900):
        deep: Any = 1
        for _ in range(depth):
            deep = {"a": deep}
        for field in ("schema", "profile", "rules"):
            with subtests.test(depth=depth, field=field):
                if field == "rules":
                    response = http.put("/datasets/deep/rules", json={"rules": deep})
                else:
                    body = json.dumps({**version, field: deep}).encode()
                    response = _post_raw(http, "/datasets/deep/versions", body)
                error = _error(response, 400)
                assert error["details"]["field"] == field
                assert "64 levels" in error["message"]
    assert _snapshot(server_store) == before


WRONG_TYPES: list[tuple[str, str, Any, str]] = [
    ("POST", "/models", {"name": 5}, "name"),
    ("POST", "/models", {"name": "m", "tags": {"a": 1}}, "tags.a"),
    ("POST", "/models/m/versions", {"package_digest": ["x"]}, "package_digest"),
    ("PUT", "/models/m/aliases/champion", {"version": "1"}, "version"),
    ("POST", "/models/m/versions/1/status", {"status": "READY", "force": 1}, "force"),
    ("POST", "/blobs/which-exist", {"digests": "blake3:x"}, "digests"),
    ("POST", "/runs/{run}/artifacts/batch", {"files": {"path": "a"}}, "files"),
    ("POST", "/runs/{run}/inputs", {"inputs": [["iris", 1]]}, "inputs.0.2"),
    ("POST", "/tokens", {"name": ["t"], "role": "reader"}, "name"),
    ("POST", "/runs/{run}/params", {"params": ["lr", 1]}, "params"),
    ("POST", "/runs/{run}/params", {"params": {"lr": None}}, "params.lr"),
    ("PATCH", "/runs/{run}", {"status": 3}, "status"),
]


def test_wrong_types_on_every_router_are_400_with_the_field(
    http: httpx.Client, server_store: SqlStore, run_id: str, subtests: pytest.Subtests
) -> None:
    """The tracking routes' cases are in test_tracking_api.py; these are the other routers'."""
    before = _snapshot(server_store)
    for method, path, body, field in WRONG_TYPES:
        with subtests.test(method=method, path=path, field=field):
            error = _error(http.request(method, path.format(run=run_id), json=body), 400)
            assert error["details"]["field"] == field, error
    assert _snapshot(server_store) == before


def test_nan_and_infinity_literals_are_metric_values_like_their_wire_names(
    http: httpx.Client, server_store: SqlStore, run_id: str
) -> None:
    """Python's JSON reader takes NaN, Infinity and -Infinity (and 1e999): as metric values they
    mean what the wire's "NaN", "Infinity" and "-Infinity" strings mean."""
    literal = (
        b'{"series": [{"run_id": "%s", "key": "lit", "steps": [0, 1, 2, 3], '
        b'"timestamps": [1, 1, 1, 1], "values": [NaN, Infinity, -Infinity, 1e999]}]}'
    ) % run_id.encode()
    assert _post_raw(http, "/metrics/rows", literal).status_code == 204
    named = {
        "series": [_series(run_id, "named", [0, 1, 2], values=["NaN", "Infinity", "-Infinity"])]
    }
    assert http.post("/metrics/rows", json=named).status_code == 204
    batch = b'{"metrics": [{"key": "batch", "steps": [0], "timestamps": [1], "values": [NaN]}]}'
    assert _post_raw(http, f"/runs/{run_id}/batch", batch).status_code == 204

    def values(key: str) -> list[str]:
        return [repr(p.value) for p in server_store.get_metric_history(run_id, key)]

    assert values("lit") == ["nan", "inf", "-inf", "inf"]
    assert values("named") == ["nan", "inf", "-inf"]
    assert values("batch") == ["nan"]
    answer = http.get(f"/runs/{run_id}/metrics/history", params={"key": "lit"}).json()
    assert answer["values"] == ["NaN", "Infinity", "-Infinity", "Infinity"]  # strict JSON out


NAN_WHERE_NO_FLOAT = [
    ("POST", "/runs", b'{"experiment_id": "1", "start_time": NaN}', "start_time"),
    ("POST", "/runs", b'{"experiment_id": "1", "start_time": Infinity}', "start_time"),
    ("POST", "/runs/search", b'{"experiment_ids": ["1"], "max_results": NaN}', "max_results"),
    ("POST", "/runs/reap", b'{"timeout_seconds": NaN}', "timeout_seconds"),
    ("POST", "/runs/{run}/params", b'{"params": {"lr": NaN}}', "params.lr"),
    ("PUT", "/models/m/aliases/a", b'{"version": Infinity}', "version"),
    (
        "POST",
        "/runs/{run}/batch",
        b'{"metrics": [{"key": "k", "steps": [NaN], "timestamps": [1], "values": [1]}]}',
        "metrics.0.steps.0",
    ),
    (
        "POST",
        "/runs/{run}/batch",
        b'{"metrics": [{"key": "k", "steps": [0], "timestamps": [Infinity], "values": [1]}]}',
        "metrics.0.timestamps.0",
    ),
]


def test_nan_and_infinity_where_no_float_belongs_are_400(
    http: httpx.Client, server_store: SqlStore, run_id: str, subtests: pytest.Subtests
) -> None:
    before = _snapshot(server_store)
    for method, path, raw, field in NAN_WHERE_NO_FLOAT:
        with subtests.test(method=method, path=path, field=field):
            error = _error(http.request(method, path.format(run=run_id), content=raw), 400)
            assert error["details"]["field"] == field, error
    assert _snapshot(server_store) == before


def test_an_infinite_reap_timeout_kills_nothing(http: httpx.Client, run_id: str) -> None:
    """It was an OverflowError (500): now "no run has been silent that long"."""
    for raw in (b'{"timeout_seconds": Infinity}', b'{"timeout_seconds": 1e300}'):
        response = _post_raw(http, "/runs/reap", raw)
        assert response.status_code == 200, response.text
        assert response.json() == {"run_ids": []}


PAST_INT64: list[tuple[str, str, Any, str]] = [
    ("POST", "/metrics/rows", {"series": [_series("{run}", "k", [HUGE])]}, "series.0.steps.0"),
    (
        "POST",
        "/metrics/rows",
        {"series": [_series("{run}", "k", [0], timestamps=[HUGE])]},
        "series.0.timestamps.0",
    ),
    (
        "POST",
        "/metrics/rows",
        {"series": [_series("{run}", "k", [0], values=[10**400])]},
        "series.0.values.0",
    ),
    ("POST", "/metrics/rows", {"series": [_series("{run}", "k", [-HUGE])]}, "series.0.steps.0"),
    ("POST", "/runs", {"experiment_id": "1", "start_time": HUGE}, "start_time"),
    ("PATCH", "/runs/{run}", {"status": "FINISHED", "end_time": HUGE}, "end_time"),
    ("POST", "/runs/search", {"experiment_ids": ["1"], "max_results": HUGE}, "max_results"),
    ("POST", "/runs/reap", {"timeout_seconds": 10**400}, "timeout_seconds"),
    ("PUT", "/models/m/aliases/a", {"version": HUGE}, "version"),
    ("GET", f"/models/m/versions/{HUGE}", None, "version"),
    ("GET", f"/datasets/iris/versions/{HUGE}", None, "version"),
    ("GET", f"/datasets/iris/usages?version={HUGE}", None, "version"),
    ("GET", f"/experiments/{HUGE}", None, "experiment_id"),
    ("POST", "/runs/{run}/inputs", {"inputs": [["iris", HUGE, "train"]]}, "version"),
    (
        "POST",
        "/datasets/iris/versions",
        {"digest": "blake3:" + "2" * 64, "kind": "table", "num_files": HUGE, "size": 1},
        "num_files",
    ),
    (
        "POST",
        "/datasets/iris/versions",
        {"digest": "blake3:" + "2" * 64, "kind": "table", "num_files": 1, "size": HUGE},
        "size",
    ),
    (
        "POST",
        "/runs/{run}/artifacts",
        {"path": "a", "digest": PAYLOAD_DIGEST, "size": HUGE},
        "size",
    ),
]


def test_integers_past_int64_are_400_with_the_field(
    http: httpx.Client, server_store: SqlStore, run_id: str, subtests: pytest.Subtests
) -> None:
    server_store.create_dataset("iris")
    server_store.blobs.put_bytes(PAYLOAD)
    before = _snapshot(server_store)
    for method, path, body, field in PAST_INT64:
        with subtests.test(method=method, path=path, field=field):
            raw = json.dumps(body).replace("{run}", run_id).encode() if body is not None else None
            response = http.request(method, path.format(run=run_id), content=raw)
            error = _error(response, 400)
            # "series.0.values.0.float": pydantic names the arm of the union it tried
            assert error["details"]["field"].startswith(field), error
    assert _snapshot(server_store) == before


def test_digits_that_are_not_ascii_are_no_ids(http: httpx.Client, server_store: SqlStore) -> None:
    """A superscript one passes str.isdigit() and fails int() (it was a 500); an Arabic-Indic
    three is int() 3 (it named experiment 3): only ASCII digits are ids."""
    for _ in range(3):
        server_store.create_experiment(f"numbered-{uuid.uuid4().hex[:6]}")
    for text in ("\u00b9", "\u0663", "\uff13"):  # superscript 1, Arabic-Indic 3, fullwidth 3
        error = _error(http.get(f"/experiments/{text}"), 400)
        assert error["details"] == {"field": "experiment_id"}
        error = _error(http.post("/runs", json={"experiment_id": text}), 400)
        assert error["details"] == {"field": "experiment_id"}


def test_the_int64_bounds_themselves_are_stored(
    http: httpx.Client, server_store: SqlStore, run_id: str
) -> None:
    body = {"series": [_series(run_id, "edge", [-INT64, INT64], timestamps=[0, INT64])]}
    assert http.post("/metrics/rows", json=body).status_code == 204
    history = server_store.get_metric_history(run_id, "edge")
    assert [(p.step, p.timestamp) for p in history] == [(-INT64, 0), (INT64, INT64)]


# ---------------------------------------------------------------------------- V2: limits


@pytest.fixture
def small_json_server(server_store: SqlStore) -> Iterator[str]:
    with live_server(server_store, ServerConfig(max_json_bytes=64 * 1024)) as url:
        yield url


def test_a_json_body_over_the_limit_is_413_and_stores_nothing(
    small_json_server: str, server_store: SqlStore, run_id: str
) -> None:
    body = {"series": [_series(run_id, "big", list(range(10_000)))]}
    raw = json.dumps(body).encode()
    assert len(raw) > 64 * 1024

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(raw), 4096):
            yield raw[start : start + 4096]

    before = _snapshot(server_store)
    with httpx.Client(base_url=small_json_server + API, headers=JSON) as http:
        for content in (raw, chunks()):
            error = _error(http.post("/metrics/rows", content=content), 413)
            assert error["error_code"] == "PAYLOAD_TOO_LARGE"
            assert error["details"]["limit"] == 64 * 1024
            assert "65,536" in error["message"]
        assert _snapshot(server_store) == before
        small = {"series": [_series(run_id, "small", list(range(100)))]}
        assert http.post("/metrics/rows", json=small).status_code == 204


def test_too_many_points_in_one_request_store_nothing(
    http: httpx.Client, server_store: SqlStore, run_id: str
) -> None:
    """100,001 points over two series: 400 naming the limit, neither series stored."""
    half = MAX_POINTS_PER_REQUEST // 2
    series = [
        _series(run_id, "a", list(range(half))),
        _series(run_id, "b", list(range(half + 1))),
    ]
    before = _snapshot(server_store)
    error = _error(http.post("/metrics/rows", json={"series": series}), 400)
    assert f"{MAX_POINTS_PER_REQUEST:,}" in error["message"]
    assert error["details"] == {"field": "series", "limit": MAX_POINTS_PER_REQUEST}
    metrics = [{k: v for k, v in one.items() if k != "run_id"} for one in series]
    error = _error(http.post(f"/runs/{run_id}/batch", json={"metrics": metrics}), 400)
    assert error["details"]["field"] == "metrics"
    assert _snapshot(server_store) == before


def test_too_many_params_or_tags_in_one_request_store_nothing(
    http: httpx.Client, server_store: SqlStore, run_id: str, subtests: pytest.Subtests
) -> None:
    entries = {f"k{i}": "v" for i in range(MAX_ENTRIES_PER_REQUEST + 1)}
    point = [{"key": "m", "steps": [0], "timestamps": [1], "values": [1.0]}]
    before = _snapshot(server_store)
    for path, body, field in (
        ("params", {"params": entries}, "params"),
        ("tags", {"tags": entries}, "tags"),
        ("batch", {"metrics": point, "params": entries}, "params"),
        ("batch", {"metrics": point, "tags": entries}, "tags"),
    ):
        with subtests.test(path=path, field=field):
            error = _error(http.post(f"/runs/{run_id}/{path}", json=body), 400)
            assert error["details"]["field"] == field
            assert f"{MAX_ENTRIES_PER_REQUEST}" in error["message"]
    assert _snapshot(server_store) == before
    fits = {f"k{i}": "v" for i in range(MAX_ENTRIES_PER_REQUEST)}
    assert http.post(f"/runs/{run_id}/params", json={"params": fits}).status_code == 204


def test_a_6_mb_value_is_refused_with_its_whole_batch(
    http: httpx.Client, server_store: SqlStore, run_id: str
) -> None:
    huge = "x" * (6 * 1024 * 1024)
    point = [{"key": "m", "steps": [0], "timestamps": [1], "values": [1.0]}]
    before = _snapshot(server_store)
    for path, body in (
        ("params", {"params": {"blob": huge}}),
        ("tags", {"tags": {"blob": huge}}),
        ("batch", {"metrics": point, "params": {"ok": "1", "blob": huge}}),
    ):
        error = _error(http.post(f"/runs/{run_id}/{path}", json=body), 400)
        assert f"at most {MAX_VALUE_LENGTH}" in error["message"], error
        assert error["details"]["field"].endswith(".blob")
    assert _snapshot(server_store) == before


def test_10k_character_keys_and_names_are_refused(
    http: httpx.Client, server_store: SqlStore, run_id: str
) -> None:
    key = "k" * 10_000
    point = {"key": key, "steps": [0], "timestamps": [1], "values": [1.0]}
    before = _snapshot(server_store)
    for path, body in (
        (f"/runs/{run_id}/params", {"params": {"ok": "1", key: "v"}}),
        (f"/runs/{run_id}/tags", {"tags": {key: "v"}}),
        (f"/runs/{run_id}/batch", {"metrics": [point]}),
        ("/metrics/rows", {"series": [{**point, "run_id": run_id}]}),
        ("/experiments", {"name": key}),
        ("/experiments", {"name": "fine", "tags": {key: "v"}}),
    ):
        error = _error(http.post(path, json=body), 400)
        assert str(MAX_KEY_LENGTH) in error["message"], (path, error)
    assert _snapshot(server_store) == before


def test_a_large_buffered_flush_goes_out_in_parts(
    server_url: str, server_store: SqlStore, run_id: str
) -> None:
    """A buffer that filled while the server was down is more than one request may carry:
    the remote store sends it in parts, each under the limit."""
    count = MAX_POINTS_PER_REQUEST + 20_000
    rows = [(run_id, "loss", step, 1000 + step, step / count, False) for step in range(count)]
    remote = RestStore(server_url, retry_seconds=0)
    try:
        remote.append_metric_rows(rows)
        remote.append_metric_rows(rows[:70_000])  # again, part of it: nothing new
    finally:
        remote.close()
    history = server_store.get_metric_history(run_id, "loss")
    assert len(history) == count
    assert [p.step for p in history[:3]] == [0, 1, 2]


# ---------------------------------------------------------------------------- V3: idempotence


def test_params_relogged_and_duplicate_points(
    http: httpx.Client, server_store: SqlStore, run_id: str
) -> None:
    first = http.post(f"/runs/{run_id}/params", json={"params": {"lr": "0.1", "n": "3"}})
    assert first.status_code == 204
    again = http.post(f"/runs/{run_id}/params", json={"params": {"lr": "0.1"}})
    assert again.status_code == 204  # the same value: fine
    before = _snapshot(server_store)
    conflict = _error(http.post(f"/runs/{run_id}/params", json={"params": {"lr": "0.2"}}), 409)
    assert conflict["error_code"] == "PARAM_CONFLICT"
    assert conflict["details"] == {"run_id": run_id, "key": "lr"}
    point = [{"key": "with-conflict", "steps": [0], "timestamps": [1], "values": [1.0]}]
    in_batch = http.post(
        f"/runs/{run_id}/batch", json={"metrics": point, "params": {"new": "x", "lr": "0.3"}}
    )
    assert _error(in_batch, 409)["error_code"] == "PARAM_CONFLICT"
    assert _snapshot(server_store) == before  # the batch's point and new param: not kept
    assert server_store.get_run(run_id).data.params == {"lr": "0.1", "n": "3"}

    twice = _series(run_id, "dup", [0, 0, 1], timestamps=[5, 5, 6], values=[1.0, 1.0, 2.0])
    for _ in range(2):
        assert http.post("/metrics/rows", json={"series": [twice]}).status_code == 204
    history = server_store.get_metric_history(run_id, "dup")
    assert history == [Metric("dup", 1.0, 5, 0), Metric("dup", 2.0, 6, 1)]


# ---------------------------------------------------------------------------- error bodies


def test_a_failing_handler_answers_only_an_incident_id(
    server_url: str,
    server_store: SqlStore,
    run_id: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret_path = str(Path(loopml.__file__).parent / "storage" / "sql" / "runs.py")

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError(f"database password=hunter2 at {secret_path}")

    monkeypatch.setattr(server_store, "get_run", broken)
    caplog.set_level(logging.ERROR, logger="loopml.server")
    # a fresh connection per request: the server closes its side after an unhandled error
    response = httpx.get(f"{server_url}{API}/runs/{run_id}", headers={"Connection": "close"})
    error = _error(response, 500)
    assert error["error_code"] == "INTERNAL_ERROR"
    incident = error["details"]["incident"]
    assert set(error["details"]) == {"incident"}
    assert incident in error["message"]
    for leak in ("hunter2", "RuntimeError", "Traceback", secret_path, "site-packages", ".py"):
        assert leak not in response.text
    logged = [r for r in caplog.records if incident in r.getMessage()]
    assert logged
    assert logged[0].exc_info is not None  # the traceback is in the server's log
    assert httpx.get(f"{server_url}/health").status_code == 200


def test_framework_errors_have_the_loopml_body(http: httpx.Client, run_id: str) -> None:
    assert _error(http.get("/no/such/route"), 404)["error_code"] == "NOT_FOUND"
    assert _error(http.get("/blobs/blake3:%0A" + "0" * 63), 404)["error_code"] == "NOT_FOUND"
    wrong = _error(http.put("/experiments", json={}), 405)
    assert wrong["error_code"] == "METHOD_NOT_ALLOWED"
    assert http.put("/experiments", json={}).headers["allow"]
    assert _error(http.delete(f"/runs/{run_id}/metrics/history"), 405)["message"]


UNKNOWN = [
    ("/datasets/nothing", "DATASET_NOT_FOUND"),
    ("/datasets/iris/versions/7", "DATASET_NOT_FOUND"),
    ("/datasets/nothing/versions/latest", "DATASET_NOT_FOUND"),
    ("/blobs/blake3:" + "0" * 64 + "/size", "ARTIFACT_NOT_FOUND"),
    ("/blobs/blake3:" + "0" * 64, "ARTIFACT_NOT_FOUND"),
    ("/runs/{missing}/artifacts", "RUN_NOT_FOUND"),
    ("/runs/{missing}/inputs", "RUN_NOT_FOUND"),
    ("/runs/{run}/artifacts/file?path=nothing.txt", "ARTIFACT_NOT_FOUND"),
    ("/runs/{run}/artifacts/content?path=nothing.txt", "ARTIFACT_NOT_FOUND"),
    ("/models/nothing/versions/1", "MODEL_NOT_FOUND"),
    ("/models/nothing/aliases/champion", "MODEL_NOT_FOUND"),
    ("/experiments/987654321", "EXPERIMENT_NOT_FOUND"),
]


def test_unknown_ids_are_404_with_the_loopml_body(
    http: httpx.Client, server_store: SqlStore, run_id: str, subtests: pytest.Subtests
) -> None:
    server_store.create_dataset("iris")
    for path, code in UNKNOWN:
        with subtests.test(path=path):
            url = path.format(run=run_id, missing=uuid.uuid4().hex)
            assert _error(http.get(url), 404)["error_code"] == code
    assert _error(http.delete("/tokens/nobody"), 404)["error_code"].endswith("NOT_FOUND")


# ---------------------------------------------------------------------------- no fetching


class _Watch:
    """Records, through a Python audit hook, every file opened and socket connected while
    on, whose target mentions one of the planted markers."""

    _hooked: list[_Watch] = []

    def __init__(self, markers: tuple[str, ...]) -> None:
        self.markers = markers
        self.hits: list[str] = []
        self.on = False
        if not _Watch._hooked:
            sys.addaudithook(_Watch._dispatch)  # hooks cannot be removed: one, for all tests
        _Watch._hooked[:] = [self]

    @staticmethod
    def _dispatch(event: str, args: tuple[Any, ...]) -> None:
        for watch in _Watch._hooked:
            if watch.on and event in ("open", "socket.connect", "socket.getaddrinfo"):
                text = repr(args[:2])
                if any(marker in text for marker in watch.markers):
                    watch.hits.append(f"{event} {text} in {threading.current_thread().name}")


def test_no_endpoint_opens_a_path_or_fetches_a_url_it_is_given(
    http: httpx.Client, server_store: SqlStore, run_id: str, tmp_path: Path
) -> None:
    """URIs and paths sent wherever text is accepted are kept as text or refused: the server
    never opens the file or connects to the host (S2: the server assigns storage)."""
    sentinel = tmp_path / "planted-sentinel.txt"
    sentinel.write_text("secret")
    watch = _Watch(("planted-sentinel", "planted-host.invalid", "10.255.255.1"))
    uris = [
        f"file://{sentinel}",
        str(sentinel),
        "http://planted-host.invalid/x",
        "http://10.255.255.1/latest/meta-data",
        f"../../../../{sentinel}",
    ]
    server_store.create_dataset("iris")
    experiment = server_store.get_run(run_id).info.experiment_id
    watch.on = True
    try:
        for uri in uris:
            answers = [
                http.post(
                    "/experiments", json={"name": f"e {uuid.uuid4().hex}", "description": uri}
                ),
                http.put(f"/experiments/{experiment}/tags", json={"key": "k", "value": uri}),
                http.post(
                    "/runs", json={"experiment_id": experiment, "source": {"git_remote": uri}}
                ),
                http.post(f"/runs/{run_id}/tags", json={"tags": {"uri": uri}}),
                http.post(
                    f"/runs/{run_id}/artifacts", json={"path": uri, "digest": uri, "size": 1}
                ),
                http.get(f"/runs/{run_id}/artifacts/content", params={"path": uri}),
                http.post("/models/m/versions", json={"package_digest": uri, "source": uri}),
                http.post(
                    "/models/m/versions",
                    json={"package_digest": "blake3:" + "0" * 64, "source": uri},
                ),
                http.post(
                    "/datasets/iris/versions",
                    json={"digest": uri, "kind": "files", "num_files": 1, "size": 1, "source": uri},
                ),
                http.post("/blobs/which-exist", json={"digests": [uri]}),
                http.get("/dataset-versions", params={"digest": uri}),
            ]
            for answer in answers:
                assert answer.status_code < 500, (answer.request.url, answer.text)
    finally:
        watch.on = False
    assert watch.hits == []
    assert sentinel.read_text() == "secret"
