"""The three protocols (KServe V2, plain JSON, MLflow scoring) against a real model, and the
refusals of bad input (RELIABILITY M1): every answer equals the model's own predict, and a
refused request never reaches the model."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.linear_model import LogisticRegression
from tests.serving.conftest import Registered

from loopml import models
from loopml.serving.app import ServingApp, _fast_route, create_app
from loopml.serving.config import parse_config, single_model_config
from loopml.testing.server import live_app


class Counting:
    """Counts the model's predict calls (wraps the loader's model)."""

    def __init__(self) -> None:
        self.calls = 0
        self.rows: list[int] = []


@pytest.fixture
def counting() -> Counting:
    return Counting()


@pytest.fixture
def client(lr: LogisticRegression, registered: Registered, counting: Counting) -> Iterator[Any]:
    config = parse_config(
        {
            "models": [{"name": "cancer", "uri": "models:/cancer@champion"}],
            "limits": {"max_body_mb": 1, "max_rows": 1000},
        }
    )
    app = create_app(config)
    state: ServingApp = app.state.serving
    with live_app(app) as url, httpx.Client(base_url=url, timeout=30) as test_client:
        deployment = state.endpoints["cancer"].primary
        assert deployment is not None
        real = deployment.predict

        def predict(batch: Any) -> Any:
            counting.calls += 1
            counting.rows.append(batch.rows)
            return real(batch)

        deployment.batcher._predict = predict
        yield test_client


def _expected(lr: LogisticRegression, frame: pd.DataFrame) -> list[int]:
    return [int(v) for v in lr.predict(frame)]


def test_plain_records_columns_and_arrays(
    client: Any, lr: LogisticRegression, registered: Registered
) -> None:
    frame = registered.features.iloc[:5]
    expected = _expected(lr, frame)
    bodies = [
        {"records": frame.to_dict(orient="records")},
        frame.to_dict(orient="records"),
        {"columns": frame.to_dict(orient="list")},
        frame.to_dict(orient="list"),
        {"data": frame.to_numpy().tolist()},
        frame.to_numpy().tolist(),
        {"instances": frame.to_numpy().tolist()},
    ]
    for body in bodies:
        answer = client.post("/predict/cancer", json=body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == expected
        assert answer.json()["version"] == 1
        assert answer.headers["x-loopml-model-version"] == "1"
        assert answer.headers["x-request-id"] == answer.json()["request_id"]


def test_a_client_request_id_is_kept(client: Any, registered: Registered) -> None:
    """A valid X-Request-ID from the client names the request (answer, header, log); an
    invalid one is replaced by the server's own."""
    body = {"data": registered.features.iloc[:1].to_numpy().tolist()}
    answer = client.post("/predict/cancer", json=body, headers={"X-Request-ID": "order-42:a"})
    assert answer.headers["x-request-id"] == answer.json()["request_id"] == "order-42:a"
    refused = client.post("/predict/cancer", json=body, headers={"X-Request-ID": "bad id!"})
    own = refused.json()["request_id"]
    assert own != "bad id!"
    assert len(own) == 32
    assert client.post("/predict/cancer", json=body).json()["request_id"] != own


def test_one_record_as_an_object(
    client: Any, lr: LogisticRegression, registered: Registered
) -> None:
    record = registered.features.iloc[7].to_dict()
    answer = client.post("/predict/cancer", json=record)
    assert answer.json()["predictions"] == _expected(lr, registered.features.iloc[7:8])


def test_v2_infer_by_column_and_as_one_tensor(
    client: Any, lr: LogisticRegression, registered: Registered
) -> None:
    frame = registered.features.iloc[10:14]
    expected = _expected(lr, frame)
    by_column = {
        "id": "abc-1",
        "inputs": [
            {"name": name, "shape": [4], "datatype": "FP64", "data": frame[name].tolist()}
            for name in frame.columns
        ],
    }
    one_tensor = {
        "inputs": [
            {
                "name": "input",
                "shape": [4, 30],
                "datatype": "FP32",
                "data": frame.to_numpy().ravel().tolist(),
            }
        ]
    }
    nested = {
        "inputs": [
            {"name": "x", "shape": [4, 30], "datatype": "FP64", "data": frame.to_numpy().tolist()}
        ]
    }
    for body in (by_column, one_tensor, nested):
        answer = client.post("/v2/models/cancer/infer", json=body)
        assert answer.status_code == 200, answer.text
        out = answer.json()
        assert out["model_name"] == "cancer"
        assert out["model_version"] == "1"
        (output,) = out["outputs"]
        assert output["shape"] == [4]
        assert output["datatype"] == "INT64"
        assert output["data"] == expected
    versioned = client.post("/v2/models/cancer/versions/1/infer", json=by_column)
    assert versioned.status_code == 200
    assert client.post("/v2/models/cancer/versions/7/infer", json=by_column).status_code == 404


