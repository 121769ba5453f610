"""Prometheus metrics of the model server (``GET /metrics``), one registry per app.

=========================================  ======================================================
``loopml_serving_requests_total``          requests answered, by model, version, protocol, status
``loopml_serving_errors_total``            refused or failed requests, by model and kind
                                           (``invalid_input``, ``too_large``, ``overloaded``,
                                           ``model_error``, ``not_found``, ``unauthorized``)
``loopml_serving_request_seconds``         time from the body read to the answer (histogram)
``loopml_serving_batch_rows``              rows per predict call (histogram: how well batching
                                           works)
``loopml_serving_predict_seconds``         time in the model's predict per call (histogram)
``loopml_serving_queue_wait_seconds``      time a batch's first request waited (histogram)
``loopml_serving_queue_rows``              rows waiting for each version now (gauge)
``loopml_serving_model_info``              1 per loaded version, with its role (gauge)
``loopml_serving_model_load_failures_total``  versions that failed to load
``loopml_serving_shadow_errors_total``     shadow predictions that failed or were dropped
``loopml_serving_prediction_log_*``        rows logged, dropped, segments written and failed
``loopml_monitor_*``                       the latest checked window of each monitor of a served
                                           model (status, drift, performance, alerts, rows)
``loopml_monitor_live_*``                  each monitor's current window, folded as requests
                                           are served (:mod:`loopml.serving.live`): rows, status,
                                           PSI per column, drifted features, dropped rows; and
                                           ``loopml_monitor_live_previous_*`` for the window
                                           before it
=========================================  ======================================================

Each worker process counts its own requests (run one worker per container, the usual layout
on Kubernetes, or scrape each).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

__all__ = ["ServingMetrics"]

_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1.0,
    2.0,
    5.0,
)
_ROWS_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)


class _Live(Collector):
    """Values read when scraped: queue depth and the prediction log's counters."""

    def __init__(self, read: Callable[[], dict[str, Any]]) -> None:
        self._read = read

    def describe(self) -> Iterable[Any]:
        return []  # read when scraped, not when registered

    def collect(self) -> Iterable[Any]:
        state = self._read()
        queue = GaugeMetricFamily(
            "loopml_serving_queue_rows",
            "Rows waiting for a model version",
            labels=["model", "version", "role"],
        )
        for (model, version, role), rows in state.get("queues", {}).items():
            queue.add_metric([model, version, role], rows)
        yield queue
        yield from _monitor_families(state.get("monitors") or [])
        live = state.get("live")
        if live is not None:  # None: live monitoring is switched off
            yield from _live_families(live)
        log = state.get("prediction_log")
        if log:
            for name, help_text in (
                ("logged_rows", "Prediction rows accepted by the prediction log"),
                ("dropped_rows", "Prediction rows dropped because the log fell behind"),
                ("written_segments", "Parquet segments written to the blob store"),
                ("failed_segments", "Segments that could not be written"),
            ):
                family = CounterMetricFamily(f"loopml_serving_prediction_log_{name}", help_text)
                family.add_metric([], float(log.get(name, 0)))
                yield family


_STATUS_CODES = {"insufficient_data": -1, "ok": 0, "drift": 1, "alert": 2, "error": 3}


