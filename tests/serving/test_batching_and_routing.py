"""Batching equivalence, shedding, hot swap under load, failed loads (RELIABILITY M2),
canary split and stickiness, shadow isolation — against real registered models served by a
real uvicorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from tests.serving.conftest import Registered

from loopml import registry
from loopml.serving.app import ServingApp, create_app
from loopml.serving.batching import Batcher, Overloaded
from loopml.serving.config import parse_config
from loopml.serving.inputs import Batch
from loopml.testing.server import live_app


def _serve(models: list[dict[str, Any]], **extra: Any) -> Any:
    config = parse_config({"models": models, "alias_poll_seconds": 0.2, **extra})
    return create_app(config)


async def _fire(url: str, bodies: list[Any], *, concurrency: int = 32, path: str) -> list[Any]:
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        semaphore = asyncio.Semaphore(concurrency)

        async def one(body: Any) -> Any:
            async with semaphore:
                return await client.post(path, json=body)

        return await asyncio.gather(*(one(b) for b in bodies))


def test_batched_answers_equal_unbatched_predict(
    rf: RandomForestClassifier, registered: Registered
) -> None:
    app = _serve([{"name": "forest", "uri": "models:/forest@champion", "max_batch_size": 64}])
    rng = np.random.default_rng(0)
    requests = []
    for _ in range(300):
        rows = rng.integers(1, 4)
        index = rng.choice(len(registered.features), size=rows, replace=False)
        requests.append(index)
    bodies = [{"data": registered.features.iloc[i].to_numpy().tolist()} for i in requests]
    with live_app(app) as url:
        answers = asyncio.run(_fire(url, bodies, path="/predict/forest"))
        metrics = httpx.get(url + "/metrics").text
    for index, answer in zip(requests, answers, strict=True):
        assert answer.status_code == 200, answer.text
        expected = rf.predict(registered.features.iloc[index]).tolist()
        assert answer.json()["predictions"] == expected
    # the requests were really merged: fewer predict calls than requests
    calls = _sample(metrics, "loopml_serving_batch_rows_count")
    rows = _sample(metrics, "loopml_serving_batch_rows_sum")
    assert rows == sum(len(i) for i in requests)
    assert calls < len(requests)


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics")


def test_batcher_merges_splits_and_sheds() -> None:
    async def scenario() -> None:
        calls: list[int] = []
        gate = threading.Event()

        def predict(batch: Batch) -> Any:
            gate.wait(5)
            calls.append(batch.rows)
            assert batch.tensor is not None
            return batch.tensor[:, 0] * 2

        batcher = Batcher(predict, max_batch_size=8, max_queue_rows=20)

        def batch(*values: float) -> Batch:
            return Batch(None, np.array([[v] for v in values]), len(values))

        first = asyncio.ensure_future(batcher.submit(batch(1)))
        await asyncio.sleep(0.05)  # the model is now busy with the first request
        rest = [asyncio.ensure_future(batcher.submit(batch(i, i + 0.5))) for i in range(2, 9)]
        await asyncio.sleep(0.05)
        # 14 rows wait; 8 more would pass the limit of 20: refused at once
        started = time.perf_counter()
        with pytest.raises(Overloaded):
            await batcher.submit(batch(*range(8)))
        assert time.perf_counter() - started < 0.05
        gate.set()
        assert (await first).tolist() == [2.0]
        results = await asyncio.gather(*rest)
        for i, result in zip(range(2, 9), results, strict=True):
            assert result.tolist() == [2 * i, 2 * i + 1]
        assert calls[0] == 1
        assert max(calls[1:]) <= 8
        assert sum(calls) == 15
        assert len(calls) <= 3  # 14 waiting rows in at most two calls of up to 8
        await batcher.close()

    asyncio.run(scenario())


def test_one_bad_request_does_not_fail_the_others_in_its_batch() -> None:
    async def scenario() -> None:
        def predict(batch: Batch) -> Any:
            assert batch.tensor is not None
            if np.isnan(batch.tensor).any():
                raise ValueError("Input X contains NaN.")
            time.sleep(0.01)
            return batch.tensor[:, 0]

        batcher = Batcher(predict, max_batch_size=64)
        bodies = [np.array([[float(i)]]) for i in range(20)]
        bodies[7] = np.array([[np.nan]])
        tasks = [batcher.submit(Batch(None, b, 1)) for b in bodies]
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert isinstance(results[7], ValueError)
        for i, result in enumerate(results):
            if i != 7:
                assert result.tolist() == [float(i)]
        await batcher.close()

    asyncio.run(scenario())


def test_on_answer_gets_each_call_once_with_its_requests() -> None:
    """The prediction log and live monitors hear of each merged call once, with its
    requests' ids and rows; a failed request is left out, and a failing hook fails nobody."""

    async def scenario() -> None:
        answered: list[tuple[list[str | None], list[int], list[float], list[float]]] = []
        futures: list[asyncio.Future[Any]] = []

        def on_answer(ids: list[str | None], rows: list[int], batch: Batch, out: Any) -> None:
            assert batch.tensor is not None
            answered.append((ids, rows, batch.tensor[:, 0].tolist(), np.asarray(out).tolist()))
            if ids == ["boom"]:
                raise RuntimeError("the hook is broken")

        gate = threading.Event()

        def predict(batch: Batch) -> Any:
            gate.wait(5)
            assert batch.tensor is not None
            if np.isnan(batch.tensor).any():
                raise ValueError("Input X contains NaN.")
            return batch.tensor[:, 0] * 10

        batcher = Batcher(predict, max_batch_size=64, on_answer=on_answer)

        def batch(*values: float) -> Batch:
            return Batch(None, np.array([[v] for v in values]), len(values))

        first = asyncio.ensure_future(batcher.submit(batch(1), "a"))
        await asyncio.sleep(0.05)  # the model is busy: the next three gather
        futures.extend(
            asyncio.ensure_future(batcher.submit(b, rid))
            for b, rid in ((batch(2, 3), "b"), (batch(4), "c"), (batch(5), None))
        )
        gate.set()
        assert (await first).tolist() == [10.0]
        assert [(await f).tolist() for f in futures] == [[20.0, 30.0], [40.0], [50.0]]
        assert answered == [
            (["a"], [1], [1.0], [10.0]),
            (["b", "c", None], [2, 1, 1], [2.0, 3.0, 4.0, 5.0], [20.0, 30.0, 40.0, 50.0]),
        ]
        answered.clear()
        # a NaN fails the merged call: each request alone, the bad one left out of the log
        gate.clear()
        busy = asyncio.ensure_future(batcher.submit(batch(0), "z"))
        await asyncio.sleep(0.05)
        tasks = [
            asyncio.ensure_future(batcher.submit(b, rid))
            for b, rid in ((batch(6), "d"), (batch(float("nan")), "bad"), (batch(7), "boom"))
        ]
        gate.set()
        await busy
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert (results[0].tolist(), results[2].tolist()) == ([60.0], [70.0])
        assert isinstance(results[1], ValueError)
        assert [a[0] for a in answered] == [["z"], ["d"], ["boom"]]
        await batcher.close()

    asyncio.run(scenario())


