"""Monitors: a served model's prediction log checked window by window against a reference.

::

    mon = loopml.monitoring.create("churn-prod", model="churn", reference="customers@v3",
                                   window="1h", drift={"psi": 0.2}, performance={"f1": 0.80})
    result = loopml.monitoring.check("churn-prod")
    result.drifted_features, result.alerts

A monitor is a named spec in the metadata store (``create_monitor``). :func:`check` reads the
model's predictions in one window from the prediction log, compares their inputs (columns
``input.*``) with the reference dataset version's columns of the same names and their
outputs (``output.prediction``) with the reference's target column (prediction drift), runs
the data-quality checks, joins the feedback labels that arrived for those requests and
computes the performance metrics, then applies the alert rules.

**Windows by time.** ``window`` is a duration (``"15m"``, ``"1h"``, ``"1d"``, or seconds); a
check covers the predictions with timestamps in ``[at - window, at)``; ``at`` defaults to now
minus ``lateness`` (default 0: the time the log needs to reach the store, so that a check at
the default time sees its window whole).

**Late data.** A window's first check takes every prediction of the window that has arrived
in the log (its segment recorded) by then, and remembers that time (``arrived_before``). A
re-check (labels arrived since) takes the same rows again. A prediction that arrives after
the window containing it was checked is late: it is never folded into that window's result;
it lands in the *late window* of the next check, which gathers the late predictions that
arrived since the check before it (its span is that arrival span), is checked like any
window, and is stored beside the on-time results (``MonitorResult.late``;
:attr:`CheckResult.late_window`). So every prediction is counted once, on time or late.
Late predictions are looked for at most ``horizon`` (default ``"7d"``) back.

**Windows by count.** ``window="5000 rows"``: a check covers the last 5,000 predictions
logged before ``at``, in the order they arrived (a late prediction simply joins the newest
window), looking back at most ``horizon``.

A window with fewer than ``min_rows`` predictions says ``insufficient_data`` and no number.

**Alerts.** Rules: a feature's drift measure above its bound (``drift={"psi": 0.2}``; any of
psi, wasserstein, jensen_shannon, chi_square, cohen_h, ks) or, without bounds, the default
rule of :class:`~loopml.monitoring.drift.DriftRule` (effect AND significance) on any feature;
the share of drifted features at or above ``drift_share``; prediction drift; a performance
metric past its bound (``performance={"f1": 0.80}``: a floor for accuracy, precision, recall,
f1 and roc_auc, a ceiling for mae and rmse); any data-quality finding (``quality=True``). A
breach opens an alert (event ``alert.opened`` in the event log, POSTed to the webhooks); it
stays open, without a new event or webhook, while the condition lasts, and is resolved
(``alert.resolved``) at the first window without it. Late windows raise their own alerts
(keys ``late:...``), opened and resolved by late windows only. Every webhook call is audited
as an event (``webhook.delivered`` or ``webhook.failed``: the URL without credentials or
query, attempts, status, error). The automated retraining loop subscribes to these events.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loopml.errors import InvalidArgumentError
from loopml.monitoring.compare import DriftResult, compare
from loopml.monitoring.drift import DriftRule
from loopml.monitoring.logs import (
    BASE_SCHEMA,
    INPUT_PREFIX,
    LABEL_PREFIX,
    OUTPUT_PREFIX,
    concat_tables,
    join_feedback,
    read_feedback,
    read_segments,
)
from loopml.monitoring.webhooks import send_webhook

__all__ = [
    "MEASURES",
    "METRICS",
    "CheckResult",
    "check",
    "create",
    "delete",
    "get",
    "history",
    "list_monitors",
    "parse_window",
    "parse_window_spec",
]

MEASURES = ("psi", "wasserstein", "jensen_shannon", "chi_square", "cohen_h", "ks")
#: performance metrics: True for "higher is better" (the bound is a floor)
METRICS = {
    "accuracy": True,
    "precision": True,
    "recall": True,
    "f1": True,
    "roc_auc": True,
    "mae": False,
    "rmse": False,
}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_WINDOW = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_ROWS = re.compile(r"(\d+)\s*rows?")
_PREDICTION = "prediction"
DEFAULT_HORIZON = "7d"
#: the most segments a check lists at once while looking back for a count window
_FIRST_LOOK_MS = 3_600_000


def parse_window(window: Any) -> int:
    """A window length in milliseconds from ``"15m"``, ``"1h"``, ``"2d"`` or seconds."""
    if isinstance(window, bool):
        raise _bad_window(window)
    if isinstance(window, int | float) and math.isfinite(window) and window > 0:
        return int(window * 1000)
    if isinstance(window, str):
        match = _WINDOW.fullmatch(window.strip().lower())
        if match and float(match.group(1)) > 0:
            return int(float(match.group(1)) * _UNITS[match.group(2)] * 1000)
    raise _bad_window(window)


def _bad_window(window: Any, field: str = "window") -> InvalidArgumentError:
    return InvalidArgumentError(
        f"Invalid {field} {window!r}: expected a duration such as '15m', '1h', '1d' or a "
        "positive number of seconds"
        + (", or a count such as '5000 rows'." if field == "window" else "."),
        field=field,
    )


def parse_window_spec(window: Any) -> tuple[str, int]:
    """``("rows", n)`` for a count window (``"5000 rows"``), else ``("time", ms)``."""
    if isinstance(window, str):
        match = _ROWS.fullmatch(window.strip().lower())
        if match:
            count = int(match.group(1))
            if count < 1:
                raise _bad_window(window)
            return "rows", count
    return "time", parse_window(window)


def _duration(value: Any, field: str, default: Any) -> int:
    """A duration setting (ms), ``default`` when ``value`` is None."""
    value = default if value is None else value
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if field == "lateness" and number and value == 0:
        return 0  # no lateness; a horizon or a window must be positive
    try:
        return parse_window(value)
    except InvalidArgumentError:
        raise _bad_window(value, field) from None


def _store(tracking_uri: Any) -> Any:
    from loopml.storage.uris import open_store

    return open_store(tracking_uri)


# ---------------------------------------------------------------------------- specs


def _number_map(value: Any, allowed: Sequence[str], field_name: str) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgumentError(
            f"{field_name} must map names to numbers, e.g. {{{allowed[0]!r}: 0.2}}.",
            field=field_name,
        )
    out = {}
    for key, bound in value.items():
        if key not in allowed:
            raise InvalidArgumentError(
                f"{field_name}: unknown name {key!r}; expected one of {', '.join(allowed)}.",
                field=f"{field_name}.{key}",
            )
        if (
            isinstance(bound, bool)
            or not isinstance(bound, int | float)
            or not math.isfinite(bound)
        ):
            raise InvalidArgumentError(
                f"{field_name}.{key} must be a finite number, not {bound!r}.",
                field=f"{field_name}.{key}",
            )
        out[str(key)] = float(bound)
    return out


def _spec(
    model: Any,
    reference: Any,
    window: Any,
    drift: Any,
    performance: Any,
    drift_share: Any,
    min_rows: Any,
    target: Any,
    quality: Any,
    webhooks: Any,
    allow_hosts: Any,
    lateness: Any = None,
    horizon: Any = None,
) -> dict[str, Any]:
    from loopml.storage.validation import validate_model_name

    if not isinstance(model, str):
        raise InvalidArgumentError(
            "model must be the name the model is served under.", field="model"
        )
    validate_model_name(model)
    if not isinstance(reference, str) or "@" not in reference:
        raise InvalidArgumentError(
            f"reference must name a dataset version such as 'customers@v3', not {reference!r}.",
            field="reference",
        )
    kind, _ = parse_window_spec(window)
    _duration(lateness, "lateness", 0)
    _duration(horizon, "horizon", DEFAULT_HORIZON)
    if kind == "rows" and lateness:
        raise InvalidArgumentError(
            "lateness applies to windows by time; a window by count takes predictions in the "
            "order they arrived.",
            field="lateness",
        )
    if drift_share is not None and (
        isinstance(drift_share, bool)
        or not isinstance(drift_share, int | float)
        or not 0 < drift_share <= 1
    ):
        raise InvalidArgumentError("drift_share must be a number in (0, 1].", field="drift_share")
    if isinstance(min_rows, bool) or not isinstance(min_rows, int) or min_rows < 1:
        raise InvalidArgumentError("min_rows must be a positive integer.", field="min_rows")
    hooks = [webhooks] if isinstance(webhooks, str) else list(webhooks or [])
    from loopml.monitoring.webhooks import validate_webhook_url

    for url in hooks:
        try:
            validate_webhook_url(url, allow_hosts=list(allow_hosts or []))
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(exc.message, field="webhooks") from None
    return {
        "model": model,
        "reference": reference,
        "window": window,
        "drift": _number_map(drift, MEASURES, "drift"),
        "performance": _number_map(performance, tuple(METRICS), "performance"),
        "drift_share": None if drift_share is None else float(drift_share),
        "min_rows": min_rows,
        "target": target,
        "quality": bool(quality),
        "webhooks": hooks,
        "allow_hosts": list(allow_hosts or []),
        "lateness": lateness,
        "horizon": horizon,
    }


def create(
    name: str,
    *,
    model: str,
    reference: str,
    window: str | float = "1h",
    drift: Mapping[str, float] | None = None,
    performance: Mapping[str, float] | None = None,
    drift_share: float | None = None,
    min_rows: int = 100,
    target: str | None = "target",
    quality: bool = False,
    webhooks: str | Sequence[str] | None = None,
    allow_hosts: Sequence[str] = (),
    lateness: str | float | None = None,
    horizon: str | float | None = None,
    tracking_uri: Any = None,
) -> Any:
    """Create the monitor ``name`` (see the module docstring); returns the stored
    :class:`~loopml.entities.Monitor`. The reference dataset version must exist.

    Raises:
        InvalidArgumentError: a bad argument (``field`` names it).
        AlreadyExistsError: a monitor with this name exists.
        DatasetNotFoundError: the reference does not exist.
    """
    spec = _spec(
        model, reference, window, drift, performance, drift_share, min_rows, target, quality,
        webhooks, allow_hosts, lateness, horizon,
    )  # fmt: skip
    from loopml import data

    data.get(reference, tracking_uri=tracking_uri)  # it must exist now
    store = _store(tracking_uri)
    return store.create_monitor(name, spec)


def get(name: str, *, tracking_uri: Any = None) -> Any:
    return _store(tracking_uri).get_monitor(name)


def list_monitors(*, tracking_uri: Any = None) -> list[Any]:
    return list(_store(tracking_uri).list_monitors())


def delete(name: str, *, tracking_uri: Any = None) -> None:
    _store(tracking_uri).delete_monitor(name)


def history(
    name: str, *, limit: int = 1000, late: bool | None = False, tracking_uri: Any = None
) -> list[Any]:
    """The stored results of ``name``'s newest ``limit`` checked windows, oldest first: on
    time (``late=False``, the default), late windows (``True``) or both (``None``)."""
    store = _store(tracking_uri)
    return list(store.list_monitor_results(name, limit=limit, late=late, newest=True))


# ---------------------------------------------------------------------------- checking


@dataclass(frozen=True)
class CheckResult:
    """One window of a monitor, checked."""

    monitor: str
    model: str
    window_start: int
    window_end: int
    status: str
    """"ok", "drift", "alert" or "insufficient_data"."""
    rows: int
    drift: DriftResult | None = None
    performance: dict[str, float | None] = field(default_factory=dict)
    labelled_rows: int = 0
    alerts: tuple[dict[str, Any], ...] = ()
    """The breached rules of this window: rule, subject, value, bound, reason."""
    opened: tuple[str, ...] = ()
    """Alerts that opened with this window (new events, webhooks sent)."""
    resolved: tuple[str, ...] = ()
    deliveries: tuple[dict[str, Any], ...] = ()
    late: bool = False
    """True for a window of late rows (see the module docstring)."""
    arrived_before: int | None = None
    """The rows counted are those that had arrived in the log by this time (ms)."""
    late_window: CheckResult | None = None
    """The late rows that arrived during this window's arrival span, checked as their own
    window (``None`` when none arrived)."""

    @property
    def drifted_features(self) -> tuple[str, ...]:
        if self.drift is None:
            return ()
        return tuple(c.column for c in self.drift.features if c.drifted)

    @property
    def prediction_drift(self) -> bool:
        return self.drift is not None and self.drift.prediction_drift

    def to_dict(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "model": self.model,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "status": self.status,
            "rows": self.rows,
            "drifted_features": list(self.drifted_features),
            "prediction_drift": self.prediction_drift,
            "drift": None if self.drift is None else self.drift.to_dict(),
            "performance": dict(self.performance),
            "labelled_rows": self.labelled_rows,
            "alerts": [dict(a) for a in self.alerts],
            "opened": list(self.opened),
            "resolved": list(self.resolved),
            "late": self.late,
            "arrived_before": self.arrived_before,
            "late_window": None if self.late_window is None else self.late_window.to_dict(),
        }


def _current_table(predictions: pa.Table, target: str | None) -> pa.Table:
    """The window's inputs under the reference's column names, and its output as the
    reference's target column (for prediction drift)."""
    columns = {}
    for name in predictions.column_names:
        if name.startswith(INPUT_PREFIX):
            columns[name[len(INPUT_PREFIX) :]] = predictions[name]
    output = OUTPUT_PREFIX + _PREDICTION
    if target and output in predictions.column_names:
        columns[target] = predictions[output]
    return pa.table(columns)


