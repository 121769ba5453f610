"""The monitors part of the store conformance suite: monitors and their specs, the result of
each checked window (a re-check replaces it), and their events.

:class:`loopml.testing.store_suite.TrackingStoreSuite` includes it; it needs the same
``store`` fixture.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from loopml.entities import Monitor, MonitorEvent, MonitorResult, MonitorStatus
from loopml.errors import AlreadyExistsError, InvalidArgumentError, MonitorNotFoundError
from loopml.storage.protocols import TrackingStore

__all__ = ["MonitorStoreSuite"]

SPEC: dict[str, Any] = {"model": "churn", "kind": "drift", "threshold": 0.2, "features": ["a"]}
#: the longest string value a one-key spec ({"s": ...}) may hold: its JSON is 8 bytes more
LONGEST_SPEC_STRING = 256 * 1024 - 9
LONGEST_SUMMARY_STRING = 1024 * 1024 - 9

BAD_NAMES = ["", "-x", ".x", "_x", "a/b", "a b", "a\nb", "x" * 129, "é", None, 5]
ODD_NAMES = ["a", "A.b_c-1", "0", "x" * 128, "events", "results", "a..b"]


def _nested(levels: int) -> dict[str, Any]:
    """A JSON object nested ``levels`` deep (the object itself is level 1)."""
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def _nested_list(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


def _result(
    store: TrackingStore,
    start: int,
    end: int,
    *,
    name: str = "m",
    status: str = "ok",
    summary: dict[str, Any] | None = None,
) -> MonitorResult:
    return store.record_monitor_result(
        name,
        window_start=start,
        window_end=end,
        status=status,
        summary=summary if summary is not None else {"window": [start, end]},
    )


def _windows(results: list[MonitorResult]) -> list[tuple[int, int]]:
    return [(r.window_start, r.window_end) for r in results]


def _kinds(found: list[MonitorEvent]) -> list[str]:
    return [e.kind for e in found]


def _later(previous: int) -> None:
    """Wait until the clock (ms) is past ``previous``."""
    while time.time_ns() // 1_000_000 <= previous:
        time.sleep(0.001)


class MonitorStoreSuite:
    # ---------------------------------------------------------------- monitors

    def test_monitor_round_trip(self, store: TrackingStore) -> None:
        created = store.create_monitor("churn-drift", SPEC, actor="alice")
        assert isinstance(created, Monitor)
        assert created.name == "churn-drift"
        assert created.spec == SPEC
        assert created.creation_time > 0
        assert created.last_update_time == created.creation_time
        assert store.get_monitor("churn-drift") == created
        assert store.list_monitors() == [created]

    def test_monitors_are_listed_by_name(self, store: TrackingStore) -> None:
        assert store.list_monitors() == []
        for name in ("b", "a.2", "C", "a"):
            store.create_monitor(name, {"model": name})
        assert [m.name for m in store.list_monitors()] == sorted(["b", "a.2", "C", "a"])
        assert [m.spec["model"] for m in store.list_monitors()] == sorted(["b", "a.2", "C", "a"])

    @pytest.mark.parametrize("name", ODD_NAMES)
    def test_any_valid_name_works_everywhere(self, store: TrackingStore, name: str) -> None:
        store.create_monitor(name, {"model": "churn"})
        assert store.get_monitor(name).name == name
        _result(store, 0, 10, name=name)
        assert _windows(store.list_monitor_results(name)) == [(0, 10)]
        store.record_monitor_event(name, "alert.opened", {})
        assert _kinds(store.list_monitor_events(name)) == ["monitor.created", "alert.opened"]
        assert store.update_monitor(name, {"model": "fraud"}).spec == {"model": "fraud"}
        store.delete_monitor(name)
        assert store.list_monitors() == []

    def test_names_are_unique(self, store: TrackingStore) -> None:
        store.create_monitor("m", SPEC)
        with pytest.raises(AlreadyExistsError, match="'m'"):
            store.create_monitor("m", {"model": "other"})
        assert store.get_monitor("m").spec == SPEC
        # names are case-sensitive
        assert store.create_monitor("M", SPEC).name == "M"
        assert _kinds(store.list_monitor_events("m")) == ["monitor.created"]

    def test_spec_is_kept_as_json(self, store: TrackingStore) -> None:
        spec = {
            "model": "churn",
            "nested": {"list": [1, 2.5, None, True, "x", {"deep": []}]},
            "tuple": (1, 2),
            "unicode": "héllo \u2603 \U0001f600",
            "nul": "a\x00b",
            "big": 2**70,
            "negative": -3,
            "empty": {},
        }
        created = store.create_monitor("m", spec)
        expected = {**spec, "tuple": [1, 2]}
        assert created.spec == expected
        assert store.get_monitor("m").spec == expected
        assert store.create_monitor("empty", {}).spec == {}

    def test_numbers_of_other_types_are_converted(self, store: TrackingStore) -> None:
        import fractions

        created = store.create_monitor("m", {"model": "x", "half": fractions.Fraction(1, 2)})
        assert created.spec["half"] == 0.5
        assert type(store.get_monitor("m").spec["half"]) is float

    def test_update_replaces_the_spec(self, store: TrackingStore) -> None:
        created = store.create_monitor("m", SPEC)
        _later(created.last_update_time)
        updated = store.update_monitor("m", {"model": "churn", "threshold": 0.5}, actor="bob")
        assert updated.spec == {"model": "churn", "threshold": 0.5}
        assert updated.creation_time == created.creation_time
        assert updated.last_update_time > created.last_update_time
        assert store.get_monitor("m") == updated
        events = store.list_monitor_events("m")
        assert _kinds(events) == ["monitor.created", "monitor.updated"]
        assert events[1].actor == "bob"
        assert events[1].payload == {"spec": {"model": "churn", "threshold": 0.5}}

    def test_unknown_monitors(self, store: TrackingStore) -> None:
        store.create_monitor("known", SPEC)
        calls: list[Callable[[], object]] = [
            lambda: store.get_monitor("nope"),
            lambda: store.update_monitor("nope", SPEC),
            lambda: store.delete_monitor("nope"),
            lambda: _result(store, 0, 1, name="nope"),
            lambda: store.list_monitor_results("nope"),
            lambda: store.list_monitor_results("nope", start=5, end=5),
            lambda: store.record_monitor_event("nope", "alert.opened", {}),
        ]
        for call in calls:
            with pytest.raises(MonitorNotFoundError, match="nope") as info:
                call()
            assert info.value.code == "MONITOR_NOT_FOUND"
            assert info.value.http_status == 404
        # a name never used has no events (it is not an error: events outlive monitors)
        assert store.list_monitor_events("nope") == []
        assert store.list_monitors() == [store.get_monitor("known")]

    def test_delete_takes_the_results_and_keeps_the_events(self, store: TrackingStore) -> None:
        store.create_monitor("m", SPEC, actor="alice")
        store.create_monitor("other", SPEC)
        _result(store, 0, 10)
        _result(store, 10, 20, status="drift")
        _result(store, 0, 10, name="other")
        store.record_monitor_event("m", "alert.opened", {"window": 10})
        store.delete_monitor("m", actor="carol")
        with pytest.raises(MonitorNotFoundError):
            store.get_monitor("m")
        with pytest.raises(MonitorNotFoundError):
            store.list_monitor_results("m")
        with pytest.raises(MonitorNotFoundError):
            store.delete_monitor("m")
        events = store.list_monitor_events("m")
        assert _kinds(events) == ["monitor.created", "alert.opened", "monitor.deleted"]
        assert [e.actor for e in events] == ["alice", None, "carol"]
        assert events[2].payload == {"spec": SPEC}
        # the other monitor keeps its results
        assert _windows(store.list_monitor_results("other")) == [(0, 10)]
        # a new monitor of the same name starts with no results, and the old events
        store.create_monitor("m", {"model": "fraud"})
        assert store.list_monitor_results("m") == []
        assert _kinds(store.list_monitor_events("m")) == [
            "monitor.created",
            "alert.opened",
            "monitor.deleted",
            "monitor.created",
        ]

    # ---------------------------------------------------------------- refusals

    @pytest.mark.parametrize("name", BAD_NAMES)
    def test_bad_names_are_refused_everywhere(self, store: TrackingStore, name: Any) -> None:
        calls: list[Callable[[], object]] = [
            lambda: store.create_monitor(name, SPEC),
            lambda: store.get_monitor(name),
            lambda: store.update_monitor(name, SPEC),
            lambda: store.delete_monitor(name),
            lambda: _result(store, 0, 1, name=name),
            lambda: store.list_monitor_results(name),
            lambda: store.record_monitor_event(name, "alert.opened", {}),
        ]
        if name is not None:  # no name lists the events of every monitor
            calls.append(lambda: store.list_monitor_events(name))
        for call in calls:
            with pytest.raises(InvalidArgumentError, match="monitor name") as info:
                call()
            assert info.value.details["field"] == "name"
        assert store.list_monitors() == []

    @pytest.mark.parametrize(
        "spec",
        [
            None,
            [1, 2],
            "model=churn",
            {"x": float("nan")},
            {"x": [float("inf")]},
            {"x": -float("inf")},
            {1: "int key"},
            {"x": {(1, 2): "tuple key"}},
            {"x": object()},
            {"x": b"bytes"},
            {"x": {1, 2}},
            _nested(33),
            {"x": _nested_list(32)},  # 33 levels with the object
            {"s": "x" * (LONGEST_SPEC_STRING + 1)},
        ],
    )
    def test_bad_specs_are_refused(self, store: TrackingStore, spec: Any) -> None:
        with pytest.raises(InvalidArgumentError) as info:
            store.create_monitor("m", spec)
        assert info.value.details["field"] == "spec"
        assert store.list_monitors() == []
        store.create_monitor("m", SPEC)
        with pytest.raises(InvalidArgumentError) as info:
            store.update_monitor("m", spec)
        assert info.value.details["field"] == "spec"
        assert store.get_monitor("m").spec == SPEC
        assert _kinds(store.list_monitor_events("m")) == ["monitor.created"]

    def test_spec_limits_are_exact(self, store: TrackingStore) -> None:
        assert store.create_monitor("deep", _nested(32)).spec == _nested(32)
        longest = {"s": "x" * LONGEST_SPEC_STRING}
        assert store.create_monitor("long", longest).spec == longest
        with pytest.raises(InvalidArgumentError, match="under 262,144") as info:
            store.create_monitor("longer", {"s": "x" * (LONGEST_SPEC_STRING + 1)})
        assert info.value.details["field"] == "spec"
        # non-ASCII characters count as their escapes (\\u00e9: 6 bytes)
        with pytest.raises(InvalidArgumentError):
            store.create_monitor("wide", {"s": "é" * (LONGEST_SPEC_STRING // 6 + 1)})

    def test_bad_actor_is_refused(self, store: TrackingStore) -> None:
        with pytest.raises(InvalidArgumentError) as info:
            store.create_monitor("m", SPEC, actor=5)  # type: ignore[arg-type]
        assert info.value.details["field"] == "actor"
        assert store.list_monitors() == []

    # ---------------------------------------------------------------- results

    def test_result_round_trip(self, store: TrackingStore) -> None:
        store.create_monitor("m", SPEC)
        summary = {"psi": {"a": 0.31, "b": 0.02}, "rows": 1200, "features": ["a", "b"]}
        recorded = store.record_monitor_result(
            "m",
            window_start=1_700_000_000_000,
            window_end=1_700_003_600_000,
            status=MonitorStatus.DRIFT,
            summary=summary,
        )
        assert isinstance(recorded, MonitorResult)
        assert recorded.name == "m"
        assert (recorded.window_start, recorded.window_end) == (
            1_700_000_000_000,
            1_700_003_600_000,
        )
        assert recorded.status == "drift"
        assert type(recorded.status) is str
        assert recorded.summary == summary
        assert recorded.created_time > 0
        assert store.list_monitor_results("m") == [recorded]

    @pytest.mark.parametrize("status", [s.value for s in MonitorStatus])
    def test_every_status(self, store: TrackingStore, status: str) -> None:
        store.create_monitor("m", SPEC)
        assert _result(store, 0, 1, status=status).status == status
        assert [r.status for r in store.list_monitor_results("m")] == [status]

    def test_a_recheck_replaces_the_result(self, store: TrackingStore) -> None:
        store.create_monitor("m", SPEC)
        first = _result(store, 0, 10, status="insufficient_data", summary={"rows": 3})
        _result(store, 10, 20)
        _later(first.created_time)
        again = _result(store, 0, 10, status="alert", summary={"rows": 900})
        assert again.created_time > first.created_time
        results = store.list_monitor_results("m")
        assert _windows(results) == [(0, 10), (10, 20)]
        assert results[0] == again
        assert results[0].summary == {"rows": 900}
        # a window with the same start and another end is another window
        _result(store, 0, 20, status="error")
        assert _windows(store.list_monitor_results("m")) == [(0, 10), (0, 20), (10, 20)]

    def test_concurrent_rechecks_leave_one_result(self, store: TrackingStore) -> None:
        store.create_monitor("m", SPEC)
        statuses = [s.value for s in MonitorStatus] * 2
        errors: list[BaseException] = []

        def record(status: str) -> None:
            try:
                _result(store, 0, 10, status=status, summary={"by": status})
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=record, args=(s,)) for s in statuses]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        results = store.list_monitor_results("m")
        assert len(results) == 1
        assert results[0].summary == {"by": results[0].status}

    def test_results_overlapping_a_range(self, store: TrackingStore) -> None:
        store.create_monitor("m", SPEC)
        store.create_monitor("other", SPEC)
        for start in (20, 0, 10, 30):  # recorded out of order: listed by window start
            _result(store, start, start + 10)
        _result(store, 5, 25)
        _result(store, 0, 100, name="other")
        lst = store.list_monitor_results
        assert _windows(lst("m")) == [(0, 10), (5, 25), (10, 20), (20, 30), (30, 40)]
        assert _windows(lst("m", start=10, end=20)) == [(5, 25), (10, 20)]
        assert _windows(lst("m", start=9, end=11)) == [(0, 10), (5, 25), (10, 20)]
        assert _windows(lst("m", start=25)) == [(20, 30), (30, 40)]
        assert _windows(lst("m", start=40)) == []
        assert _windows(lst("m", end=5)) == [(0, 10)]
        assert _windows(lst("m", end=0)) == []
        assert _windows(lst("m", start=12, end=12)) == []
        assert _windows(lst("m", limit=2)) == [(0, 10), (5, 25)]
        assert _windows(lst("m", start=10, limit=1)) == [(5, 25)]
        assert _windows(lst("other")) == [(0, 100)]

    def test_late_windows_are_kept_beside_on_time_ones(self, store: TrackingStore) -> None:
        store.create_monitor("m", SPEC)
        on_time = _result(store, 0, 10, status="ok")
        late = store.record_monitor_result(
            "m", window_start=0, window_end=10, status="drift", summary={"late": 1}, late=True
        )
        assert (on_time.late, late.late) == (False, True)
        _result(store, 10, 20)
        lst = store.list_monitor_results
        assert [(r.window_start, r.late, r.status) for r in lst("m")] == [
            (0, False, "ok"),
            (0, True, "drift"),
            (10, False, "ok"),
        ]
        assert lst("m", late=True) == [late]
        assert _windows(lst("m", late=False)) == [(0, 10), (10, 20)]
        # a re-check of the late window replaces only it
        store.record_monitor_result(
            "m", window_start=0, window_end=10, status="ok", summary={"late": 2}, late=True
        )
        assert [r.summary for r in lst("m", late=True)] == [{"late": 2}]
        assert lst("m", late=False)[0].summary == {"window": [0, 10]}

    def test_newest_results(self, store: TrackingStore) -> None:
        store.create_monitor("m", SPEC)
        for start in (30, 0, 20, 10):
            _result(store, start, start + 10)
        lst = store.list_monitor_results
        assert _windows(lst("m", newest=True, limit=2)) == [(20, 30), (30, 40)]
        assert _windows(lst("m", newest=True)) == _windows(lst("m"))
        assert _windows(lst("m", end=25, newest=True, limit=1)) == [(20, 30)]
        assert lst("m", late=True, newest=True) == []

    def test_deleted_monitors_results_do_not_reach_a_new_one(self, store: TrackingStore) -> None:
        store.create_monitor("m", SPEC)
        _result(store, 0, 10)
        store.delete_monitor("m")
        store.create_monitor("m", SPEC)
        _result(store, 10, 20)
        assert _windows(store.list_monitor_results("m")) == [(10, 20)]

    @pytest.mark.parametrize(
        ("field", "change"),
        [
            ("window_start", {"window_start": -1}),
            ("window_start", {"window_start": "0"}),
            ("window_start", {"window_start": None}),
            ("window_start", {"window_start": True}),
            ("window_end", {"window_end": 2**63}),
            ("window_end", {"window_end": 10}),  # == window_start
            ("window_end", {"window_end": 9}),  # before window_start
            ("status", {"status": "OK"}),
            ("status", {"status": "warning"}),
            ("status", {"status": None}),
            ("status", {"status": 1}),
            ("summary", {"summary": None}),
            ("summary", {"summary": []}),
            ("summary", {"summary": {"x": float("nan")}}),
            ("summary", {"summary": _nested(33)}),
            ("summary", {"summary": {"s": "x" * (LONGEST_SUMMARY_STRING + 1)}}),
            ("late", {"late": None}),
            ("late", {"late": "true"}),
        ],
    )
    def test_bad_result_arguments(
        self, store: TrackingStore, field: str, change: dict[str, Any]
    ) -> None:
        store.create_monitor("m", SPEC)
        args: dict[str, Any] = {
            "window_start": 10,
            "window_end": 20,
            "status": "ok",
            "summary": {},
            **change,
        }
        with pytest.raises(InvalidArgumentError) as info:
            store.record_monitor_result("m", **args)
        assert info.value.details["field"] == field
        assert store.list_monitor_results("m") == []

    def test_the_longest_summary_is_kept(self, store: TrackingStore) -> None:
        store.create_monitor("m", SPEC)
        summary = {"s": "x" * LONGEST_SUMMARY_STRING}
        assert _result(store, 0, 1, summary=summary).summary == summary
        assert store.list_monitor_results("m")[0].summary == summary

    @pytest.mark.parametrize(
        ("field", "kwargs"),
        [
            ("start", {"start": -1}),
            ("start", {"start": "yesterday"}),
            ("end", {"end": 2**63}),
            ("end", {"start": 10, "end": 9}),
            ("limit", {"limit": 0}),
            ("limit", {"limit": 10_001}),
            ("limit", {"limit": "5"}),
            ("limit", {"limit": True}),
            ("late", {"late": "yes"}),
            ("late", {"late": 1}),
            ("newest", {"newest": None}),
            ("newest", {"newest": "true"}),
        ],
    )
    def test_bad_result_queries(
        self, store: TrackingStore, field: str, kwargs: dict[str, Any]
    ) -> None:
        store.create_monitor("m", SPEC)
        with pytest.raises(InvalidArgumentError) as info:
            store.list_monitor_results("m", **kwargs)
        assert info.value.details["field"] == field

    # ---------------------------------------------------------------- events

    def test_event_round_trip(self, store: TrackingStore) -> None:
        store.create_monitor("m", SPEC, actor="alice")
        payload = {"window_end": 20, "features": ["a"], "score": 0.4}
        event = store.record_monitor_event("m", "alert.opened", payload, actor="pager")
        assert isinstance(event, MonitorEvent)
        assert (event.kind, event.monitor, event.actor, event.payload) == (
            "alert.opened",
            "m",
            "pager",
            payload,
        )
        assert event.time > 0
        found = store.list_monitor_events("m")
        assert found[-1] == event
        created = found[0]
        assert (created.kind, created.monitor, created.actor) == ("monitor.created", "m", "alice")
        assert created.payload == {"spec": SPEC}
        assert created.time == store.get_monitor("m").creation_time
        assert created.event_id < event.event_id

    def test_events_are_ordered_and_filtered(self, store: TrackingStore) -> None:
        store.create_monitor("a", {"model": "churn"})
        store.create_monitor("b", {"model": "fraud"})
        recorded: list[MonitorEvent] = []
        for name, kind in [
            ("a", "alert.opened"),
            ("b", "alert.opened"),
            ("a", "check.failed"),
            ("a", "alert.resolved"),
            ("b", "note"),
        ]:
            recorded.append(store.record_monitor_event(name, kind, {"n": len(recorded)}))
            _later(recorded[-1].time)
        every = store.list_monitor_events()
        assert [(e.time, e.event_id) for e in every] == sorted((e.time, e.event_id) for e in every)
        assert _kinds(every) == ["monitor.created", "monitor.created"] + [e.kind for e in recorded]
        assert every[2:] == recorded
        lst = store.list_monitor_events
        assert [e.payload["n"] for e in lst("a", kinds=["alert.opened", "alert.resolved"])] == [
            0,
            3,
        ]
        assert [e.monitor for e in lst(kinds=("alert.opened",))] == ["a", "b"]
        assert lst("a", kinds=["nothing.here"]) == []
        assert lst(kinds=[]) == []
        assert lst("a", kinds=[]) == []
        assert lst(since=recorded[2].time) == recorded[2:]
        assert lst("a", since=recorded[2].time) == [recorded[2], recorded[3]]
        assert lst(since=recorded[-1].time + 1) == []
        assert _kinds(lst(limit=3)) == ["monitor.created", "monitor.created", "alert.opened"]
        assert lst("b", limit=1)[0].kind == "monitor.created"
        assert lst(since=recorded[1].time, limit=2) == recorded[1:3]
        assert lst("b", kinds=["note", "note"], since=0) == [recorded[4]]
        # the newest events, still in time order
        assert lst(limit=2, newest=True) == recorded[3:]
        assert lst("a", limit=2, newest=True) == [recorded[2], recorded[3]]
        assert lst("a", kinds=["alert.opened"], newest=True) == [recorded[0]]
        assert lst(newest=True) == every

    def test_only_monitor_events_are_listed(self, store: TrackingStore) -> None:
        store.create_registered_model("m")  # writes a model event whose subject is also "m"
        assert store.list_monitor_events() == []
        assert store.list_monitor_events("m") == []
        store.create_monitor("m", SPEC)
        assert _kinds(store.list_monitor_events()) == ["monitor.created"]
        assert [e.kind for e in store.list_registry_events("m")] == ["model.created"]

    @pytest.mark.parametrize(
        ("field", "kind", "payload"),
        [
            ("kind", "", {}),
            ("kind", "Alert.Opened", {}),
            ("kind", "alert opened", {}),
            ("kind", "alert/opened", {}),
            ("kind", "x" * 65, {}),
            ("kind", None, {}),
            ("kind", 3, {}),
            ("payload", "alert.opened", None),
            ("payload", "alert.opened", ["x"]),
            ("payload", "alert.opened", {"x": float("nan")}),
            ("payload", "alert.opened", _nested(33)),
            ("payload", "alert.opened", {"s": "x" * (LONGEST_SPEC_STRING + 1)}),
        ],
    )
    def test_bad_event_arguments(
        self, store: TrackingStore, field: str, kind: Any, payload: Any
    ) -> None:
        store.create_monitor("m", SPEC)
        with pytest.raises(InvalidArgumentError) as info:
            store.record_monitor_event("m", kind, payload)
        assert info.value.details["field"] == field
        assert _kinds(store.list_monitor_events("m")) == ["monitor.created"]

    def test_the_longest_kind_and_odd_kinds_are_kept(self, store: TrackingStore) -> None:
        store.create_monitor("m", SPEC)
        for kind in ("x" * 64, "0", "a_b-c.d", "...", "monitor.created"):
            assert store.record_monitor_event("m", kind, {}).kind == kind
        assert len(store.list_monitor_events("m", kinds=["x" * 64, "..."])) == 2

    @pytest.mark.parametrize(
        ("field", "kwargs"),
        [
            ("kinds", {"kinds": "alert.opened"}),
            ("kinds", {"kinds": ["alert.opened", "Bad"]}),
            ("kinds", {"kinds": [None]}),
            ("kinds", {"kinds": [f"k{i}" for i in range(101)]}),
            ("since", {"since": -1}),
            ("since", {"since": "now"}),
            ("since", {"since": 2**63}),
            ("limit", {"limit": 0}),
            ("limit", {"limit": 10_001}),
            ("limit", {"limit": 2.5}),
            ("newest", {"newest": "yes"}),
        ],
    )
    def test_bad_event_queries(
        self, store: TrackingStore, field: str, kwargs: dict[str, Any]
    ) -> None:
        for name in ("m", None):
            with pytest.raises(InvalidArgumentError) as info:
                store.list_monitor_events(name, **kwargs)
            assert info.value.details["field"] == field