def test_a_full_queue_answers_503_with_retry_after(
    rf: RandomForestClassifier, registered: Registered
) -> None:
    app = _serve(
        [{"name": "forest", "uri": "models:/forest@champion", "max_batch_size": 1,
          "max_queue_rows": 2}]
    )  # fmt: skip
    row = registered.features.iloc[:1].to_numpy().tolist()
    with live_app(app) as url:
        state: ServingApp = app.state.serving
        deployment = state.endpoints["forest"].primary
        assert deployment is not None
        real = deployment.batcher._predict

        def slow(batch: Batch) -> Any:
            time.sleep(0.2)
            return real(batch)

        deployment.batcher._predict = slow
        answers = asyncio.run(_fire(url, [{"data": row}] * 12, path="/predict/forest"))
    statuses = Counter(a.status_code for a in answers)
    assert statuses[503] >= 5, statuses
    assert statuses[200] >= 2, statuses
    shed = next(a for a in answers if a.status_code == 503)
    assert shed.headers["retry-after"] == "1"
    assert shed.json()["error_code"] == "OVERLOADED"


# ---------------------------------------------------------------------------- versions


def _register_second(registered: Registered, name: str = "cancer") -> int:
    # a visibly different model: predicts the majority class for everything
    model = LogisticRegression(C=1e-9, max_iter=5000).fit(registered.features, registered.target)
    return registered.log(model, name=name, alias=None)