def _labels(table: pa.Table) -> tuple[np.ndarray, np.ndarray] | None:
    label = next((n for n in table.column_names if n.startswith(LABEL_PREFIX)), None)
    output = OUTPUT_PREFIX + _PREDICTION
    if label is None or output not in table.column_names:
        return None
    y = table[label].to_numpy(zero_copy_only=False)
    p = table[output].to_numpy(zero_copy_only=False)
    mask = np.array([v is not None and not (isinstance(v, float) and math.isnan(v)) for v in y])
    if not mask.any():
        return None
    return y[mask], p[mask]


def performance_metrics(
    y: np.ndarray, p: np.ndarray, wanted: Sequence[str]
) -> dict[str, float | None]:
    """The metrics in ``wanted`` for labels ``y`` and predictions ``p`` (numpy only).

    Classification: the positive class is the larger label (1 for 0/1 labels); ``roc_auc``
    needs scores (predictions that are not all labels), else it is None. Regression: mae and
    rmse.
    """
    out: dict[str, float | None] = {}
    y_num = np.asarray(y, dtype=float)
    p_num = np.asarray(p, dtype=float)
    classes = np.unique(y_num)
    positive = classes.max() if len(classes) else 1.0
    is_scores = not np.isin(np.unique(p_num), classes).all()
    predicted = (p_num >= 0.5).astype(float) * positive if is_scores else p_num
    tp = float(np.sum((predicted == positive) & (y_num == positive)))
    fp = float(np.sum((predicted == positive) & (y_num != positive)))
    fn = float(np.sum((predicted != positive) & (y_num == positive)))
    for metric in wanted:
        if metric == "accuracy":
            out[metric] = float(np.mean(predicted == y_num))
        elif metric == "precision":
            out[metric] = tp / (tp + fp) if tp + fp else None
        elif metric == "recall":
            out[metric] = tp / (tp + fn) if tp + fn else None
        elif metric == "f1":
            out[metric] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
        elif metric == "roc_auc":
            out[metric] = _roc_auc(y_num == positive, p_num) if is_scores else None
        elif metric == "mae":
            out[metric] = float(np.mean(np.abs(p_num - y_num)))
        elif metric == "rmse":
            out[metric] = float(np.sqrt(np.mean((p_num - y_num) ** 2)))
    return out


