"""The model server's prediction log end to end: every answered request is in the log after a
graceful shutdown (nothing acknowledged lost), feedback joins on the request id, and the
log's counters are exported as metrics."""

from __future__ import annotations

import asyncio

import httpx
from sklearn.linear_model import LogisticRegression
from tests.serving.conftest import Registered

from loopml.serving.config import parse_config
from loopml.serving.factory import build_app
from loopml.serving.predlog import join_feedback, read_feedback, read_predictions
from loopml.storage.uris import open_store
from loopml.testing.server import live_app


def test_every_answer_is_logged_by_shutdown_and_feedback_joins(
    lr: LogisticRegression, registered: Registered
) -> None:
    config = parse_config(
        {
            "models": [{"name": "cancer", "uri": "models:/cancer@champion"}],
            # nothing is written before shutdown unless shutdown writes it
            "prediction_log": {"max_rows": 1_000_000, "max_seconds": 3600},
        }
    )
    app = build_app(config, tracking_uri=registered.store)
    frame = registered.features.iloc[:50]
    answered: dict[str, int] = {}
    sent: dict[str, list[float]] = {}

    async def traffic(url: str) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:

            async def one(i: int) -> None:
                rows = frame.iloc[i : i + 1 + i % 3].to_dict(orient="records")
                answer = await client.post("/predict/cancer", json={"records": rows})
                assert answer.status_code == 200
                answered[answer.headers["x-request-id"]] = len(rows)
                sent[answer.headers["x-request-id"]] = [r["mean_radius"] for r in rows]

            await asyncio.gather(*(one(i) for i in range(40)))

    with live_app(app) as url:
        asyncio.run(traffic(url))
        some = sorted(answered)[:5]
        for request_id in some:
            labels = [1] * answered[request_id]
            answer = httpx.post(
                url + "/feedback/cancer", json={"request_id": request_id, "label": labels}
            )
            assert answer.status_code == 202, answer.text
        bad = httpx.post(url + "/feedback/cancer", json={"request_id": "../x", "label": 1})
        assert bad.status_code == 400
        metrics = httpx.get(url + "/metrics").text
        logged = sum(answered.values()) + sum(answered[r] for r in some)  # with feedback
        assert f"loopml_serving_prediction_log_logged_rows_total {logged}.0" in metrics
    store = open_store(registered.store)
    try:
        predictions = read_predictions(store, "cancer")
        feedback = read_feedback(store, "cancer")
    finally:
        store.close()
    assert predictions.num_rows == sum(answered.values())
    ids = predictions.column("request_id").to_pylist()
    assert set(ids) == set(answered)
    assert set(predictions.column("model_version").to_pylist()) == {1}
    logged_rows: dict[str, list[float]] = {}
    for record in predictions.select(["request_id", "input.mean_radius"]).to_pylist():
        logged_rows.setdefault(record["request_id"], []).append(record["input.mean_radius"])
    assert logged_rows == sent  # each request's own rows, in order (batched calls split back)
    assert "output.prediction" in predictions.column_names
    joined = join_feedback(predictions, feedback)
    labelled = [r for r in joined.to_pylist() if r.get("label.label") is not None]
    assert {r["request_id"] for r in labelled} == set(some)