def test_an_alias_move_is_a_hot_swap_with_no_failed_request(
    lr: LogisticRegression, registered: Registered
) -> None:
    second = _register_second(registered)
    app = _serve([{"name": "cancer", "uri": "models:/cancer@champion"}])
    rows = registered.features.iloc[:3].to_numpy().tolist()
    seen: list[tuple[int, str]] = []
    stop = threading.Event()

    def load(url: str) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            while not stop.is_set():
                answer = client.post("/predict/cancer", json={"data": rows})
                seen.append((answer.status_code, answer.headers.get("x-loopml-model-version", "")))

    with live_app(app) as url:
        workers = [threading.Thread(target=load, args=(url,)) for _ in range(4)]
        for worker in workers:
            worker.start()
        time.sleep(0.5)
        registry.set_alias("cancer", "champion", second)
        deadline = time.monotonic() + 20
        while not seen or seen[-1][1] != str(second):
            assert time.monotonic() < deadline, "the server never switched"
            time.sleep(0.05)
        time.sleep(0.3)
        stop.set()
        for worker in workers:
            worker.join()
        ready = httpx.get(url + "/v2/models/cancer").json()
    statuses = Counter(status for status, _ in seen)
    assert statuses == Counter({200: len(seen)}), statuses  # not one failed request
    versions = [v for _, v in seen]
    assert "1" in versions
    assert str(second) in versions
    switch = versions.index(str(second))
    assert set(versions[switch + 8 :]) == {str(second)}  # no going back (a few in flight)
    assert ready["versions"] == [str(second)]


def test_a_version_that_fails_to_load_leaves_the_old_one_serving(
    lr: LogisticRegression, registered: Registered
) -> None:
    second = _register_second(registered)
    app = _serve([{"name": "cancer", "uri": "models:/cancer@champion"}])
    state: ServingApp = app.state.serving
    real = state._loader

    def loader(uri: str) -> Any:
        if uri.endswith(f"/{second}"):
            raise RuntimeError("disk on fire")
        return real(uri)

    for endpoint in state.endpoints.values():
        endpoint._loader = loader
    rows = registered.features.iloc[:2].to_numpy().tolist()
    with live_app(app) as url:
        registry.set_alias("cancer", "champion", second)
        time.sleep(1.5)  # several polls
        answers = [httpx.post(url + "/predict/cancer", json={"data": rows}) for _ in range(10)]
        ready = httpx.get(url + "/v2/health/ready")
        metrics = httpx.get(url + "/metrics").text
    assert {a.status_code for a in answers} == {200}
    assert {a.headers["x-loopml-model-version"] for a in answers} == {"1"}
    assert ready.status_code == 200
    assert 'loopml_serving_model_load_failures_total{model="cancer"} 1.0' in metrics


def test_ready_is_false_until_the_models_are_loaded(
    lr: LogisticRegression, registered: Registered
) -> None:
    app = _serve([{"name": "cancer", "uri": "models:/cancer@champion"}])
    state: ServingApp = app.state.serving
    release = threading.Event()
    real = state._loader

    def slow(uri: str) -> Any:
        release.wait(20)
        return real(uri)

    for endpoint in state.endpoints.values():
        endpoint._loader = slow
    # uvicorn answers only after the lifespan start: check the state the routes read
    assert not state.started
    assert not state.endpoints["cancer"].ready
    release.set()
    with live_app(app) as url:
        assert httpx.get(url + "/v2/health/ready").status_code == 200


