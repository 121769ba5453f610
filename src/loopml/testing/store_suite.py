"""A conformance suite that every tracking-store backend must pass.

Subclass :class:`TrackingStoreSuite` in a test module and provide a ``store`` fixture that
yields a fresh, empty store; pytest then runs every ``test_*`` method against it::

    class TestMyStore(TrackingStoreSuite):
        @pytest.fixture
        def store(self):
            yield MyStore(...)
"""

from __future__ import annotations

import math
import random
import string
import time
import uuid
from pathlib import Path

import pytest

from loopml.entities import LifecycleStage, Metric, RunStatus
from loopml.errors import (
    AlreadyExistsError,
    ArtifactNotFoundError,
    ExperimentNotFoundError,
    FilterSyntaxError,
    IntegrityError,
    InvalidArgumentError,
    InvalidStateError,
    ParamConflictError,
    RunNotFoundError,
    UnsafePathError,
)
from loopml.storage.protocols import TrackingStore
from loopml.testing.dataset_suite import DatasetStoreSuite
from loopml.testing.monitor_suite import MonitorStoreSuite
from loopml.testing.prediction_suite import PredictionLogStoreSuite
from loopml.testing.registry_suite import RegistryStoreSuite

__all__ = ["ODD_NAMES", "TrackingStoreSuite"]

#: names that must round-trip exactly (RELIABILITY.md V4)
ODD_NAMES = [
    "emoji 🚀📈",
    "rtl \u05e9\u05dc\u05d5\u05dd \u202e",
    "combining e\u0301\u0302",
    "percent %41 %2e%2e",
    "hash # and ? query",
    "spaces  inside",
    "CON",
    "a" * 255,
    "\U0001f600" * 60,
]


def _exp(store: TrackingStore, name: str | None = None) -> str:
    return store.create_experiment(name or f"exp-{uuid.uuid4().hex[:8]}").experiment_id


def _run(store: TrackingStore, experiment_id: str | None = None, **kwargs: object) -> str:
    return store.create_run(experiment_id or _exp(store), **kwargs).run_id  # type: ignore[arg-type]


def _m(key: str, value: float, step: int = 0, timestamp: int = 1000) -> Metric:
    return Metric(key, value, timestamp, step)