def test_v2_health_and_metadata(client: Any) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").status_code == 200
    assert client.get("/v2/models/cancer/ready").json() == {"name": "cancer", "ready": True}
    assert client.get("/v2/models/cancer/versions/1/ready").status_code == 200
    assert client.get("/v2/models/cancer/versions/2/ready").status_code == 503
    meta = client.get("/v2/models/cancer").json()
    assert meta["name"] == "cancer"
    assert meta["versions"] == ["1"]
    assert len(meta["inputs"]) == 30
    assert meta["inputs"][0] == {"name": "mean_radius", "datatype": "FP64", "shape": [-1]}
    assert client.get("/v2/models/nope").status_code == 404
    assert client.get("/v2").json()["name"] == "loopml"


def test_mlflow_scoring_protocol(
    client: Any, lr: LogisticRegression, registered: Registered
) -> None:
    frame = registered.features.iloc[20:23]
    expected = _expected(lr, frame)
    split = frame.to_dict(orient="split")
    bodies = [
        {"dataframe_split": {"columns": split["columns"], "data": split["data"]}},
        {
            "dataframe_split": {
                "columns": split["columns"],
                "data": split["data"],
                "index": [0, 1, 2],
            }
        },
        {"dataframe_records": frame.to_dict(orient="records")},
        {"instances": frame.to_dict(orient="records")},
        {"inputs": frame.to_dict(orient="list")},
    ]
    for body in bodies:
        answer = client.post("/invocations", json=body)
        assert answer.status_code == 200, (body.keys(), answer.text)
        assert answer.json() == {"predictions": expected}
    assert client.get("/ping").status_code == 200


# ---------------------------------------------------------------------------- refusals (M1)


def _problems(answer: Any) -> list[dict[str, Any]]:
    return answer.json()["details"]["problems"]


def test_bad_inputs_get_400_with_every_problem_and_never_reach_the_model(
    client: Any, registered: Registered, counting: Counting
) -> None:
    record = registered.features.iloc[0].to_dict()
    missing = {k: v for k, v in record.items() if k not in ("mean_radius", "worst_area")}
    extra = {**record, "colour": "red"}
    wrong = {**record, "mean_radius": "large", "mean_texture": True}
    cases: list[tuple[Any, set[tuple[str, str]]]] = [
        (missing, {("mean_radius", "missing"), ("worst_area", "missing")}),
        (extra, {("colour", "not a column of the model")}),
        (wrong, {("mean_radius", "wrong type"), ("mean_texture", "wrong type")}),
        ({"records": []}, {("body", "empty batch")}),
        ([], {("body", "empty batch")}),
        ({"data": [[1.0, 2.0]]}, {("data", "wrong number of columns")}),
        ({"data": [[1.0] * 30, [1.0] * 29]}, {("data", "ragged rows")}),
        ({"records": [record, 5]}, {("records[1]", "not an object")}),
        ({"columns": {"mean_radius": [1.0, 2.0], "mean_texture": [1.0]}}, None),
        ("just a string", {("body", "not a table")}),
    ]
    for body, expected in cases:
        answer = client.post("/predict/cancer", json=body)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["error_code"] == "INVALID_INPUT"
        if expected is not None:
            got = {(p["field"], p["problem"]) for p in _problems(answer)}
            assert expected <= got, (body, got)
    refused_v2 = [
        {"inputs": [{"name": "x", "shape": [2, 30], "datatype": "FP64", "data": [1.0] * 59}]},
        {"inputs": [{"name": "x", "shape": [1, 30], "datatype": "FP65", "data": [1.0] * 30}]},
        {"inputs": [{"name": "x", "shape": "1,30", "datatype": "FP64", "data": [1.0] * 30}]},
        {"inputs": [{"name": "x", "shape": [1, 30], "datatype": "FP64", "data": ["a"] * 30}]},
        {"inputs": [{"name": "x", "shape": [1, 30], "datatype": ["FP64"], "data": [1.0] * 30}]},
        {"inputs": [{"name": "x", "shape": [1, True], "datatype": "FP64", "data": [1.0]}]},
        {"inputs": [{"name": "x", "shape": [1, -30], "datatype": "FP64", "data": [1.0] * 30}]},
        {"inputs": [{"name": "", "shape": [1, 30], "datatype": "FP64", "data": [1.0] * 30}]},
        {"inputs": [{"name": "x", "shape": [1, 30], "datatype": "FP64", "data": {"a": 1}}]},
        {"inputs": [{"name": "x", "shape": [1, 30], "datatype": "INT8", "data": [1000] * 30}]},
        {"inputs": [{"name": "x", "shape": [1, 30], "datatype": "FP64", "data": [[1.0] * 29]}]},
        {"inputs": ["x"]},
        {"inputs": "nope"},
        {"outputs": []},
    ]
    for body in refused_v2:
        answer = client.post("/v2/models/cancer/infer", json=body)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["error_code"] == "INVALID_INPUT", (body, answer.text)
    assert counting.calls == 0


