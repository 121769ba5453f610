"""The explicit client: MLflow-style method names over one store."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import loopml
from loopml.entities import LifecycleStage, Metric, RunStatus
from loopml.errors import (
    ArtifactNotFoundError,
    ExperimentNotFoundError,
    InvalidArgumentError,
    RunNotFoundError,
)


@pytest.fixture
def client(tmp_path: Path) -> loopml.Client:
    return loopml.Client(tracking_uri=str(tmp_path / "store"))


def test_experiment_methods(client: loopml.Client) -> None:
    exp_id = client.create_experiment("churn", description="d", tags={"t": "1"})
    assert client.get_experiment(exp_id).name == "churn"
    assert client.get_experiment_by_name("churn").experiment_id == exp_id  # type: ignore[union-attr]
    client.set_experiment_tag(exp_id, "t", "2")
    assert client.archive_experiment(exp_id).lifecycle_stage is LifecycleStage.ARCHIVED
    assert client.search_experiments() == []
    assert len(client.search_experiments(include_archived=True)) == 1
    assert client.restore_experiment(exp_id).tags == {"t": "2"}
    assert client.resolve_experiment("churn").experiment_id == exp_id
    assert client.resolve_experiment(exp_id).name == "churn"
    with pytest.raises(ExperimentNotFoundError, match="nope"):
        client.resolve_experiment("nope")


def test_run_lifecycle(client: loopml.Client) -> None:
    exp_id = client.create_experiment("e")
    run = client.create_run(exp_id, run_name="r", tags={"a": "b"})
    client.log_param(run.run_id, "p", 1)
    client.log_metric(run.run_id, "m", 0.5, step=3, synchronous=True)
    client.log_metrics(run.run_id, {"x": 1, "y": 2.5}, step=1)
    client.log_batch(run.run_id, [Metric("z", 9.0, 1000, 0)], params={"q": "w"}, tags={"c": "d"})
    client.set_tag(run.run_id, "a", "c")
    client.delete_tag(run.run_id, "c")
    client.update_run(run.run_id, name="renamed")
    with pytest.raises(InvalidArgumentError, match="final status"):
        client.set_terminated(run.run_id, "RUNNING")
    ended = client.set_terminated(run.run_id, "failed", error="oops")
    assert ended.status is RunStatus.FAILED
    got = client.get_run(run.run_id)
    assert got.info.run_name == "renamed"
    assert got.data.params == {"p": "1", "q": "w"}
    assert got.data.metrics == {"m": 0.5, "x": 1.0, "y": 2.5, "z": 9.0}
    assert got.data.tags == {"a": "c"}
    assert [(p.step, p.value) for p in client.get_metric_history(run.run_id, "m")] == [(3, 0.5)]


def test_unknown_run_everywhere(client: loopml.Client, tmp_path: Path) -> None:
    missing = "0" * 32
    with pytest.raises(RunNotFoundError):
        client.get_run(missing)
    with pytest.raises(RunNotFoundError):
        client.list_artifacts(missing)
    client.log_metric(missing, "x", 1.0)  # buffered: the error surfaces at flush
    with pytest.raises(RunNotFoundError):
        client.flush()
    client.flush()  # the refused points were dropped, nothing left to fail


def test_download_missing_artifact(client: loopml.Client, tmp_path: Path) -> None:
    run = client.create_run(client.create_experiment("e"))
    with pytest.raises(ArtifactNotFoundError):
        client.download_artifacts(run.run_id, "nothing/here.txt", tmp_path / "o")
    with pytest.raises(InvalidArgumentError, match="folder"):
        client.log_artifact(run.run_id, tmp_path)


def test_search_by_experiment_name(client: loopml.Client, tmp_path: Path) -> None:
    loopml.set_tracking_uri(str(tmp_path / "store"))
    try:
        with loopml.start_run(experiment="named", run_name="one"):
            loopml.log_metric("acc", 0.9)
        found = loopml.search_runs("named", filter="metrics.acc > 0.5")
        assert [r.info.run_name for r in found] == ["one"]
        with pytest.raises(ExperimentNotFoundError):
            loopml.search_runs("unknown-experiment")
    finally:
        loopml.set_tracking_uri(None)


def test_buffer_keeps_good_runs_when_one_is_gone(client: loopml.Client) -> None:
    run = client.create_run(client.create_experiment("e"))
    missing = "1" * 32
    client.log_metric(run.run_id, "x", 1.0)
    client.log_metric(missing, "x", 1.0)
    client.log_metric(run.run_id, "x", 2.0)
    with pytest.raises(RunNotFoundError, match=missing):
        client.flush()
    assert [p.value for p in client.get_metric_history(run.run_id, "x")] == [1.0, 2.0]


def test_read_waits_for_a_write_the_flusher_has_begun(client: loopml.Client) -> None:
    """Read-your-writes while the background flusher is mid-write: the points it has taken
    are not "pending" any more, but a read (or the end of the run) must still wait for them."""
    run = client.create_run(client.create_experiment("e"))
    store = client.store
    started, release = threading.Event(), threading.Event()
    real_append = store.append_metric_rows

    def slow_append(rows):  # type: ignore[no-untyped-def]
        started.set()
        release.wait(10)
        return real_append(rows)

    store.append_metric_rows = slow_append  # type: ignore[method-assign]
    try:
        client.log_metric(run.run_id, "x", 1.0)
        client._buffer._wake.set()  # the flusher takes the point now
        assert started.wait(10)
        assert client._buffer.pending() == 1
        threading.Timer(0.2, release.set).start()
        client.set_terminated(run.run_id)
        assert [p.value for p in client.get_metric_history(run.run_id, "x")] == [1.0]
    finally:
        release.set()
        store.append_metric_rows = real_append  # type: ignore[method-assign]


def test_bad_metric_raises_at_log_time(client: loopml.Client) -> None:
    run = client.create_run(client.create_experiment("e"))
    with pytest.raises(InvalidArgumentError, match="must be a number"):
        client.log_metric(run.run_id, "x", "high")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="run_id"):
        client.log_metric("not-a-run", "x", 1.0)
    with pytest.raises(InvalidArgumentError, match="step"):
        client.log_metric(run.run_id, "x", 1.0, step=1.5)  # type: ignore[arg-type]
    client.flush()
    assert client.get_metric_history(run.run_id, "x") == []


def test_set_tracking_uri_applies_to_new_clients(tmp_path: Path) -> None:
    loopml.set_tracking_uri(tmp_path / "chosen")
    try:
        assert loopml.get_tracking_uri() == str(tmp_path / "chosen")
        loopml.Client().create_experiment("here")
        assert (tmp_path / "chosen" / "loopml.db").is_file()
        with pytest.raises(InvalidArgumentError, match="tracking URI"):
            loopml.set_tracking_uri(42)  # type: ignore[arg-type]
    finally:
        loopml.set_tracking_uri(None)
    assert loopml.get_tracking_uri() is None


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c, r, e: loopml.Client(123), "tracking URI"),  # type: ignore[arg-type]
        (lambda c, r, e: c.log_artifact(r, None), "local_path"),
        (lambda c, r, e: c.log_artifacts(r, None), "local_dir"),
        (lambda c, r, e: c.download_artifacts(r, "", 123), "dst_path"),
        (lambda c, r, e: c.search_runs(None), "experiment_ids"),
        (lambda c, r, e: c.search_runs([e], 123), "filter"),
        (lambda c, r, e: c.search_runs([e], None, 5), "order_by"),
        (lambda c, r, e: c.log_metrics(r, None), "metrics"),
        (lambda c, r, e: c.log_batch(r, 5), "metrics"),
        (lambda c, r, e: c.update_run(r, "DONE"), "status"),
        (lambda c, r, e: loopml.search_runs(object()), "experiments"),
    ],
)
def test_bad_arguments_get_clear_errors(client: loopml.Client, call, field: str) -> None:  # type: ignore[no-untyped-def]
    exp_id = client.create_experiment("bad-args")
    run_id = client.create_run(exp_id).run_id
    with pytest.raises(InvalidArgumentError, match=field):
        call(client, run_id, exp_id)