def _roc_auc(positive: np.ndarray, scores: np.ndarray) -> float | None:
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks of ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _breaches(
    spec: Mapping[str, Any], result: DriftResult | None, perf: Mapping[str, Any]
) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = []
    if result is not None:
        features = [c for c in result.features if c.tested]
        bounds = spec.get("drift") or {}
        for column in result.features:
            if bounds:
                for measure, bound in bounds.items():
                    value = column.measures.get(measure)
                    if value is not None and value > bound:
                        alerts.append(
                            {
                                "rule": f"drift.{measure}",
                                "subject": column.column,
                                "value": value,
                                "bound": bound,
                                "reason": f"{column.column}: {measure} {value:.4g} > {bound:g}",
                            }
                        )
            elif column.drifted:
                alerts.append(
                    {
                        "rule": "drift",
                        "subject": column.column,
                        "value": column.effect,
                        "bound": column.threshold,
                        "reason": f"{column.column}: {column.reason}",
                    }
                )
        share = spec.get("drift_share")
        drifted = [c for c in features if c.drifted]
        if share is not None and features and len(drifted) / len(features) >= share:
            alerts.append(
                {
                    "rule": "drift_share",
                    "subject": "features",
                    "value": len(drifted) / len(features),
                    "bound": share,
                    "reason": f"{len(drifted)} of {len(features)} features drifted",
                }
            )
        for column in result.predictions:
            if column.drifted:
                alerts.append(
                    {
                        "rule": "prediction_drift",
                        "subject": column.column,
                        "value": column.effect,
                        "bound": column.threshold,
                        "reason": f"the model's predictions drifted: {column.reason}",
                    }
                )
        if spec.get("quality"):
            for finding in result.quality:
                alerts.append(
                    {
                        "rule": f"quality.{finding.kind}",
                        "subject": finding.column,
                        "value": finding.current,
                        "bound": finding.reference,
                        "reason": finding.message,
                    }
                )
    for metric, bound in (spec.get("performance") or {}).items():
        value = perf.get(metric)
        if value is None:
            continue
        floor = METRICS[metric]
        if (floor and value < bound) or (not floor and value > bound):
            word = "below" if floor else "above"
            alerts.append(
                {
                    "rule": f"performance.{metric}",
                    "subject": metric,
                    "value": value,
                    "bound": bound,
                    "reason": f"{metric} {value:.4f} is {word} {bound:g}",
                }
            )
    return alerts