def test_body_and_row_limits_answer_413(client: Any, counting: Counting) -> None:
    big = b'{"data": [' + b",".join([b"[" + b",".join([b"1.5"] * 30) + b"]"] * 12_000) + b"]}"
    assert len(big) > 1024 * 1024
    answer = client.post(
        "/predict/cancer", content=big, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 413
    assert answer.json()["error_code"] == "PAYLOAD_TOO_LARGE"
    rows = {"data": [[1.0] * 30] * 1001}
    answer = client.post("/predict/cancer", json=rows)
    assert answer.status_code == 413
    assert _problems(answer)[0]["problem"] == "too many rows"
    assert counting.calls == 0


def test_malformed_json_and_wrong_content_type(client: Any, counting: Counting) -> None:
    for body in (b"{", b"\xff\xfe", b"[1, 2", b'{"data": NaN'):
        answer = client.post(
            "/predict/cancer", content=body, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 400, body
        assert answer.json()["error_code"] == "INVALID_JSON"
    answer = client.post("/predict/cancer", content=b"a,b", headers={"content-type": "text/csv"})
    assert answer.status_code == 415
    assert client.post("/predict/nope", json=[[1.0] * 30]).status_code == 404
    assert counting.calls == 0


def test_a_nan_the_model_cannot_take_is_422_not_500(client: Any, registered: Registered) -> None:
    record = registered.features.iloc[0].to_dict()
    answer = client.post("/predict/cancer", json={**record, "mean_radius": None})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error_code"] == "MODEL_REFUSED_INPUT"
    assert "NaN" in answer.json()["error"]


def test_metrics_are_valid_prometheus_text(client: Any, registered: Registered) -> None:
    client.post("/predict/cancer", json=[registered.features.iloc[0].tolist()])
    client.post("/predict/cancer", json={"records": []})
    text = client.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in (
        "loopml_serving_requests",
        "loopml_serving_errors",
        "loopml_serving_request_seconds",
        "loopml_serving_batch_rows",
        "loopml_serving_predict_seconds",
        "loopml_serving_queue_rows",
        "loopml_serving_model_info",
    ):
        assert name in families, name
    ok = [
        s
        for s in families["loopml_serving_requests"].samples
        if s.labels.get("status") == "200" and s.labels.get("model") == "cancer"
    ]
    assert ok
    assert ok[0].labels["version"] == "1"
    errors = families["loopml_serving_errors"].samples
    assert any(s.labels["kind"] == "invalid_input" and s.value >= 1 for s in errors)
    info = families["loopml_serving_model_info"].samples
    assert [(s.labels["version"], s.labels["role"]) for s in info] == [("1", "primary")]


def test_results_equal_models_load_predict(client: Any, registered: Registered) -> None:
    frame = registered.features.sample(50, random_state=1)
    direct = models.load("models:/cancer@champion").predict(frame)
    answer = client.post("/predict/cancer", json=frame.to_numpy().tolist())
    np.testing.assert_array_equal(answer.json()["predictions"], direct)


def test_a_bad_configuration_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"models\.0\.max_batch_size"):
        parse_config({"models": [{"name": "a", "uri": "models:/a/1", "max_batch_size": 0}]})
    with pytest.raises(ValueError, match="unique"):
        parse_config(
            {"models": [{"name": "a", "uri": "models:/a/1"}, {"name": "a", "uri": "models:/b/1"}]}
        )
    with pytest.raises(ValueError, match=r"models\.0\.uri"):
        parse_config({"models": [{"name": "a", "uri": "s3x://nope"}]})
    with pytest.raises(ValueError, match="Extra inputs"):
        parse_config({"models": [{"name": "a", "uri": "models:/a/1", "batch": 3}]})
    with pytest.raises(ValueError, match=r"canary\.weight"):
        parse_config(
            {
                "models": [
                    {
                        "name": "a",
                        "uri": "models:/a/1",
                        "canary": {"uri": "models:/a/2", "weight": 101},
                    }
                ]
            }
        )
    assert single_model_config("models:/churn@champion").models[0].name == "churn"


def test_access_log_is_one_json_line_per_request(
    client: Any, registered: Registered, caplog: pytest.LogCaptureFixture
) -> None:
    import json
    import logging

    with caplog.at_level(logging.INFO, logger="loopml.serving.access"):
        ok = client.post("/predict/cancer", json=[registered.features.iloc[0].tolist()] * 2)
        client.post("/predict/cancer", json={"records": []})
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name.endswith("access")]
    assert [(line["status"], line["rows"]) for line in lines] == [(200, 2), (400, 0)]
    assert lines[0]["request_id"] == ok.headers["x-request-id"]
    assert lines[0]["version"] == "1"
    assert lines[1]["error"] == "INVALID_INPUT"