def test_explicit_versions_side_by_side(lr: LogisticRegression, registered: Registered) -> None:
    second = _register_second(registered)
    app = _serve(
        [
            {"name": "v1", "uri": "models:/cancer/1"},
            {"name": "v2", "uri": f"models:/cancer/{second}"},
        ]
    )
    rows = registered.features.iloc[:40].to_numpy().tolist()
    with live_app(app) as url:
        one = httpx.post(url + "/predict/v1", json={"data": rows})
        two = httpx.post(url + "/predict/v2", json={"data": rows})
    assert one.headers["x-loopml-model-version"] == "1"
    assert two.headers["x-loopml-model-version"] == str(second)
    assert one.json()["predictions"] == lr.predict(registered.features.iloc[:40]).tolist()
    assert set(two.json()["predictions"]) == {1}  # the majority class


# ---------------------------------------------------------------------------- canary, shadow


def test_canary_split_within_tolerance_and_sticky_by_key(
    lr: LogisticRegression, registered: Registered
) -> None:
    second = _register_second(registered)
    app = _serve(
        [
            {
                "name": "cancer",
                "uri": "models:/cancer/1",
                "canary": {"uri": f"models:/cancer/{second}", "weight": 10, "key": "customer"},
            }
        ]
    )
    row = registered.features.iloc[0].to_dict()
    with live_app(app) as url:
        answers = asyncio.run(
            _fire(url, [{"data": [list(row.values())]}] * 2000, path="/predict/cancer")
        )
        by_key = {}
        with httpx.Client(base_url=url) as client:
            for key in ("alice", "bob", "carol", "dave"):
                got = {
                    client.post(
                        "/predict/cancer", json={"data": [list(row.values())]},
                        headers={"X-Loopml-Key": key},
                    ).headers["x-loopml-model-version"]
                    for _ in range(15)
                }  # fmt: skip
                by_key[key] = got
    versions = Counter(a.headers["x-loopml-model-version"] for a in answers)
    share = versions[str(second)] / len(answers)
    # 2,000 draws at p = 0.1: the standard deviation is 0.0067; 4 of them is 0.027
    assert 0.073 < share < 0.127, versions
    assert all(len(v) == 1 for v in by_key.values()), by_key  # a key always gets one version


def test_shadow_gets_a_copy_and_never_touches_the_answer(
    lr: LogisticRegression, registered: Registered
) -> None:
    second = _register_second(registered)
    logged: list[dict[str, Any]] = []

    class Log:
        logged_rows = dropped_rows = written_segments = failed_segments = 0

        def log_batch(self, request_ids: list[str], rows: list[int], *args: Any) -> bool:
            model, version = args[:2]
            logged.extend({"model": model, "version": version} for _ in request_ids)
            return True

        def close(self) -> None:
            pass

    config = parse_config(
        {
            "models": [
                {
                    "name": "cancer",
                    "uri": "models:/cancer/1",
                    "shadow": f"models:/cancer/{second}",
                }
            ]
        }
    )
    app = create_app(config, prediction_log=Log())
    state: ServingApp = app.state.serving
    rows = registered.features.iloc[:5].to_numpy().tolist()
    expected = lr.predict(registered.features.iloc[:5]).tolist()
    with live_app(app) as url:
        shadow = state.endpoints["cancer"].shadow
        assert shadow is not None
        calls = {"n": 0}

        def failing(batch: Batch) -> Any:
            calls["n"] += 1
            if calls["n"] % 2:
                raise RuntimeError("the shadow is broken")
            time.sleep(0.5)  # and slow
            return np.ones(batch.rows, dtype=int)

        shadow.batcher._predict = failing
        started = time.perf_counter()
        answers = [httpx.post(url + "/predict/cancer", json={"data": rows}) for _ in range(6)]
        took = time.perf_counter() - started
        time.sleep(1.0)
        metrics = httpx.get(url + "/metrics").text
    assert {a.status_code for a in answers} == {200}
    assert all(a.json()["predictions"] == expected for a in answers)
    assert {a.headers["x-loopml-model-version"] for a in answers} == {"1"}
    assert took < 2.0  # the slow shadow is not waited for
    assert calls["n"] >= 2
    assert "loopml_serving_shadow_errors_total" in metrics
    logged_as = Counter((r["model"], r["version"]) for r in logged)
    assert logged_as[("cancer", 1)] == 6  # every real answer logged
    assert logged_as[("cancer.shadow", second)] >= 1  # the shadow's answers, apart