def _monitor_families(monitors: list[dict[str, Any]]) -> Iterable[Any]:
    """Gauges from the latest checked window of each monitor of a served model, so that
    Grafana dashboards and Alertmanager rules can use them."""
    status = GaugeMetricFamily(
        "loopml_monitor_status",
        "Latest window: -1 insufficient data, 0 ok, 1 drift, 2 alert",
        labels=["monitor", "model"],
    )
    drifted = GaugeMetricFamily(
        "loopml_monitor_drifted_features",
        "Features drifted in the latest window",
        labels=["monitor"],
    )
    effect = GaugeMetricFamily(
        "loopml_monitor_drift_effect",
        "Drift effect per column in the latest window (the rule's effect measure)",
        labels=["monitor", "column", "role"],
    )
    psi = GaugeMetricFamily(
        "loopml_monitor_drift_psi",
        "PSI per column in the latest window",
        labels=["monitor", "column"],
    )
    performance = GaugeMetricFamily(
        "loopml_monitor_performance",
        "Performance in the latest window with labels",
        labels=["monitor", "metric"],
    )
    alerts = GaugeMetricFamily(
        "loopml_monitor_alerts", "Rules breached in the latest window", labels=["monitor"]
    )
    rows = GaugeMetricFamily(
        "loopml_monitor_rows", "Predictions in the latest window", labels=["monitor"]
    )
    quality = GaugeMetricFamily(
        "loopml_monitor_quality_findings",
        "Data-quality findings per column and kind in the latest window",
        labels=["monitor", "column", "kind"],
    )
    for summary in monitors:
        name = str(summary.get("monitor"))
        status.add_metric(
            [name, str(summary.get("model"))], _STATUS_CODES.get(str(summary.get("status")), 3)
        )
        drifted.add_metric([name], len(summary.get("drifted_features") or []))
        alerts.add_metric([name], len(summary.get("alerts") or []))
        rows.add_metric([name], float(summary.get("rows") or 0))
        for column in (summary.get("drift") or {}).get("columns", []):
            value = column.get("effect")
            if isinstance(value, int | float):
                effect.add_metric([name, str(column.get("column")), str(column.get("role"))], value)
            value = (column.get("measures") or {}).get("psi")
            if isinstance(value, int | float):
                psi.add_metric([name, str(column.get("column"))], value)
        for metric, value in (summary.get("performance") or {}).items():
            if isinstance(value, int | float):
                performance.add_metric([name, metric], value)
        found: dict[tuple[str, str], int] = {}
        for finding in (summary.get("drift") or {}).get("quality", []):
            key = (str(finding.get("column")), str(finding.get("kind")))
            found[key] = found.get(key, 0) + 1
        for (column, kind), count in sorted(found.items()):
            quality.add_metric([name, column, kind], count)
    yield from (status, drifted, effect, psi, performance, alerts, rows, quality)


def _live_families(monitors: list[dict[str, Any]]) -> Iterable[Any]:
    """Gauges of each monitor's live windows (:meth:`loopml.serving.live.LiveMonitors.snapshot`):
    the current one and, under ``loopml_monitor_live_previous_*``, the one before it. Status,
    PSI and drifted features are those of the window's latest evaluation (absent before it)."""
    families = {}
    for prefix, which in (
        ("loopml_monitor_live", "current"),
        ("loopml_monitor_live_previous", "previous"),
    ):
        families[which] = (
            GaugeMetricFamily(
                f"{prefix}_rows", f"Rows folded into the {which} live window", labels=["monitor"]
            ),
            GaugeMetricFamily(
                f"{prefix}_status",
                f"The {which} live window: -1 insufficient data, 0 ok, 1 drift, 3 error",
                labels=["monitor"],
            ),
            GaugeMetricFamily(
                f"{prefix}_drift_psi",
                f"PSI per column in the {which} live window",
                labels=["monitor", "column"],
            ),
            GaugeMetricFamily(
                f"{prefix}_drifted_features",
                f"Features drifted in the {which} live window",
                labels=["monitor"],
            ),
        )
    dropped = CounterMetricFamily(
        "loopml_monitor_live_dropped",
        "Rows served but not folded into a live window (its queue was full)",
        labels=["monitor"],
    )
    for monitor in monitors:
        name = str(monitor.get("monitor"))
        dropped.add_metric([name], float(monitor.get("dropped_rows") or 0))
        for which, (rows, status, psi, drifted) in families.items():
            window = monitor.get(which)
            if not window:
                continue
            rows.add_metric([name], float(window.get("rows") or 0))
            if window.get("status") is None:
                continue  # not evaluated yet
            status.add_metric([name], _STATUS_CODES.get(str(window["status"]), 3))
            drifted.add_metric([name], len(window.get("drifted_features") or []))
            for column, value in (window.get("psi") or {}).items():
                psi.add_metric([name, str(column)], value)
    for group in families.values():
        yield from group
    yield dropped