def test_arrays_go_straight_to_a_numeric_model_but_not_to_one_needing_names(
    registered: Registered,
) -> None:
    """A model fitted on a DataFrame of numbers gets the merged array as it is (no DataFrame
    per batch); a pipeline that selects columns by name keeps getting a DataFrame. Both
    answer exactly what models.load(...).predict does."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = registered.features
    plain = LogisticRegression(max_iter=5000).fit(frame, registered.target)
    named = make_pipeline(
        ColumnTransformer([("scaled", StandardScaler(), ["mean_radius", "worst_area"])]),
        LogisticRegression(),
    ).fit(frame, registered.target)
    registered.log(plain, name="plain")
    registered.log(named, name="named")
    app = create_app(
        parse_config(
            {
                "models": [
                    {"name": "plain", "uri": "models:/plain/1"},
                    {"name": "named", "uri": "models:/named/1"},
                ]
            }
        )
    )
    state: ServingApp = app.state.serving
    rows = frame.iloc[:30]
    with live_app(app) as url:
        endpoints = state.endpoints
        assert endpoints["plain"].primary is not None
        assert endpoints["named"].primary is not None
        assert endpoints["plain"].primary.direct
        assert not endpoints["named"].primary.direct
        for name, model in (("plain", plain), ("named", named)):
            answer = httpx.post(f"{url}/predict/{name}", json={"records": rows.to_dict("records")})
            assert answer.status_code == 200, answer.text
            assert answer.json()["predictions"] == model.predict(rows).tolist()


def test_request_path_histograms_follow_prometheus_buckets() -> None:
    """The server's own counters and histograms (kept without prometheus_client's locks):
    a value equal to a bound counts in that bucket, buckets are cumulative, +Inf is the
    count, and the text parses."""
    from prometheus_client.parser import text_string_to_metric_families

    from loopml.serving.metrics import ServingMetrics

    metrics = ServingMetrics(lambda: {})
    for seconds in (0.0005, 0.0007, 0.002, 30.0):
        metrics.observe_request("m", "1", "plain", 200, seconds)
    metrics.observe_request("m", "1", "plain", 400, 0.001)
    metrics.error("m", "invalid_input")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
    }

    def bucket(le: str) -> float:
        key = (("le", le), ("model", "m"), ("version", "1"))
        return samples[("loopml_serving_request_seconds_bucket", key)]

    assert bucket("0.0005") == 1
    assert bucket("0.001") == 3
    assert bucket("0.002") == 4
    assert bucket("+Inf") == 5
    labels = (("model", "m"), ("version", "1"))
    assert samples[("loopml_serving_request_seconds_count", labels)] == 5
    assert samples[("loopml_serving_request_seconds_sum", labels)] == pytest.approx(30.0042)
    status = (("model", "m"), ("protocol", "plain"), ("status", "200"), ("version", "1"))
    assert samples[("loopml_serving_requests_total", status)] == 4
    errors = (("kind", "invalid_input"), ("model", "m"))
    assert samples[("loopml_serving_errors_total", errors)] == 1


# -- the short way in for prediction routes -------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/predict/cancer", ("predict", {"model": "cancer"})),
        ("/predict/", None),
        ("/predict/a/b", None),
        ("/v2/models/cancer/infer", ("v2", {"model": "cancer"})),
        ("/v2/models/cancer/versions/3/infer", ("v2", {"model": "cancer", "version": "3"})),
        ("/v2/models//infer", None),
        ("/v2/models/cancer/versions//infer", None),
        ("/v2/models/cancer/other/3/infer", None),
        ("/v2/models/cancer/ready", None),
        ("/invocations", ("invocations", {})),
        ("/invocations/x", None),
        ("/metrics", None),
    ],
)
def test_which_paths_take_the_short_way(path: str, expected: Any) -> None:
    assert _fast_route(path) == expected


def test_prediction_routes_answer_the_same_by_either_way(
    client: Any, lr: LogisticRegression, registered: Registered
) -> None:
    """The short way answers what the generic stack answers: predictions, a bad version,
    an unknown model, a wrong method, and paths next to the prediction routes."""
    rows = registered.features.iloc[:3].to_numpy().tolist()
    expected = _expected(lr, registered.features.iloc[:3])
    tensor = {"name": "x", "shape": [3, 30], "datatype": "FP64", "data": rows}
    v2 = client.post("/v2/models/cancer/versions/1/infer", json={"inputs": [tensor]})
    assert v2.status_code == 200, v2.text
    assert v2.json()["outputs"][0]["data"] == expected
    assert client.post("/v2/models/cancer/versions/x1/infer", json={}).status_code == 400
    assert client.post("/v2/models/cancer/versions/7/infer", json={}).status_code == 404
    assert client.post("/predict/nope", json={"data": rows}).status_code == 404
    assert client.post("/predict/cancer/extra", json={"data": rows}).status_code == 404
    assert client.get("/predict/cancer").status_code == 405
    assert client.get("/invocations").status_code == 405
    assert client.post("/invocations", json={"inputs": rows}).json() == {"predictions": expected}


def test_a_handler_bug_on_the_short_way_is_a_500_with_an_incident(
    lr: LogisticRegression, registered: Registered
) -> None:
    app = create_app(parse_config({"models": [{"name": "cancer", "uri": "models:/cancer/1"}]}))

    async def broken(_request: Any) -> Any:
        raise RuntimeError("a bug")

    app.fast["predict"] = broken
    with live_app(app) as url:
        answer = httpx.post(url + "/predict/cancer", json={"data": [[1.0] * 30]})
        fine = httpx.post(url + "/v2/models/cancer/infer", json={"inputs": []})
    assert answer.status_code == 500
    assert "incident" in answer.json()["error"]
    assert "a bug" not in answer.text
    assert fine.status_code in (200, 400)


def test_a_root_path_takes_the_generic_stack(
    lr: LogisticRegression, registered: Registered
) -> None:
    """Mounted under a root path (uvicorn --root-path), the routes still answer."""
    app = create_app(parse_config({"models": [{"name": "cancer", "uri": "models:/cancer/1"}]}))
    calls: list[str] = []
    original = app.fast["predict"]

    async def counted(request: Any) -> Any:
        calls.append("fast")
        return await original(request)

    app.fast["predict"] = counted
    rows = registered.features.iloc[:2].to_numpy().tolist()
    expected = _expected(lr, registered.features.iloc[:2])

    async def scenario() -> list[Any]:
        transport = httpx.ASGITransport(app=app, root_path="/ml")
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as asgi,
        ):
            mounted = await asgi.post("/ml/predict/cancer", json={"data": rows})
            plain = await asgi.post("/predict/cancer", json={"data": rows})
            return [mounted, plain]

    mounted, _plain = asyncio.run(scenario())
    assert mounted.status_code == 200, mounted.text
    assert mounted.json()["predictions"] == expected
    assert calls == []  # neither took the short way: the root path is set on both