def _key(alert: Mapping[str, Any]) -> str:
    return f"{alert['rule']}:{alert['subject']}"


def _open_alerts(store: Any, name: str, scope: str) -> dict[str, dict[str, Any]]:
    """The alerts of ``name`` in ``scope`` ("" on time, "late:" late) open now: opened and
    not resolved since, folded over the newest 10,000 transitions."""
    state: dict[str, dict[str, Any]] = {}
    found = store.list_monitor_events(
        name, kinds=["alert.opened", "alert.resolved"], limit=10_000, newest=True
    )
    for event in found:
        key = event.payload.get("key")
        if (
            not isinstance(key, str)
            or not key.startswith(scope)
            or (not scope and key.startswith(_LATE))
        ):
            continue
        if event.kind == "alert.opened":
            state[key] = event.payload
        else:
            state.pop(key, None)
    return state


_LATE = "late:"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _arrived(result: Any) -> int:
    """When the rows a stored result counted had arrived by (older results: when stored)."""
    value = result.summary.get("arrived_before")
    return int(value) if isinstance(value, int) else int(result.created_time)


def _covered(timestamps: np.ndarray, spans: list[tuple[int, int]]) -> np.ndarray:
    """Which ``timestamps`` fall in one of ``spans`` ([start, end) pairs)."""
    if not spans:
        return np.zeros(len(timestamps), dtype=bool)
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    starts = np.array([m[0] for m in merged], dtype=np.int64)
    ends = np.array([m[1] for m in merged], dtype=np.int64)
    index = np.searchsorted(starts, timestamps, side="right") - 1
    inside = index >= 0
    inside[inside] = timestamps[inside] < ends[index[inside]]
    return inside


