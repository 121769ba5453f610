"""Live windows in the model server: a monitored model's traffic is folded into a window
sketch as it is served, drift against the reference is exported in /metrics and in the app's
state, windows roll with the (test-controlled) clock, a full queue drops and counts without
failing a request, monitors come and go with the refresh, and the switch turns it all off."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.linear_model import LogisticRegression
from tests.serving.conftest import Registered

from loopml import data, monitoring
from loopml.serving.app import ServingApp, create_app
from loopml.serving.config import parse_config
from loopml.storage.uris import open_store
from loopml.testing.server import live_app

HOUR = 3600.0
T0 = 1_789_999_200.0 + 60.0  # one minute into a full hour (seconds since the epoch)
SHIFTED = "mean_radius"


@dataclass
class Clock:
    """The live windows' clock, moved by hand: windows roll exactly when the test says."""

    now: float = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class Server:
    url: str
    state: ServingApp
    clock: Clock
    client: httpx.Client

    def send(self, frame: pd.DataFrame, rows_per_request: int = 10) -> int:
        """Post ``frame`` in requests of ``rows_per_request`` rows; every answer must be 200."""
        for start in range(0, len(frame), rows_per_request):
            part = frame.iloc[start : start + rows_per_request]
            answer = self.client.post("/predict/cancer", json={"records": part.to_dict("records")})
            assert answer.status_code == 200, answer.text
        return len(frame)

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of /metrics (the text must parse), by name and sorted labels."""
        if self.state.live is not None:  # fold what is queued and evaluate it now
            self.state.live.flush()
        text = self.client.get("/metrics").text
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples


def _value(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def _psi(samples: dict[Any, float], monitor: str, prefix: str = "loopml_monitor_live") -> dict:
    name = f"{prefix}_drift_psi"
    return {
        dict(labels)["column"]: value
        for (sample, labels), value in samples.items()
        if sample == name and dict(labels)["monitor"] == monitor
    }


@pytest.fixture
def reference(registered: Registered) -> str:
    """The training table (features and target) as a dataset version: its profile is the
    monitors' reference."""
    table = registered.features.assign(target=registered.target)
    return data.add("cancer-train", table).ref


def _serve(registered: Registered, **extra: Any) -> tuple[Any, ServingApp, Clock]:
    config = parse_config(
        {"models": [{"name": "cancer", "uri": "models:/cancer@champion"}], **extra}
    )
    app = create_app(config, tracking_uri=registered.store)
    state: ServingApp = app.state.serving
    clock = Clock()
    if state.live is not None:
        state.live.clock = clock
    return app, state, clock


