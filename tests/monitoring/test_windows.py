"""Windows by count, late data in its own window, webhook deliveries on record, alert state
over a long history, and a report over a day of minute windows."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.monitoring.test_monitors import HOUR, T0, Receiver, _frame, _log, receiver, store_uri

from loopml import data, monitoring
from loopml.errors import InvalidArgumentError
from loopml.monitoring.monitors import _open_alerts, parse_window_spec
from loopml.serving.predlog import PredictionLog
from loopml.storage.uris import open_store

__all__ = ["receiver", "store_uri"]  # fixtures shared with test_monitors


def _create(name: str, **kwargs: object) -> None:
    monitoring.create(name, model="churn", reference="customers@v1", **kwargs)  # type: ignore[arg-type]


def test_late_rows_land_in_their_own_window(store_uri: str) -> None:
    data.add("customers", _frame(20_000, seed=1))
    _create("late", window="1h")
    _log(store_uri, _frame(2_000, seed=2), T0)  # hour 1
    _log(store_uri, _frame(1_000, seed=3), T0 + HOUR)  # hour 2, logged before any check

    first = monitoring.check("late", at=T0 + HOUR)
    assert (first.status, first.rows, first.late_window) == ("ok", 2_000, None)
    assert first.arrived_before is not None

    # 600 shifted predictions of hour 1 arrive after hour 1 was checked
    _log(store_uri, _frame(600, seed=4, shift=1.0, share=0.6), T0)

    again = monitoring.check("late", at=T0 + HOUR)  # a re-check counts the same rows
    assert again.rows == 2_000
    assert again.status == "ok"
    assert again.late_window is not None  # the late rows, in their own window
    late = again.late_window
    assert (late.late, late.rows) == (True, 600)
    assert late.status == "alert"
    assert "tenure" in late.drifted_features
    assert all(key.startswith("late:") for key in late.opened)
    assert late.window_end > late.window_start  # the span they arrived in

    second = monitoring.check("late", at=T0 + 2 * HOUR)
    assert (second.rows, second.late_window) == (1_000, None)  # nothing new arrived late
    assert second.opened == ()  # the late alerts are not the on-time windows' business
    assert second.resolved == ()

    store = open_store(store_uri)
    on_time = store.list_monitor_results("late", late=False)
    stored_late = store.list_monitor_results("late", late=True)
    store.close()
    assert [r.summary["rows"] for r in on_time] == [2_000, 1_000]
    assert [r.summary["rows"] for r in stored_late] == [600]
    # every prediction counted once: on time or late
    assert sum(r.summary["rows"] for r in on_time + stored_late) == 3_600
    content = monitoring.report("late", Path(store_uri).parent / "late.html")
    assert content["late_windows"][0]["rows"] == 600


def test_a_first_check_takes_everything_that_arrived(store_uri: str) -> None:
    """Backfilled logs: rows logged long after their time are on time for a window checked
    for the first time."""
    data.add("customers", _frame(20_000, seed=1))
    _create("backfill", window="1h")
    _log(store_uri, _frame(500, seed=2), T0)
    _log(store_uri, _frame(500, seed=3), T0)
    result = monitoring.check("backfill", at=T0 + HOUR)
    assert (result.rows, result.late_window) == (1_000, None)


def test_count_windows(store_uri: str) -> None:
    data.add("customers", _frame(20_000, seed=1))
    _create("count", window="500 rows", horizon="1000d")  # the fixed clock is long past
    too_few = monitoring.check("count")
    assert (too_few.status, too_few.rows, too_few.drift) == ("insufficient_data", 0, None)
    _log(store_uri, _frame(2_000, seed=2), T0)
    calm = monitoring.check("count")
    assert (calm.status, calm.rows) == ("ok", 500)
    _log(store_uri, _frame(700, seed=3, shift=1.0, share=0.6), T0 - HOUR)  # arrives last
    shifted = monitoring.check("count")
    assert shifted.rows == 500  # the last 500 to arrive, whatever their timestamps
    assert "tenure" in shifted.drifted_features
    assert shifted.window_start >= T0 - HOUR
    assert shifted.window_start < T0  # the window starts at its earliest prediction


def test_window_settings_are_checked(store_uri: str) -> None:
    assert parse_window_spec("5000 rows") == ("rows", 5000)
    assert parse_window_spec("1 row") == ("rows", 1)
    assert parse_window_spec("2h") == ("time", 2 * HOUR)
    data.add("customers", _frame(500, seed=1))
    cases = [
        ({"window": "0 rows"}, "window"),
        ({"window": "-5 rows"}, "window"),
        ({"window": "many rows"}, "window"),
        ({"window": "1h", "lateness": "soon"}, "lateness"),
        ({"window": "1h", "lateness": -1}, "lateness"),
        ({"window": "1h", "horizon": 0}, "horizon"),
        ({"window": "100 rows", "lateness": "5m"}, "lateness"),
    ]
    for kwargs, field in cases:
        with pytest.raises(InvalidArgumentError) as refused:
            _create("m", **kwargs)
        assert refused.value.details["field"] == field, kwargs
    for at in ("now", 1.5, -1, True):
        with pytest.raises(InvalidArgumentError) as refused:
            monitoring.check("ok-not-yet", at=at)  # type: ignore[arg-type]
        assert refused.value.details["field"] == "at"
    _create("ok", window="1h", lateness="5m", horizon="2d")
    assert monitoring.get("ok").spec["lateness"] == "5m"


def test_webhook_deliveries_are_on_record(store_uri: str, receiver: Receiver) -> None:
    data.add("customers", _frame(20_000, seed=1))
    failing = "http://user:secret@127.0.0.1:9/hook?token=hidden"  # the discard port: refused
    _create(
        "hooks",
        window="1h",
        webhooks=[receiver.url + "?token=hidden", failing],
        allow_hosts=["127.0.0.1"],
    )
    _log(store_uri, _frame(1_000, seed=3, shift=1.0, share=0.6), T0)
    result = monitoring.check("hooks", at=T0 + HOUR)
    assert result.opened
    store = open_store(store_uri)
    delivered = store.list_monitor_events("hooks", kinds=["webhook.delivered"])
    failed = store.list_monitor_events("hooks", kinds=["webhook.failed"])
    store.close()
    assert len(delivered) == len(failed) == len(result.opened)
    assert {e.payload["alert"] for e in delivered} == set(result.opened)
    assert all(e.payload["status"] == 204 and e.payload["attempts"] == 1 for e in delivered)
    assert all(not e.payload["delivered"] and e.payload["error"] for e in failed)
    text = repr([e.payload for e in delivered + failed])
    assert "secret" not in text  # no credentials
    assert "hidden" not in text  # no query
    assert len(receiver.received) == len(result.opened)


def test_alert_state_is_read_from_the_newest_events(store_uri: str) -> None:
    data.add("customers", _frame(500, seed=1))
    _create("busy", window="1h")
    store = open_store(store_uri)
    for i in range(1_100):  # an alert that flapped for a long time
        kind = "alert.opened" if i % 2 == 0 else "alert.resolved"
        store.record_monitor_event("busy", kind, {"key": "drift:tenure", "n": i})
    assert "drift:tenure" not in _open_alerts(store, "busy", "")
    store.record_monitor_event("busy", "alert.opened", {"key": "drift:tenure", "n": 1_100})
    store.record_monitor_event("busy", "alert.opened", {"key": "late:drift:plan"})
    assert set(_open_alerts(store, "busy", "")) == {"drift:tenure"}
    assert set(_open_alerts(store, "busy", "late:")) == {"late:drift:plan"}
    store.close()


def test_report_over_a_day_of_minute_windows_stays_small(store_uri: str, tmp_path: Path) -> None:
    """1,440 one-minute windows of a 20-column model: the report is built from the stored
    summaries only and stays under 1 MB."""
    frame = _frame(20_000, seed=1)
    for i in range(17):
        frame[f"x{i}"] = frame["charges"] * (i + 1)
    data.add("customers", frame)
    _create("day", window="1m", min_rows=10)
    store = open_store(store_uri)
    minute = 60_000
    sample = frame.sample(200, random_state=2).reset_index(drop=True)
    inputs = {c: sample[c].to_numpy(dtype=object if c == "plan" else None) for c in frame}
    with PredictionLog(store) as log:
        log.log("r", "churn", 1, inputs, {"prediction": sample["target"].to_numpy()}, T0 + 1)
    checked = monitoring.check("day", at=T0 + minute)
    summary = store.list_monitor_results("day")[0].summary
    assert checked.status in ("ok", "drift", "alert")
    for i in range(2, 1_441):
        store.record_monitor_result(
            "day",
            window_start=T0 + (i - 1) * minute,
            window_end=T0 + i * minute,
            status="ok",
            summary={**summary, "window_end": T0 + i * minute},
        )
    store.close()
    path = tmp_path / "day.html"
    content = monitoring.report("day", path)
    assert len(content["drift_over_time"]["times"]) == 1_440
    assert len(content["features"]) >= 20
    assert path.stat().st_size < 1_000_000
    assert path.read_text().count("<svg") >= 20