def _late_rows(
    store: Any, name: str, model: str, since: int, cutoff: int, before: int, horizon: int
) -> pa.Table:
    """Predictions with timestamps before ``before`` that arrived in ``[since, cutoff)``
    after the window holding them had been checked."""
    segments = store.list_prediction_segments(model, start=before - horizon, end=before)
    arrived = [s for s in segments if since <= s.created_time < cutoff]
    if not arrived:
        return BASE_SCHEMA.empty_table()
    checked = store.list_monitor_results(
        name, start=before - horizon, end=before, late=False, limit=10_000, newest=True
    )
    tables = []
    for segment in arrived:
        spans = [
            (r.window_start, r.window_end) for r in checked if _arrived(r) <= segment.created_time
        ]
        table = read_segments(store, [segment], start=before - horizon, end=before)
        mask = _covered(table["timestamp"].to_numpy(), spans)
        if mask.any():
            tables.append(table.filter(pa.array(mask)))
    if not tables:
        return BASE_SCHEMA.empty_table()
    table = concat_tables(tables)
    return table.take(pc.sort_indices(table, [("timestamp", "ascending")]))


def _newest_rows(store: Any, model: str, count: int, end: int, horizon: int) -> pa.Table:
    """The last ``count`` predictions that arrived before ``end``, in arrival order (by when
    their segment was recorded, then by timestamp), looking back at most ``horizon``."""
    look = min(_FIRST_LOOK_MS, horizon)
    while True:
        segments = store.list_prediction_segments(model, start=end - look, end=end)
        arrived = sorted(
            (s for s in segments if s.created_time < end),
            key=lambda s: (s.created_time, s.start_time, s.segment_id),
        )
        chosen, rows = [], 0
        for segment in reversed(arrived):
            if rows >= count:
                break
            chosen.append(segment)
            rows += segment.row_count
        if rows >= count or look >= horizon:
            break
        look = min(look * 4, horizon)
    tables = [read_segments(store, [s], start=end - look, end=end) for s in reversed(chosen)]
    if not tables:
        return BASE_SCHEMA.empty_table()
    table = tables[0] if len(tables) == 1 else concat_tables(tables)
    return table.slice(max(0, table.num_rows - count))


