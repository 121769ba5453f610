"""Property-based fuzzing of the whole HTTP API from its own OpenAPI document (schemathesis).

Every operation the app publishes gets valid and invalid requests (bodies, path and query
parameters) generated from its schema, in process over ASGI, against one SQLite store for the
module, with auth off. Whatever is sent, the server must:

* never answer 5xx (a 500 here is a bug: the handler let an exception through);
* answer every 4xx with the loopml error body ``{"error_code", "message", "details"}``
  (framework errors included: no route, wrong method, a body that is not UTF-8);
* never put a traceback in a response.

Bounded for CI: the examples and fuzzing phases only (schemathesis's coverage phase, which
enumerates every boundary of every schema, takes minutes on this API), at most 20 generated
cases per operation and a fixed seed, so a failure reproduces. Bugs it found, now fixed:
experiment ids such as ``'¹'`` (``str.isdigit`` is true, ``int`` fails: 500), a reap
``timeout_seconds`` past int64 (500), and framework errors answered without the loopml body
(405, a body that is not UTF-8, a path holding a newline that no route matches).
"""

from __future__ import annotations

import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

import loopml
from loopml.entities import Metric
from loopml.server.app import ServerConfig, create_app
from loopml.storage.blobs import BlobStore
from loopml.storage.sql import SqlStore

with warnings.catch_warnings():  # starlette warns, on import, that it prefers httpx2
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

MAX_EXAMPLES = 20
ERROR_KEYS = {"error_code", "message", "details"}
#: what a leaked traceback or server path would contain (schemathesis also sends strings it
#: finds in the code, and a name the client sent may be echoed back: those do not count)
LEAKS = ("Traceback (most recent call last)", str(Path(loopml.__file__).parent), "site-packages")

_CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 20240611,
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
        "generation": {"max-examples": MAX_EXAMPLES},
    }
)


class _Recorder:
    """The app, wrapped so an exception that escaped a handler is kept for the report
    (Starlette sends the 500 and then raises it again, for the server to log)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.errors: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception:
            self.errors.append(traceback.format_exc())


@pytest.fixture(scope="module")
def seeded_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqlStore]:
    """A store with one of each thing, so some generated requests find what they name."""
    root = tmp_path_factory.mktemp("fuzz")
    store = SqlStore(f"sqlite:///{root / 'meta.db'}", BlobStore(str(root / "blobs")))
    experiment = store.create_experiment("demo", tags={"team": "a"})
    run_id = store.create_run(experiment.experiment_id, run_name="r").run_id
    store.log_batch(run_id, [Metric("loss", 0.5, 1, 0)], params={"lr": "0.1"})
    store.create_dataset("iris")
    store.create_registered_model("model")
    yield store
    store.close()


@pytest.fixture(scope="module")
def recorder(seeded_store: SqlStore) -> _Recorder:
    return _Recorder(create_app(seeded_store, ServerConfig()))


@pytest.fixture(scope="module")
def api_schema(recorder: _Recorder) -> Any:
    schema = schemathesis.openapi.from_asgi("/openapi.json", recorder.app, config=_CONFIG)
    schema.app = recorder  # calls go through the recorder
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_5xx_and_every_error_has_the_loopml_body(case: Any, recorder: _Recorder) -> None:
    recorder.errors.clear()
    response = case.call()
    sent = f"{case.method} {case.formatted_path} query={case.query!r} body={case.body!r}"
    request = sent[:500]
    assert response.status_code < 500, (
        f"{request} -> {response.status_code} {response.text[:300]}\n" + "\n".join(recorder.errors)
    )
    leaked = [leak for leak in LEAKS if leak in response.text and leak not in sent]
    assert not leaked, (request, response.text[:300])
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body, dict), (request, response.text[:300])
        assert set(body) == ERROR_KEYS, (request, response.text[:300])
        assert isinstance(body["error_code"], str), request
        assert isinstance(body["message"], str), request
        assert isinstance(body["details"], dict), request


def test_the_fuzzed_server_still_answers(recorder: _Recorder, seeded_store: SqlStore) -> None:
    """After the fuzzing (or alone): the store is intact and the seeded data readable."""
    with TestClient(recorder.app) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/ready").json()["ready"] is True
    assert seeded_store.get_experiment_by_name("demo") is not None


def test_every_operation_is_fuzzed(api_schema: Any) -> None:
    """The fuzzing covers the whole published API: no operation is filtered out."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    paths = {operation.path for operation in operations}
    assert len(operations) >= 60
    for expected in (
        "/api/v1/metrics/rows",
        "/api/v1/blobs/{digest}",
        "/api/v1/models/{name}/versions",
        "/api/v1/datasets/{name}/versions",
        "/api/v1/tokens",
    ):
        assert expected in paths