class TrackingStoreSuite(
    DatasetStoreSuite, RegistryStoreSuite, PredictionLogStoreSuite, MonitorStoreSuite
):
    """Behaviour every :class:`~loopml.storage.protocols.TrackingStore` must have."""

    # -- experiments -------------------------------------------------------------------------

    def test_create_and_get_experiment(self, store: TrackingStore) -> None:
        exp = store.create_experiment("churn", "predict churn", {"team": "growth"})
        assert exp.name == "churn"
        assert exp.description == "predict churn"
        assert exp.tags == {"team": "growth"}
        assert exp.lifecycle_stage is LifecycleStage.ACTIVE
        assert store.get_experiment(exp.experiment_id) == exp
        assert store.get_experiment_by_name("churn") == exp
        assert store.get_experiment_by_name("nope") is None

    def test_duplicate_experiment_name(self, store: TrackingStore) -> None:
        store.create_experiment("dup")
        with pytest.raises(AlreadyExistsError, match="dup"):
            store.create_experiment("dup")
        assert len([e for e in store.list_experiments() if e.name == "dup"]) == 1

    @pytest.mark.parametrize("name", ["", "   ", " lead", "x" * 501, "nul\x00", 5, None])
    def test_bad_experiment_name(self, store: TrackingStore, name: object) -> None:
        with pytest.raises(InvalidArgumentError, match="experiment name"):
            store.create_experiment(name)  # type: ignore[arg-type]

    def test_unknown_experiment(self, store: TrackingStore) -> None:
        with pytest.raises(ExperimentNotFoundError):
            store.get_experiment("987654")
        with pytest.raises(InvalidArgumentError, match="experiment_id"):
            store.get_experiment("../1")
        with pytest.raises(ExperimentNotFoundError):
            store.create_run("987654")

    def test_archive_and_restore(self, store: TrackingStore) -> None:
        exp = store.create_experiment("old")
        store.update_experiment(exp.experiment_id, lifecycle_stage=LifecycleStage.ARCHIVED)
        assert "old" not in [e.name for e in store.list_experiments()]
        assert "old" in [e.name for e in store.list_experiments(include_archived=True)]
        with pytest.raises(InvalidStateError, match="archived"):
            store.create_run(exp.experiment_id)
        with pytest.raises(AlreadyExistsError):
            store.create_experiment("old")
        restored = store.update_experiment(exp.experiment_id, lifecycle_stage=LifecycleStage.ACTIVE)
        assert restored.lifecycle_stage is LifecycleStage.ACTIVE
        store.create_run(exp.experiment_id)

    def test_experiment_tags_and_description(self, store: TrackingStore) -> None:
        exp_id = _exp(store)
        store.set_experiment_tag(exp_id, "k", "v1")
        store.set_experiment_tag(exp_id, "k", "v2")
        updated = store.update_experiment(exp_id, description="new")
        assert updated.tags == {"k": "v2"}
        assert updated.description == "new"

    @pytest.mark.parametrize("name", ODD_NAMES)
    def test_odd_names_round_trip(self, store: TrackingStore, name: str, tmp_path: Path) -> None:
        exp = store.create_experiment(name)
        assert store.get_experiment_by_name(name) == exp
        run_id = store.create_run(exp.experiment_id, run_name=name, tags={name: name}).run_id
        store.log_batch(run_id, [_m(name, 1.5)], params={name: name})
        run = store.get_run(run_id)
        assert run.info.run_name == name
        assert run.data.params == {name: name}
        assert run.data.tags == {name: name}
        assert run.data.metrics == {name: 1.5}
        source = tmp_path / "f.txt"
        source.write_text("x")
        store.put_artifact(run_id, f"d/{name}", source)
        assert [a.path for a in store.list_artifacts(run_id, "d")] == [f"d/{name}"]

    # -- runs --------------------------------------------------------------------------------

    def test_create_and_get_run(self, store: TrackingStore) -> None:
        exp_id = _exp(store)
        info = store.create_run(exp_id, run_name="first", tags={"a": "1"}, start_time=123)
        assert len(info.run_id) == 32
        assert info.status is RunStatus.RUNNING
        assert info.start_time == 123
        run = store.get_run(info.run_id)
        assert run.info == info
        assert run.data.tags == {"a": "1"}
        generated = store.create_run(exp_id)
        assert generated.run_name

    def test_unknown_and_malformed_run(self, store: TrackingStore) -> None:
        missing = uuid.uuid4().hex
        with pytest.raises(RunNotFoundError, match=missing):
            store.get_run(missing)
        with pytest.raises(RunNotFoundError):
            store.log_batch(missing, [_m("x", 1)])
        with pytest.raises(RunNotFoundError):
            store.log_params(missing, {"a": "b"})
        with pytest.raises(InvalidArgumentError, match="run_id"):
            store.get_run("not-a-run")
        with pytest.raises(RunNotFoundError):
            store.create_run(_exp(store), parent_run_id=missing)

    def test_nested_run_and_terminate(self, store: TrackingStore) -> None:
        exp_id = _exp(store)
        parent = _run(store, exp_id)
        child = store.create_run(exp_id, parent_run_id=parent)
        assert child.parent_run_id == parent
        ended = store.update_run(child.run_id, status=RunStatus.FAILED, error="boom")
        assert ended.status is RunStatus.FAILED
        assert ended.end_time is not None
        assert ended.error == "boom"
        with pytest.raises(InvalidArgumentError, match="status"):
            store.update_run(parent, status="DONE")  # type: ignore[arg-type]

    def test_params_are_immutable(self, store: TrackingStore) -> None:
        run_id = _run(store)
        store.log_params(run_id, {"lr": "0.1", "n": 3})
        store.log_params(run_id, {"lr": "0.1"})  # same value again: fine (V3)
        with pytest.raises(ParamConflictError, match="lr"):
            store.log_params(run_id, {"lr": "0.2", "other": "x"})
        # atomic: the batch with the conflict stored nothing
        assert store.get_run(run_id).data.params == {"lr": "0.1", "n": "3"}
        with pytest.raises(ParamConflictError):
            store.log_batch(run_id, [_m("loss", 1.0)], params={"n": "4"})
        assert store.get_metric_history(run_id, "loss") == []

    def test_bad_params_and_limits(self, store: TrackingStore) -> None:
        run_id = _run(store)
        with pytest.raises(InvalidArgumentError, match="at most 8000"):
            store.log_params(run_id, {"big": "x" * 6_000_000})
        with pytest.raises(InvalidArgumentError, match="key"):
            store.log_params(run_id, {"": "x"})
        with pytest.raises(InvalidArgumentError, match="at most 500"):
            store.log_params(run_id, {"k" * 10_000: "x"})
        with pytest.raises(InvalidArgumentError, match="string, number or boolean"):
            store.log_params(run_id, {"obj": object()})  # type: ignore[dict-item]
        assert store.get_run(run_id).data.params == {}

    def test_longest_values_are_logged_and_found(self, store: TrackingStore) -> None:
        """A param or tag value of the greatest allowed length (8,000 characters) is stored,
        whatever its bytes, and found by a search: no index may limit an entry's size (a
        PostgreSQL btree entry must fit in ~2.7 KB; these are 8 KB of ASCII and 24 KB of
        UTF-8 that do not compress)."""
        exp_id = _exp(store)
        rng = random.Random(8000)
        ascii_value = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(8000))
        wide_value = "".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(8000))
        run_id = _run(store, exp_id)
        other = _run(store, exp_id)
        store.log_params(run_id, {"ascii": ascii_value, "wide": wide_value})
        store.set_tags(run_id, {"ascii": ascii_value})
        store.log_batch(run_id, [], tags={"wide": wide_value})
        store.log_params(other, {"ascii": ascii_value[:-1] + "!"})
        data = store.get_run(run_id).data
        assert data.params == {"ascii": ascii_value, "wide": wide_value}
        assert data.tags == {"ascii": ascii_value, "wide": wide_value}
        for flt in (
            f"params.ascii = '{ascii_value}'",
            f"params.wide = '{wide_value}'",
            f"tags.ascii = '{ascii_value}'",
            f"tags.wide IN ('{wide_value}', 'other')",
        ):
            assert [r.info.run_id for r in store.search_runs([exp_id], flt)] == [run_id], flt[:20]

    def test_tags_are_mutable(self, store: TrackingStore) -> None:
        run_id = _run(store)
        store.set_tags(run_id, {"stage": "dev", "owner": "ann"})
        store.set_tags(run_id, {"stage": "prod"})
        store.delete_tag(run_id, "owner")
        assert store.get_run(run_id).data.tags == {"stage": "prod"}

    # -- metrics -----------------------------------------------------------------------------

    def test_metric_history_and_latest(self, store: TrackingStore) -> None:
        run_id = _run(store)
        points = [_m("loss", 1 / (s + 1), step=s, timestamp=1000 + s) for s in range(50)]
        store.log_batch(run_id, points[25:])
        store.log_batch(run_id, points[:25])  # older points arriving late
        assert store.get_metric_history(run_id, "loss") == points
        latest = store.get_run(run_id).data
        assert latest.metrics == {"loss": 1 / 50}
        assert latest.latest_metrics["loss"].step == 49

    def test_special_float_values(self, store: TrackingStore) -> None:
        run_id = _run(store)
        values = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1e-308, 1.7976931348623157e308]
        store.log_batch(run_id, [_m("v", v, step=i) for i, v in enumerate(values)])
        history = [p.value for p in store.get_metric_history(run_id, "v")]
        assert math.isnan(history[0])
        assert history[1:] == values[1:]
        store.log_batch(run_id, [_m("last", math.nan, step=1)])
        assert math.isnan(store.get_run(run_id).data.metrics["last"])

    def test_duplicate_points_are_not_duplicated(self, store: TrackingStore) -> None:
        run_id = _run(store)
        batch = [_m("loss", 0.5, step=1), _m("loss", math.nan, step=2)]
        store.log_batch(run_id, batch)
        store.log_batch(run_id, batch)  # a retried batch (V3)
        assert len(store.get_metric_history(run_id, "loss")) == 2

    @pytest.mark.parametrize(
        ("point", "match"),
        [
            (Metric("m", "1.0", 0, 0), "must be a number"),  # type: ignore[arg-type]
            (Metric("m", True, 0, 0), "must be a number"),
            (Metric("m", 1.0, 0, 1.5), "step"),  # type: ignore[arg-type]
            (Metric("m", 1.0, -1, 0), "timestamp"),
            (Metric("m", 1.0, 0, 2**64), "64 bits"),
            (Metric("", 1.0, 0, 0), "key"),
        ],
    )
    def test_bad_metric_batch_is_atomic(
        self, store: TrackingStore, point: Metric, match: str
    ) -> None:
        run_id = _run(store)
        with pytest.raises(InvalidArgumentError, match=match):
            store.log_batch(run_id, [_m("good", 1.0), point], params={"p": "1"})
        run = store.get_run(run_id)
        assert run.data.params == {}
        assert store.get_metric_history(run_id, "good") == []

    def test_large_batch(self, store: TrackingStore) -> None:
        run_id = _run(store)
        store.log_batch(run_id, [_m("x", float(i), step=i) for i in range(12_345)])
        history = store.get_metric_history(run_id, "x")
        assert len(history) == 12_345
        assert history[-1].value == 12_344.0

    def test_append_rows_of_several_runs(self, store: TrackingStore) -> None:
        exp_id = _exp(store)
        a, b = _run(store, exp_id), _run(store, exp_id)
        rows = [
            (a, "x", 0, 1000, 1.0, False),
            (b, "x", 0, 1000, 0.0, True),
            (a, "x", 1, 999, 2.0, False),
        ]
        store.append_metric_rows(rows)
        store.append_metric_rows(rows)  # idempotent
        assert [p.value for p in store.get_metric_history(a, "x")] == [1.0, 2.0]
        assert store.get_run(a).data.metrics == {"x": 2.0}
        assert math.isnan(store.get_run(b).data.metrics["x"])
        missing = uuid.uuid4().hex
        with pytest.raises(RunNotFoundError, match=missing):
            store.append_metric_rows([(a, "y", 0, 1, 1.0, False), (missing, "y", 0, 1, 1.0, False)])
        assert store.get_metric_history(a, "y") == []  # nothing of the batch was written

    # -- heartbeats --------------------------------------------------------------------------

    def test_stale_runs_are_marked_killed(self, store: TrackingStore) -> None:
        exp_id = _exp(store)
        beating = store.create_run(exp_id, heartbeat=True, start_time=1000).run_id
        silent = store.create_run(exp_id, start_time=1000).run_id  # no heartbeat: never reaped
        assert store.mark_stale_runs_killed(3600) == []
        time.sleep(0.01)  # the heartbeat must be older than the 1 ms timeout below
        killed = store.mark_stale_runs_killed(0.001)
        assert killed == [beating]
        info = store.get_run(beating).info
        assert info.status is RunStatus.KILLED
        assert "heartbeat" in (info.error or "")
        assert store.get_run(silent).info.status is RunStatus.RUNNING
        fresh = store.create_run(exp_id, heartbeat=True).run_id
        store.heartbeat([fresh])
        assert store.mark_stale_runs_killed(3600) == []

    # -- search ------------------------------------------------------------------------------

    def _populate(self, store: TrackingStore) -> tuple[str, dict[str, str]]:
        exp_id = _exp(store)
        ids = {}
        rows = [
            ("rf-1", "rf", 0.30, "Growth", RunStatus.FINISHED),
            ("rf-2", "rf", 0.10, "growth", RunStatus.FINISHED),
            ("lr-1", "lr", 0.50, "risk", RunStatus.FAILED),
            ("lr-2", "lr", None, "risk", RunStatus.RUNNING),
            ("gb-1", "gb", math.nan, "growth", RunStatus.FINISHED),
        ]
        for i, (name, model, loss, team, status) in enumerate(rows):
            run_id = store.create_run(
                exp_id, run_name=name, start_time=1000 + i, tags={"team": team}
            ).run_id
            metrics = [_m("loss", loss)] if loss is not None else []
            store.log_batch(run_id, metrics, params={"model": model, "depth": str(i)})
            if status is not RunStatus.RUNNING:
                store.update_run(run_id, status=status)
            ids[name] = run_id
        return exp_id, ids

    def _names(self, runs: list) -> list[str]:  # type: ignore[type-arg]
        return [r.info.run_name for r in runs]

    def test_search_filters(self, store: TrackingStore) -> None:
        exp_id, _ = self._populate(store)

        def names(flt: str, order: list[str] | None = None) -> list[str]:
            return self._names(store.search_runs([exp_id], flt, order or ["run_name ASC"]))

        assert names("params.model = 'rf'") == ["rf-1", "rf-2"]
        assert names("metrics.loss < 0.4") == ["rf-1", "rf-2"]
        assert names("metrics.loss >= 0.3 and params.model != 'rf'") == ["lr-1"]
        assert names("metrics.loss != 0.3") == ["gb-1", "lr-1", "rf-2"]
        assert names("tags.team = 'growth'") == ["gb-1", "rf-2"]
        assert names("tags.team LIKE 'g%'") == ["gb-1", "rf-2"]
        assert names("tags.team ILIKE 'g%'") == ["gb-1", "rf-1", "rf-2"]
        assert names("params.model IN ('lr', 'gb')") == ["gb-1", "lr-1", "lr-2"]
        assert names("params.model NOT IN ('lr', 'gb')") == ["rf-1", "rf-2"]
        assert names("status = 'RUNNING'") == ["lr-2"]
        assert names("attributes.status IN ('FAILED', 'RUNNING')") == ["lr-1", "lr-2"]
        assert names("run_name LIKE 'rf%' and start_time > 1000") == ["rf-2"]
        assert names("params.missing = 'x'") == []
        assert names("") == ["gb-1", "lr-1", "lr-2", "rf-1", "rf-2"]

    def test_search_order_and_nulls_last(self, store: TrackingStore) -> None:
        exp_id, _ = self._populate(store)
        asc = self._names(store.search_runs([exp_id], None, ["metrics.loss ASC"]))
        assert asc[:3] == ["rf-2", "rf-1", "lr-1"]
        assert set(asc[3:]) == {"lr-2", "gb-1"}  # missing and NaN sort last
        desc = self._names(store.search_runs([exp_id], None, ["metrics.loss DESC"]))
        assert desc[:3] == ["lr-1", "rf-1", "rf-2"]
        default = self._names(store.search_runs([exp_id]))
        assert default == ["gb-1", "lr-2", "lr-1", "rf-2", "rf-1"]  # newest first
        by_param = self._names(store.search_runs([exp_id], None, ["params.model DESC", "run_name"]))
        assert by_param == ["rf-1", "rf-2", "lr-1", "lr-2", "gb-1"]

    def test_search_paging(self, store: TrackingStore) -> None:
        exp_id = _exp(store)
        for i in range(23):
            store.create_run(exp_id, run_name=f"r{i:02d}", start_time=1000 + i)
        seen: list[str] = []
        token = None
        while True:
            page = store.search_runs([exp_id], None, ["run_name"], max_results=5, page_token=token)
            seen += self._names(page)
            token = page.next_page_token
            if token is None:
                break
        assert seen == [f"r{i:02d}" for i in range(23)]
        with pytest.raises(InvalidArgumentError, match="page_token"):
            store.search_runs([exp_id], page_token="garbage!")  # noqa: S106
        with pytest.raises(InvalidArgumentError, match="max_results"):
            store.search_runs([exp_id], max_results=0)

    def test_search_pages_follow_one_order(self, store: TrackingStore) -> None:
        """Every page size walks the runs in the same order: ordered keys first (ties by
        start time, newest first, then run id), runs lacking a key (or with a NaN metric)
        after those having it, including across a page boundary and past it."""
        exp_id = _exp(store)
        runs: list[dict[str, object]] = []
        for i in range(20):
            start = 1000 + i // 3  # ties of three
            run_id = store.create_run(exp_id, run_name=f"r{i:02d}", start_time=start).run_id
            loss = None if i % 5 == 0 else (math.nan if i % 7 == 3 else (i * 3) % 4 / 4)
            lr = None if i % 4 == 1 else "abc"[i % 3]
            params = {"group": "ab"[i % 2]} | ({"lr": lr} if lr is not None else {})
            store.log_batch(run_id, [_m("loss", loss)] if loss is not None else [], params=params)
            end = None if i % 6 == 0 else 5000 + i % 4
            if end is not None:
                store.update_run(run_id, status=RunStatus.FINISHED, end_time=end)
            usable = None if loss is None or math.isnan(loss) else loss
            runs.append(
                {"id": run_id, "start": start, "loss": usable, "lr": lr, "end": end, "group": i % 2}
            )

        def expected(order: list[tuple[str, bool]], group: int | None) -> list[str]:
            found = [r for r in runs if group is None or r["group"] == group]
            found.sort(key=lambda r: str(r["id"]))
            found.sort(key=lambda r: int(r["start"]), reverse=True)  # type: ignore[call-overload]
            for name, ascending in reversed(order):  # stable: the first key decides last
                having = [r for r in found if r[name] is not None]
                having.sort(key=lambda r: r[name], reverse=not ascending)  # type: ignore[arg-type,return-value]
                found = having + [r for r in found if r[name] is None]
            return [str(r["id"]) for r in found]

        columns = {"loss": "metrics.loss", "lr": "params.lr", "end": "end_time"}
        orders = [
            [("loss", False)],
            [("loss", True)],
            [("lr", False), ("loss", True)],
            [("loss", False), ("lr", True)],
            [("end", False)],
            [("end", True), ("loss", False)],
        ]
        for order in orders:
            order_by = [f"{columns[name]} {'ASC' if asc else 'DESC'}" for name, asc in order]
            for group, flt in ((None, None), (1, "params.group = 'b'")):
                want = expected(order, group)
                for size in (1, 3, 4, 100):
                    seen: list[str] = []
                    token = None
                    while True:
                        page = store.search_runs([exp_id], flt, order_by, size, token)
                        assert len(page) <= size
                        seen += [r.info.run_id for r in page]
                        token = page.next_page_token
                        if token is None or len(seen) > len(want):
                            break
                    assert seen == want, (order_by, flt, size)

    def test_search_bad_filter(self, store: TrackingStore) -> None:
        exp_id = _exp(store)
        with pytest.raises(FilterSyntaxError) as info:
            store.search_runs([exp_id], "metrics.loss ~ 3")
        assert info.value.position == 13
        with pytest.raises(FilterSyntaxError):
            store.search_runs([exp_id], None, ["metrics.loss SIDEWAYS"])

    def test_search_across_experiments(self, store: TrackingStore) -> None:
        a, b = _exp(store), _exp(store)
        _run(store, a, run_name="in-a")
        _run(store, b, run_name="in-b")
        assert sorted(self._names(store.search_runs([a, b]))) == ["in-a", "in-b"]
        assert self._names(store.search_runs([a])) == ["in-a"]

    # -- artifacts ---------------------------------------------------------------------------

    def test_artifacts_round_trip(self, store: TrackingStore, tmp_path: Path) -> None:
        run_id = _run(store)
        src = tmp_path / "model.bin"
        src.write_bytes(b"weights" * 1000)
        info = store.put_artifact(run_id, "model/model.bin", src)
        again = store.put_artifact(run_id, "copy/model.bin", src)
        assert info.digest == again.digest  # identical bytes are one blob
        assert [a.path for a in store.list_artifacts(run_id)] == ["copy", "model"]
        assert [a.is_dir for a in store.list_artifacts(run_id)] == [True, True]
        listed = store.list_artifacts(run_id, "model")
        assert [(a.path, a.size) for a in listed] == [("model/model.bin", 7000)]
        assert len(store.list_artifacts(run_id, recursive=True)) == 2
        dest = tmp_path / "out.bin"
        store.get_artifact(run_id, "model/model.bin", dest)
        assert dest.read_bytes() == src.read_bytes()
        with pytest.raises(ArtifactNotFoundError):
            store.get_artifact(run_id, "model/missing.bin", tmp_path / "x")

    @pytest.mark.parametrize(
        "path",
        ["../escape.txt", "a/../../b", "/etc/passwd", "a\\b", "nul\x00.txt", "C:/x", "..%2fx"],
    )
    def test_artifact_path_traversal(self, store: TrackingStore, tmp_path: Path, path: str) -> None:
        run_id = _run(store)
        src = tmp_path / "f.txt"
        src.write_text("secret")
        with pytest.raises(UnsafePathError):
            store.put_artifact(run_id, path, src)
        with pytest.raises(UnsafePathError):
            store.get_artifact(run_id, path, tmp_path / "out")
        assert store.list_artifacts(run_id) == []

    def test_artifact_like_wildcards_are_literal(
        self, store: TrackingStore, tmp_path: Path
    ) -> None:
        run_id = _run(store)
        src = tmp_path / "f.txt"
        src.write_text("x")
        store.put_artifact(run_id, "a_b/f.txt", src)
        store.put_artifact(run_id, "axb/f.txt", src)
        store.put_artifact(run_id, "100%/f.txt", src)
        assert [a.path for a in store.list_artifacts(run_id, "a_b")] == ["a_b/f.txt"]
        assert [a.path for a in store.list_artifacts(run_id, "100%")] == ["100%/f.txt"]

    def test_record_artifacts_for_stored_blobs(self, store: TrackingStore, tmp_path: Path) -> None:
        run_id = _run(store)
        src = tmp_path / "weights.bin"
        src.write_bytes(b"w" * 100)
        (ref,) = store.blobs.put_files([src])
        store.record_artifacts(run_id, [("model/weights.bin", ref.digest, ref.size)])
        listed = store.list_artifacts(run_id, "model")
        assert [(a.path, a.digest, a.size) for a in listed] == [
            ("model/weights.bin", ref.digest, 100)
        ]
        with pytest.raises(ArtifactNotFoundError):
            store.record_artifacts(run_id, [("model/x", "blake3:" + "0" * 64, 1)])
        with pytest.raises(UnsafePathError):
            store.record_artifacts(run_id, [("../x", ref.digest, ref.size)])
        assert len(store.list_artifacts(run_id, recursive=True)) == 1

    def test_corrupted_blob_is_refused(self, store: TrackingStore, tmp_path: Path) -> None:
        run_id = _run(store)
        src = tmp_path / "data.csv"
        src.write_text("a,b\n1,2\n")
        info = store.put_artifact(run_id, "data.csv", src)
        blobs = store.blobs
        assert info.digest is not None
        object_path = blobs._object_path(info.digest)
        with blobs._fs.open(object_path, "wb") as fh:
            fh.write(b"a,b\n1,3\n")
        dest = tmp_path / "out.csv"
        with pytest.raises(IntegrityError, match="blake3"):
            store.get_artifact(run_id, "data.csv", dest)
        assert not dest.exists()