def check(
    name: str,
    *,
    at: int | None = None,
    tracking_uri: Any = None,
    deliver: bool = True,
) -> CheckResult:
    """Check the window of monitor ``name`` that ends at ``at`` (ms; default: now minus the
    monitor's lateness): drift, quality, performance and alerts, and the late rows that
    arrived during it as a window of their own (see the module docstring). Each result is
    stored (replacing an earlier check of the same window); alerts that open are recorded as
    events and sent to the monitor's webhooks (unless ``deliver`` is False).
    """
    if at is not None and (isinstance(at, bool) or not isinstance(at, int) or at < 0):
        raise InvalidArgumentError(
            f"at must be the window's end in milliseconds since the epoch (a non-negative "
            f"integer), not {at!r}.",
            field="at",
        )
    store = _store(tracking_uri)
    spec = store.get_monitor(name).spec
    kind, size = parse_window_spec(spec["window"])
    lateness = _duration(spec.get("lateness"), "lateness", 0)
    horizon = _duration(spec.get("horizon"), "horizon", DEFAULT_HORIZON)
    checker = _Checker(store, name, spec, tracking_uri, deliver)
    now = _now_ms()
    if kind == "rows":
        end = now if at is None else int(at)
        predictions = _newest_rows(store, spec["model"], size, end, horizon)
        first = int(predictions["timestamp"][0].as_py()) if predictions.num_rows else end - 1
        return checker.run(min(first, end - 1), end, predictions, late=False, arrived=end)
    end = now - lateness if at is None else int(at)
    start = end - size
    model = spec["model"]
    earlier = store.list_monitor_results(name, limit=50, newest=True)
    same = [r for r in earlier if not r.late and (r.window_start, r.window_end) == (start, end)]
    if not same:  # look further back for this window's own earlier check
        found = store.list_monitor_results(name, start=start, end=end, late=False)
        same = [r for r in found if (r.window_start, r.window_end) == (start, end)]
    cutoff = _arrived(same[0]) if same else now
    segments = store.list_prediction_segments(model, start=start, end=end)
    on_time = [s for s in segments if s.created_time < cutoff]
    predictions = read_segments(store, on_time, start=start, end=end)
    result = checker.run(start, end, predictions, late=False, arrived=cutoff)
    previous = max((_arrived(r) for r in earlier), default=None)
    if previous is not None and previous < now:
        late_rows = _late_rows(store, name, model, previous, now, end, horizon)
        if late_rows.num_rows:
            late = checker.run(previous, now, late_rows, late=True, arrived=now)
            result = dataclasses.replace(result, late_window=late)
    return result