@pytest.fixture
def server(lr: LogisticRegression, registered: Registered, reference: str) -> Iterator[Server]:
    monitoring.create("cancer-live", model="cancer", reference=reference, window="1h", min_rows=50)
    app, state, clock = _serve(registered)
    with live_app(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield Server(url, state, clock, client)


def test_normal_then_shifted_traffic_and_the_window_rolls(
    server: Server, registered: Registered
) -> None:
    frame = registered.features
    features = list(frame.columns)
    assert server.state.live is not None
    assert server.state.live.monitors == ("cancer-live",)

    # the reference's own rows: nothing moved
    sent = server.send(frame)
    samples = server.metrics()
    assert _value(samples, "loopml_monitor_live_rows", monitor="cancer-live") == sent
    assert _value(samples, "loopml_monitor_live_status", monitor="cancer-live") == 0
    assert _value(samples, "loopml_monitor_live_drifted_features", monitor="cancer-live") == 0
    psi = _psi(samples, "cancer-live")
    assert set(features) <= set(psi)
    assert "target" in psi  # the predictions against the reference's target
    assert max(psi[c] for c in features) < 0.01
    assert _value(samples, "loopml_monitor_live_dropped_total", monitor="cancer-live") == 0
    assert _value(samples, "loopml_monitor_live_previous_rows", monitor="cancer-live") is None

    # the next hour: one feature moves by five standard deviations
    server.clock.now += HOUR
    shifted = frame.assign(**{SHIFTED: frame[SHIFTED] + 5 * frame[SHIFTED].std()})
    sent_shifted = server.send(shifted, rows_per_request=7)
    samples = server.metrics()
    assert _value(samples, "loopml_monitor_live_rows", monitor="cancer-live") == sent_shifted
    assert _value(samples, "loopml_monitor_live_status", monitor="cancer-live") == 1
    drifted = _value(samples, "loopml_monitor_live_drifted_features", monitor="cancer-live")
    assert drifted is not None
    assert drifted >= 1
    psi = _psi(samples, "cancer-live")
    assert psi[SHIFTED] > 1.0
    assert max(psi[c] for c in features if c != SHIFTED) < 0.01
    # the finished window is kept as the previous one, with its own verdict
    assert _value(samples, "loopml_monitor_live_previous_rows", monitor="cancer-live") == sent
    previous = _value(
        samples, "loopml_monitor_live_previous_drifted_features", monitor="cancer-live"
    )
    assert previous == 0
    assert max(_psi(samples, "cancer-live", "loopml_monitor_live_previous").values()) < 0.01

    live = server.state._live_state()["live"]
    (entry,) = live
    assert entry["monitor"] == "cancer-live"
    assert entry["model"] == "cancer"
    assert entry["window_seconds"] == HOUR
    assert entry["current"]["start"] == int((T0 // HOUR + 1) * HOUR * 1000)
    assert entry["current"]["end"] - entry["current"]["start"] == HOUR * 1000
    assert SHIFTED in entry["current"]["drifted_features"]
    assert entry["previous"]["rows"] == sent
    assert entry["previous"]["status"] == "ok"

    # an hour without traffic: the shifted window is now the previous one
    server.clock.now += HOUR
    samples = server.metrics()
    assert _value(samples, "loopml_monitor_live_rows", monitor="cancer-live") == 0
    assert _value(samples, "loopml_monitor_live_status", monitor="cancer-live") == -1
    assert _value(samples, "loopml_monitor_live_previous_rows", monitor="cancer-live") == (
        sent_shifted
    )
    assert _psi(samples, "cancer-live", "loopml_monitor_live_previous")[SHIFTED] > 1.0

    # two hours later: the window before the current one saw nothing either
    server.clock.now += 2 * HOUR
    samples = server.metrics()
    assert _value(samples, "loopml_monitor_live_previous_rows", monitor="cancer-live") == 0


def test_a_full_queue_drops_and_counts_without_failing_requests(
    lr: LogisticRegression, registered: Registered, reference: str
) -> None:
    monitoring.create("cancer-live", model="cancer", reference=reference, window="1h", min_rows=50)
    app, state, _clock = _serve(registered)
    assert state.live is not None
    state.live.max_pending_rows = 5  # a request of more rows can never be queued
    with live_app(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        server = Server(url, state, _clock, client)
        dropped = server.send(registered.features.iloc[:100], rows_per_request=10)
        samples = server.metrics()
        assert _value(samples, "loopml_monitor_live_dropped_total", monitor="cancer-live") == (
            dropped
        )
        assert _value(samples, "loopml_monitor_live_rows", monitor="cancer-live") == 0
        # one row at a time, one after the other, always fits
        folded = server.send(registered.features.iloc[100:103], rows_per_request=1)
        samples = server.metrics()
        assert _value(samples, "loopml_monitor_live_rows", monitor="cancer-live") == folded
        assert _value(samples, "loopml_monitor_live_dropped_total", monitor="cancer-live") == (
            dropped
        )
        requests = _value(
            samples,
            "loopml_serving_requests_total",
            model="cancer",
            version="1",
            protocol="plain",
            status="200",
        )
        assert requests == 13


def test_monitors_come_and_go_and_unusable_ones_are_skipped(
    lr: LogisticRegression,
    registered: Registered,
    reference: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = open_store(registered.store)
    spec = {"model": "cancer", "reference": reference, "target": "target", "min_rows": 10}
    store.create_monitor("by-count", {**spec, "window": "500 rows"})  # not a duration
    store.create_monitor("other-model", {**spec, "model": "elsewhere", "window": "1h"})
    monitoring.create("first", model="cancer", reference=reference, window="15m", min_rows=10)
    app, state, clock = _serve(registered)
    assert state.live is not None
    caplog.set_level(logging.WARNING, logger="loopml.serving.live")
    with live_app(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        server = Server(url, state, clock, client)
        assert state.live.monitors == ("first",)
        monitoring.create("second", model="cancer", reference=reference, window=900, min_rows=10)
        state.read_live_monitors()
        state.read_live_monitors()
        assert set(state.live.monitors) == {"first", "second"}
        skipped = [r for r in caplog.records if "by-count" in r.getMessage()]
        assert len(skipped) == 1  # logged once, however often the monitors are read

        sent = server.send(registered.features.iloc[:40])
        samples = server.metrics()
        for name in ("first", "second"):
            assert _value(samples, "loopml_monitor_live_rows", monitor=name) == sent
            assert _value(samples, "loopml_monitor_live_status", monitor=name) is not None
        assert _value(samples, "loopml_monitor_live_rows", monitor="by-count") is None

        # a 15-minute window rolls on its own boundary
        clock.now += 15 * 60
        samples = server.metrics()
        assert _value(samples, "loopml_monitor_live_rows", monitor="first") == 0
        assert _value(samples, "loopml_monitor_live_previous_rows", monitor="first") == sent

        monitoring.delete("first")
        state.read_live_monitors()
        assert state.live.monitors == ("second",)
        samples = server.metrics()
        assert _value(samples, "loopml_monitor_live_rows", monitor="first") is None
        assert _value(samples, "loopml_monitor_live_previous_rows", monitor="second") == sent


def test_switched_off_exports_nothing(
    lr: LogisticRegression, registered: Registered, reference: str
) -> None:
    monitoring.create("cancer-live", model="cancer", reference=reference, window="1h", min_rows=50)
    app, state, clock = _serve(registered, live_monitoring=False)
    assert state.live is None
    with live_app(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        server = Server(url, state, clock, client)
        server.send(registered.features.iloc[:30])
        samples = server.metrics()
        assert not [name for name, _labels in samples if name.startswith("loopml_monitor_live")]
        assert "loopml_monitor_live" not in client.get("/metrics").text
        assert state._live_state()["live"] is None


def test_stored_results_are_exported_as_gauges(server: Server, registered: Registered) -> None:
    """The latest stored check of each monitor of a served model: status, rows, drift per
    column, performance, alerts and data-quality findings, as Prometheus gauges."""
    reference = registered.features.assign(target=registered.target)
    current = reference.copy()
    current[SHIFTED] = current[SHIFTED] + 5 * current[SHIFTED].std()
    current.loc[: len(current) // 2, "mean_texture"] = float("nan")  # a quality finding
    drift = monitoring.compare(reference, current, predictions=["target"])
    summary = {
        "monitor": "cancer-live",
        "model": "cancer",
        "status": "alert",
        "rows": len(current),
        "drifted_features": list(drift.flagged),
        "alerts": [{"rule": "drift", "subject": SHIFTED}],
        "drift": drift.to_dict(),
        "performance": {"f1": 0.75, "roc_auc": None},
    }
    store = open_store(registered.store)
    store.record_monitor_result(
        "cancer-live", window_start=0, window_end=10, status="ok", summary={"monitor": "old"}
    )
    store.record_monitor_result(
        "cancer-live", window_start=10, window_end=20, status="alert", summary=summary
    )
    store.record_monitor_result(  # a late window is not the latest verdict
        "cancer-live", window_start=20, window_end=30, status="ok", summary={}, late=True
    )
    store.close()
    server.state.read_monitors()
    samples = server.metrics()
    assert _value(samples, "loopml_monitor_status", monitor="cancer-live", model="cancer") == 2
    assert _value(samples, "loopml_monitor_rows", monitor="cancer-live") == len(current)
    assert _value(samples, "loopml_monitor_alerts", monitor="cancer-live") == 1
    assert _value(samples, "loopml_monitor_drifted_features", monitor="cancer-live") >= 1
    assert _psi(samples, "cancer-live", prefix="loopml_monitor")[SHIFTED] > 1
    assert _value(samples, "loopml_monitor_performance", monitor="cancer-live", metric="f1") == 0.75
    assert (
        _value(samples, "loopml_monitor_performance", monitor="cancer-live", metric="roc_auc")
        is None
    )
    findings = {
        dict(labels)["column"]: value
        for (name, labels), value in samples.items()
        if name == "loopml_monitor_quality_findings"
    }
    assert findings.get("mean_texture", 0) >= 1


def test_a_server_imports_monitoring_only_for_a_monitor() -> None:
    """The model server's modules, its prediction log's included, leave drift and profiling
    code (and httpx) unimported until a monitor needs them, and model evaluation always: a
    server's cold start does not pay for them."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "import loopml.serving.factory, loopml.serving.predlog, loopml.serving.segments\n"
        "print(sorted(m for m in ('loopml.monitoring', 'loopml.data.profile', 'httpx',"
        " 'loopml.models.evaluation') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