class _Counts(Collector):
    """Counters and histograms of the request path, kept as plain numbers.

    prometheus_client takes a lock for every increment and every histogram bucket; the model
    server observes on its event loop thread only, so these keep a list per label set and
    add to it (a scrape reads them as they are: at worst one observation behind)."""

    def __init__(self) -> None:
        self._counters: dict[str, tuple[str, list[str], dict[tuple[str, ...], list[float]]]] = {}
        self._histograms: dict[
            str, tuple[str, list[str], tuple[float, ...], dict[tuple[str, ...], list[float]]]
        ] = {}

    def counter(self, name: str, help_text: str, labels: Sequence[str]) -> None:
        self._counters[name] = (help_text, list(labels), {})

    def histogram(
        self, name: str, help_text: str, labels: Sequence[str], buckets: Sequence[float]
    ) -> None:
        self._histograms[name] = (help_text, list(labels), tuple(buckets), {})

    def inc(self, name: str, labels: tuple[str, ...]) -> None:
        values = self._counters[name][2]
        cell = values.get(labels)
        if cell is None:
            cell = values[labels] = [0.0]
        cell[0] += 1

    def observe(self, name: str, labels: tuple[str, ...], value: float) -> None:
        _, _, bounds, values = self._histograms[name]
        cell = values.get(labels)
        if cell is None:  # one count per bucket, then +Inf's, then the sum
            cell = values[labels] = [0.0] * (len(bounds) + 2)
        cell[bisect_left(bounds, value)] += 1
        cell[-1] += value

    def collect(self) -> Iterable[Any]:
        for name, (help_text, labels, values) in self._counters.items():
            counter = CounterMetricFamily(name, help_text, labels=labels)
            for key, cell in list(values.items()):
                counter.add_metric(list(key), cell[0])
            yield counter
        for name, (help_text, labels, bounds, values) in self._histograms.items():
            histogram = HistogramMetricFamily(name, help_text, labels=labels)
            for key, cell in list(values.items()):
                counts, total = cell[:-1], cell[-1]
                cumulative, buckets = 0.0, []
                for bound, count in zip((*bounds, float("inf")), counts, strict=True):
                    cumulative += count
                    buckets.append((_le(bound), cumulative))
                histogram.add_metric(list(key), buckets, sum_value=total)
            yield histogram


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


class ServingMetrics:
    """The metric objects; ``observe_*`` methods are called on the request path (the event
    loop's thread)."""

    def __init__(self, read_live: Callable[[], dict[str, Any]]) -> None:
        disable_created_metrics()  # no *_created series: they double the scrape for nothing
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._counts = counts = _Counts()
        counts.counter(
            "loopml_serving_requests",
            "Requests answered",
            ["model", "version", "protocol", "status"],
        )
        counts.counter("loopml_serving_errors", "Requests refused or failed", ["model", "kind"])
        for name, help_text, buckets in (
            ("loopml_serving_request_seconds", "Time to answer a request", _LATENCY_BUCKETS),
            ("loopml_serving_batch_rows", "Rows per predict call", _ROWS_BUCKETS),
            (
                "loopml_serving_predict_seconds",
                "Time in the model's predict per call",
                _LATENCY_BUCKETS,
            ),
            (
                "loopml_serving_queue_wait_seconds",
                "Time the first request of a batch waited for the model",
                _LATENCY_BUCKETS,
            ),
        ):
            counts.histogram(name, help_text, ["model", "version"], buckets)
        r.register(counts)
        self.model_info = Gauge(
            "loopml_serving_model_info",
            "Loaded model versions (1 each)",
            ["model", "version", "role", "uri"],
            registry=r,
        )
        self.load_failures = Counter(
            "loopml_serving_model_load_failures",
            "Model versions that failed to load",
            ["model"],
            registry=r,
        )
        self.shadow_errors = Counter(
            "loopml_serving_shadow_errors",
            "Shadow predictions that failed or were dropped",
            ["model", "version"],
            registry=r,
        )
        r.register(_Live(read_live))
        self._children: dict[tuple[str, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric._name, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def observe_request(
        self, model: str, version: str, protocol: str, status: int, seconds: float
    ) -> None:
        counts = self._counts
        counts.inc("loopml_serving_requests", (model, version, protocol, str(status)))
        counts.observe("loopml_serving_request_seconds", (model, version), seconds)

    def observe_batch(self, model: str, version: str, rows: int, wait: float, took: float) -> None:
        counts, labels = self._counts, (model, version)
        counts.observe("loopml_serving_batch_rows", labels, rows)
        counts.observe("loopml_serving_queue_wait_seconds", labels, wait)
        counts.observe("loopml_serving_predict_seconds", labels, took)

    def error(self, model: str, kind: str) -> None:
        self._counts.inc("loopml_serving_errors", (model, kind))

    def render(self) -> bytes:
        return generate_latest(self.registry)