class _Checker:
    """Checks windows of one monitor: the reference is read once for all of them."""

    def __init__(
        self, store: Any, name: str, spec: Mapping[str, Any], tracking_uri: Any, deliver: bool
    ) -> None:
        self.store, self.name, self.spec = store, name, spec
        self.tracking_uri, self.deliver = tracking_uri, deliver
        self._reference: pa.Table | None = None

    def reference(self) -> pa.Table:
        if self._reference is None:
            from loopml import data

            version = data.get(self.spec["reference"], tracking_uri=self.tracking_uri)
            self._reference = version.to_arrow()
        return self._reference

    def run(
        self, start: int, end: int, predictions: pa.Table, *, late: bool, arrived: int
    ) -> CheckResult:
        spec, store = self.spec, self.store
        rows = predictions.num_rows
        drift: DriftResult | None = None
        perf: dict[str, float | None] = {}
        labelled = 0
        if rows >= spec.get("min_rows", 100):
            reference = self.reference()
            current = _current_table(predictions, spec.get("target"))
            shared = [c for c in current.column_names if c in reference.column_names]
            target = spec.get("target")
            outputs = [target] if target and target in shared else []
            drift = compare(
                reference.select(shared),
                current.select(shared),
                predictions=outputs,
                rule=DriftRule(min_rows=min(100, spec.get("min_rows", 100))),
            )
            wanted = list((spec.get("performance") or {}).keys()) or ["accuracy"]
            first = int(pc.min(predictions["timestamp"]).as_py())
            feedback = read_feedback(store, spec["model"], start=first)
            if feedback.num_rows:
                pairs = _labels(join_feedback(predictions, feedback))
                if pairs is not None:
                    labelled = len(pairs[0])
                    perf = performance_metrics(pairs[0], pairs[1], wanted)
        shown: dict[str, Any] = {}
        if drift is not None:  # the report draws these; it never reads raw rows again
            from loopml.monitoring.report import histograms

            shown = {
                c.column: histograms(reference.select(shared), current.select(shared), c.column)
                for c in drift.columns
                if c.column in shared
            }
        alerts = _breaches(spec, drift, perf) if drift is not None else []
        if late:
            alerts = [{**alert, "late": True} for alert in alerts]
        status = "insufficient_data"
        if drift is not None:
            status = "alert" if alerts else ("drift" if drift.has_drift else "ok")
        result = CheckResult(
            monitor=self.name,
            model=spec["model"],
            window_start=start,
            window_end=end,
            status=status,
            rows=rows,
            drift=drift,
            performance=perf,
            labelled_rows=labelled,
            alerts=tuple(alerts),
            late=late,
            arrived_before=arrived,
        )
        opened, resolved, deliveries = _update_alerts(store, self.name, spec, result, self.deliver)
        result = dataclasses.replace(
            result, opened=opened, resolved=resolved, deliveries=deliveries
        )
        store.record_monitor_result(
            self.name,
            window_start=start,
            window_end=end,
            status=status,
            summary={**result.to_dict(), "histograms": shown},
            late=late,
        )
        return result


def _update_alerts(
    store: Any, name: str, spec: Mapping[str, Any], result: CheckResult, deliver: bool
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[dict[str, Any], ...]]:
    if result.status == "insufficient_data":
        return (), (), ()  # no data, no verdict: open alerts stay as they are
    scope = _LATE if result.late else ""
    open_now = _open_alerts(store, name, scope)
    current = {scope + _key(a): a for a in result.alerts}
    opened, resolved, deliveries = [], [], []
    for key, alert in current.items():
        if key in open_now:
            continue  # still breached: no new event, no new webhook
        payload = {
            "key": key,
            **alert,
            "monitor": name,
            "model": result.model,
            "window_start": result.window_start,
            "window_end": result.window_end,
        }
        store.record_monitor_event(name, "alert.opened", payload)
        opened.append(key)
        if deliver:
            for url in spec.get("webhooks") or []:
                delivery = send_webhook(
                    url,
                    {"event": "alert.opened", **payload},
                    allow_hosts=spec.get("allow_hosts") or (),
                )
                audit = {**delivery.audit(), "alert": key}
                kind = "webhook.delivered" if delivery.delivered else "webhook.failed"
                store.record_monitor_event(name, kind, audit)
                deliveries.append(audit)
    for key in open_now:
        if key not in current:
            payload = {
                "key": key,
                "monitor": name,
                "window_start": result.window_start,
                "window_end": result.window_end,
            }
            store.record_monitor_event(name, "alert.resolved", payload)
            resolved.append(key)
    return tuple(opened), tuple(resolved), tuple(deliveries)
