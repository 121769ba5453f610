"""Monitors over a real prediction log: windows, insufficient data, drift and prediction
drift, performance from feedback, alerts de-duplicated while the condition lasts and
delivered to a local webhook receiver, the HTML report, and the gauges the model server
exports."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import loopml
from loopml import data, monitoring
from loopml.errors import AlreadyExistsError, InvalidArgumentError
from loopml.monitoring.monitors import parse_window, performance_metrics
from loopml.serving.predlog import PredictionLog
from loopml.storage.uris import open_store

HOUR = 3_600_000
T0 = 1_790_000_000_000  # a fixed clock: windows are exact


@pytest.fixture
def store_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    uri = str(tmp_path / "store")
    monkeypatch.setenv("LOOPML_TRACKING_URI", uri)
    loopml.set_tracking_uri(uri)
    return uri


def _frame(rows: int, seed: int, shift: float = 0.0, share: float = 0.3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    tenure = rng.normal(24 + shift * 12, 12, rows)
    charges = rng.gamma(4.0, 20.0, rows)
    plan = np.where(rng.random(rows) < share, "pro", "basic")
    target = (tenure < 12).astype(int)
    return pd.DataFrame({"tenure": tenure, "charges": charges, "plan": plan, "target": target})


def _log(store_uri: str, frame: pd.DataFrame, start: int, *, model: str = "churn") -> list[str]:
    """Log ``frame`` as single-row requests spread over one hour from ``start``; the model
    predicts churn for short tenures."""
    store = open_store(store_uri)
    ids = []
    with PredictionLog(store, max_rows=10_000, max_seconds=3600) as log:
        for i, row in enumerate(frame.itertuples(index=False)):
            request_id = f"r{start}-{i}"
            ids.append(request_id)
            log.log(
                request_id,
                model,
                1,
                {
                    "tenure": np.array([row.tenure]),
                    "charges": np.array([row.charges]),
                    "plan": np.array([row.plan], dtype=object),
                },
                {"prediction": np.array([int(row.tenure < 12)])},
                start + i * (HOUR // (len(frame) + 1)),
            )
    store.close()
    return ids


class Receiver:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.server.shutdown()
    running.server.server_close()


def test_windows_drift_alerts_dedup_resolve_and_webhooks(
    store_uri: str, receiver: Receiver, tmp_path: Path
) -> None:
    data.add("customers", _frame(20_000, seed=1))
    monitoring.create(
        "churn-prod",
        model="churn",
        reference="customers@v1",
        window="1h",
        webhooks=receiver.url,
        allow_hosts=["127.0.0.1"],
    )
    with pytest.raises(AlreadyExistsError):
        monitoring.create("churn-prod", model="churn", reference="customers@v1")
    _log(store_uri, _frame(2_000, seed=2), T0)  # hour 1: like the reference
    _log(store_uri, _frame(2_000, seed=3, shift=1.0, share=0.6), T0 + HOUR)  # hour 2: shifted
    _log(store_uri, _frame(2_000, seed=4, shift=1.0, share=0.6), T0 + 2 * HOUR)  # still shifted
    _log(store_uri, _frame(2_000, seed=5), T0 + 3 * HOUR)  # back to normal

    empty = monitoring.check("churn-prod", at=T0)  # the hour before any traffic
    assert empty.status == "insufficient_data"
    assert empty.drift is None
    assert empty.alerts == ()

    calm = monitoring.check("churn-prod", at=T0 + HOUR)
    assert calm.status == "ok", calm.to_dict()
    assert calm.rows == 2_000
    assert calm.drifted_features == ()

    shifted = monitoring.check("churn-prod", at=T0 + 2 * HOUR)
    assert shifted.status == "alert"
    assert set(shifted.drifted_features) == {"tenure", "plan"}
    assert shifted.prediction_drift  # more short tenures: more churn predicted
    assert {a["rule"] for a in shifted.alerts} == {"drift", "prediction_drift"}
    assert len(shifted.opened) == 3
    assert len(receiver.received) == 3
    assert {r["event"] for r in receiver.received} == {"alert.opened"}
    assert {r["subject"] for r in receiver.received} == {"tenure", "plan", "target"}

    still = monitoring.check("churn-prod", at=T0 + 3 * HOUR)
    assert still.status == "alert"
    assert still.opened == ()  # de-duplicated while the condition lasts
    assert len(receiver.received) == 3

    again = monitoring.check("churn-prod", at=T0 + 3 * HOUR)  # a re-check replaces
    assert again.opened == ()
    assert len(monitoring.history("churn-prod")) == 4

    back = monitoring.check("churn-prod", at=T0 + 4 * HOUR)
    assert back.status == "ok"
    assert len(back.resolved) == 3

    store = open_store(store_uri)
    kinds = [e.kind for e in store.list_monitor_events("churn-prod")]
    store.close()
    assert kinds.count("alert.opened") == 3
    assert kinds.count("alert.resolved") == 3

    content = monitoring.report("churn-prod", tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text()
    assert page.startswith("<!doctype html>")
    assert page.count("<svg") >= 5
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # offline
    assert (tmp_path / "report.html").stat().st_size < 1_000_000
    assert [f["column"] for f in content["features"]] == ["tenure", "charges", "plan", "target"]
    assert content["drift_over_time"]["drifted"] == [0, 0, 2, 2, 0]  # the empty hour first


def test_feature_thresholds_and_performance_from_feedback(store_uri: str) -> None:
    data.add("customers", _frame(20_000, seed=1))
    monitoring.create(
        "churn-perf",
        model="churn",
        reference="customers@v1",
        window="1h",
        drift={"psi": 0.2},
        performance={"f1": 0.95, "accuracy": 0.5},
    )
    frame = _frame(1_000, seed=7)
    ids = _log(store_uri, frame, T0)
    store = open_store(store_uri)
    with PredictionLog(store) as log:  # labels: the truth is the opposite for a third
        for i, request_id in enumerate(ids):
            truth = int(frame["tenure"].iloc[i] < 12)
            log.log_feedback(request_id, "churn", 1 - truth if i % 3 == 0 else truth, T0 + HOUR)
    store.close()
    result = monitoring.check("churn-perf", at=T0 + HOUR)
    assert result.labelled_rows == 1_000
    assert result.performance["accuracy"] == pytest.approx(
        np.mean([i % 3 != 0 for i in range(1_000)])
    )
    assert result.performance["f1"] is not None
    rules = {a["rule"] for a in result.alerts}
    assert "performance.f1" in rules  # below 0.95
    assert "performance.accuracy" not in rules
    assert not any(r.startswith("drift") for r in rules)  # no PSI above 0.2


def test_bad_arguments_name_the_field(store_uri: str) -> None:
    data.add("customers", _frame(500, seed=1))
    cases = [
        (dict(model="churn", reference="customers", window="1h"), "reference"),
        (dict(model="churn", reference="customers@v1", window="soon"), "window"),
        (dict(model="churn", reference="customers@v1", drift={"psx": 1}), "drift.psx"),
        (
            dict(model="churn", reference="customers@v1", performance={"f1": "high"}),
            "performance.f1",
        ),
        (dict(model="churn", reference="customers@v1", min_rows=0), "min_rows"),
        (dict(model="churn", reference="customers@v1", drift_share=2), "drift_share"),
        (dict(model="churn", reference="customers@v1", webhooks="ftp://x"), "webhooks"),
        (dict(model=3, reference="customers@v1"), "model"),
    ]
    for kwargs, field in cases:
        with pytest.raises(InvalidArgumentError) as refused:
            monitoring.create("m", **kwargs)  # type: ignore[arg-type]
        assert refused.value.details["field"] == field, kwargs
    with pytest.raises(loopml.errors.DatasetNotFoundError):
        monitoring.create("m", model="churn", reference="nothing@v1")


def test_window_parsing_and_metrics() -> None:
    assert parse_window("15m") == 900_000
    assert parse_window("1h") == HOUR
    assert parse_window("2d") == 2 * 86_400_000
    assert parse_window(90) == 90_000
    for bad in ("0h", "-1h", "h", True, float("nan"), None):
        with pytest.raises(InvalidArgumentError):
            parse_window(bad)
    y = np.array([1, 0, 1, 1, 0, 0, 1, 0])
    scores = np.array([0.9, 0.2, 0.7, 0.4, 0.6, 0.1, 0.8, 0.3])
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    got = performance_metrics(y, scores, ["accuracy", "f1", "roc_auc", "mae", "rmse"])
    assert got["roc_auc"] == pytest.approx(roc_auc_score(y, scores))
    assert got["accuracy"] == pytest.approx(accuracy_score(y, scores >= 0.5))
    assert got["f1"] == pytest.approx(f1_score(y, scores >= 0.5))
    labels = (scores >= 0.5).astype(int)
    exact = performance_metrics(y, labels, ["accuracy", "f1", "roc_auc"])
    assert exact["roc_auc"] is None  # labels are not scores
    assert exact["f1"] == pytest.approx(f1_score(y, labels))
